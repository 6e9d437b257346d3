"""One sample, one model, one mode: context -> prompt -> episode -> scored prediction row.

The Serve ingress runs :func:`answer` (it has no gold labels); the evaluator turns the returned
episode into a ``PREDICTION_SCHEMA`` row with :func:`prediction_row`. In-process evaluation calls
both directly, so the HTTP and in-process paths share every step.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

from eval import prompting
from eval.agent.loop import Episode, Limits, run_episode, tool_decision
from eval.agent.tools import ToolRunner
from eval.models.base import AgentContext, ModelAdapter
from eval.tasks import get_task
from eval.tasks.kinds import ScoringParams
from infra.ids import content_id


def _loads(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def build_context(sample: dict, clips: dict[str, dict], mode: str) -> AgentContext:
    """The structured request for ``sample`` in ``mode``; cues only in guided mode (DESIGN §6)."""
    ids = list(sample["clip_ids"])
    missing = [c for c in ids if c not in clips]
    if missing:
        raise KeyError(f"sample {sample['sample_id']}: clip_ids {missing} not in the clip records")
    recs = [clips[c] for c in ids]
    return AgentContext(
        task=sample["task"],
        mode=mode,
        question=sample["question"],
        options=list(sample.get("options") or []),
        sample_id=sample["sample_id"],
        clip_uris=[r["media_uri"] for r in recs],
        clip_spans=[(float(r["start_s"]), float(r["end_s"])) for r in recs],
        clip_audio_uris=[r.get("audio_uri") for r in recs],
        cues=_loads(sample.get("cues")) if mode == "guided" else None,
        target_speaker=sample.get("target_speaker"),
        meta=_loads(sample.get("meta")) or {},
    )


def render_messages(context: AgentContext) -> list[dict]:
    """The task's own prompt for this request (RAFT renders training prompts with the same call)."""
    request = {"question": context.question, "options": context.options}
    return get_task(context.task).render_prompt(request, context.mode, spans=context.clip_spans,
                                                cues=context.cues or {})


def answer(model: ModelAdapter, context: AgentContext, tools: ToolRunner | None, limits: Limits) -> Episode:
    """Run the model on one request; model errors become the episode's error, not an exception."""
    try:
        return run_episode(model, render_messages(context), context, tools, limits)
    except Exception as exc:  # one broken sample must not end an evaluation run
        trace = {"plan": None, "act": list(context.evidence), "reflect": None, "answer": None, "steps": 0, "stop": "error"}
        return Episode(None, trace, [], f"{type(exc).__name__}: {exc}")


def prediction_id(model_key: str, sample_id: str, mode: str, prompt_version: str | None = None) -> str:
    """The eval cache key of one prediction. ``model_key`` is the model's identity
    (``eval.models.registry.model_identity``: checkpoint bytes, endpoint + remote model, baseline code),
    not its reported name, so a retrained model is evaluated afresh; the prompt version keys the prompt."""
    return content_id(model_key, sample_id, mode, prompt_version or _prompt_version())


@functools.cache
def _prompt_version() -> str:
    return prompting.prompt_version()  # computed once per process (it reads a source file)


def prediction_row(
    model: str, sample: dict, mode: str, raw_output: str | None, trace: dict, tools_called: list[str],
    error: str | None, latency_s: float, params: ScoringParams, *, model_key: str,
) -> dict:
    """A PREDICTION_SCHEMA row: parsed, scored, with tool-decision correctness in agentic mode.
    ``model`` is the reported name; ``model_key`` the identity the row's ``prediction_id`` is keyed by."""
    task = sample["task"]
    s = get_task(task).score(raw_output, sample, params)
    metrics = dict(s.metrics)
    decision = None
    if mode == "agentic":
        required = get_task(task).required_tools_for(sample)
        td = tool_decision(tools_called, required)
        metrics["tool_decision"] = td
        decision = td["jaccard"]
    return {
        "prediction_id": prediction_id(model_key, sample["sample_id"], mode),
        "model": model,
        "sample_id": sample["sample_id"],
        "task": task,
        "mode": mode,
        "raw_output": raw_output,
        "parsed_answer": s.parsed_answer,
        "parse_ok": s.parse_ok,
        "score": float(s.score),
        "metrics": json.dumps(metrics, default=str),
        "trace": json.dumps(trace, default=str),
        "tools_called": list(tools_called),
        "tool_decision": decision,
        "latency_s": float(latency_s),
        "error": error,
    }


def predict_in_process(
    model: ModelAdapter, sample: dict, clips: dict[str, dict], mode: str, tools: ToolRunner | None,
    limits: Limits, params: ScoringParams, *, model_key: str,
) -> dict:
    t0 = time.perf_counter()
    ep = answer(model, build_context(sample, clips, mode), tools, limits)
    return prediction_row(model.name, sample, mode, ep.raw_output, ep.trace, ep.tools_called, ep.error,
                          time.perf_counter() - t0, params, model_key=model_key)
