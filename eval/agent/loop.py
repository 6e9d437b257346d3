"""The agentic loop: plan -> tool calls -> results -> reflect -> answer, within a step budget.

Each model turn replies with JSON (see ``eval.prompting.PROTOCOL``): either
``{"plan", "tool_calls": [...]}`` or ``{"reflect", "answer"}``. Tool calls are validated
(``eval.agent.tools.validate_call``) before anything runs; an invalid call, a failing tool or a
timeout becomes an entry in ``act`` with its error, and the model sees that error next turn.
The loop stops on an answer, on the step budget (the last turn may not call tools), or on the
request deadline. The trace is ``{plan, act, reflect, answer}`` plus ``steps`` and ``stop``.

Zero-shot and guided runs go through :func:`run_episode` too (one turn, no tools), so the
evaluator and the endpoint have one code path for every mode.
"""

from __future__ import annotations

import concurrent.futures as cf
import re
import time
from dataclasses import dataclass, field
from typing import Any

from eval.agent.tools import TOOLS, ToolCallError, ToolRunner, timed_call, validate_call
from eval.models.base import AgentContext, ModelAdapter
from eval.prompting import tool_results_message
from eval.reply import json_candidates


@dataclass
class Limits:
    max_steps: int = 6
    max_tool_calls: int = 8
    tool_timeout_s: float = 60.0
    deadline: float | None = None  # time.monotonic() value after which the episode stops


@dataclass
class Episode:
    raw_output: str | None
    trace: dict[str, Any]
    tools_called: list[str] = field(default_factory=list)
    error: str | None = None


_LINE = re.compile(r"^\s*(plan|act|reflect|answer)\s*:\s*(.*)$", re.IGNORECASE | re.MULTILINE)


def parse_step(text: str) -> dict | None:
    """The protocol object of one model turn.

    JSON first (the first object with ``tool_calls`` or ``answer``). Then the line form RAFT trains
    the policy on (``plan: ...`` / ``act: diarize transcribe`` / ``reflect: ...`` / ``answer: B``):
    the tools named on the ``act`` line become tool calls, run once, and the ``answer`` line is final.
    """
    for val in json_candidates(text or ""):
        if isinstance(val, dict) and ("tool_calls" in val or "answer" in val):
            return val
    lines = {k.lower(): v.strip() for k, v in _LINE.findall(text or "")}
    if "answer" in lines or "act" in lines:
        obj: dict[str, Any] = {k: lines[k] for k in ("plan", "reflect", "answer") if k in lines}
        named = [w for w in re.split(r"[\s,;]+", lines.get("act", "")) if w in TOOLS]
        if named:
            obj["tool_calls"] = [{"name": n, "arguments": {}} for n in dict.fromkeys(named)]
            obj["final"] = "answer" in lines  # act and answer in one turn: run the tools, keep the answer
        return obj
    return None


def _call_name_args(call: Any) -> tuple[Any, Any]:
    # Accept our {"name", "arguments"} and OpenAI's {"function": {"name", "arguments"}}.
    if isinstance(call, dict) and isinstance(call.get("function"), dict):
        call = call["function"]
    if not isinstance(call, dict):
        return None, None
    return call.get("name"), call.get("arguments", {})


def _remaining(limits: Limits) -> float | None:
    return None if limits.deadline is None else limits.deadline - time.monotonic()


def run_episode(
    model: ModelAdapter,
    messages: list[dict],
    context: AgentContext,
    tools: ToolRunner | None,
    limits: Limits,
) -> Episode:
    trace: dict[str, Any] = {"plan": None, "act": [], "reflect": None, "answer": None, "steps": 0, "stop": None}
    if context.mode != "agentic":
        context.tools_allowed = False
        raw = model.generate(messages, context)
        trace.update(answer=raw, steps=1, stop="answer")
        return Episode(raw, trace)
    if tools is None:
        raise ValueError("agentic mode needs a tool runner")
    messages = list(messages)
    called: list[str] = []
    n_calls = 0
    plans: list[str] = []
    for step in range(1, limits.max_steps + 1):
        left = _remaining(limits)
        if left is not None and left <= 0:
            trace.update(stop="timeout", steps=step - 1)
            return Episode(None, trace, called, "request timeout: no answer before the deadline")
        last = step == limits.max_steps
        context.tools_allowed = not last and n_calls < limits.max_tool_calls
        raw = model.generate(messages, context)
        trace["steps"] = step
        messages.append({"role": "assistant", "content": raw})
        obj = parse_step(raw)
        if obj is None:
            # Not the protocol: the reply itself is the answer (the parser decides if it is usable).
            trace.update(answer=raw, stop="free_text")
            return Episode(raw, trace, called)
        if obj.get("plan"):
            plans.append(str(obj["plan"]))
            trace["plan"] = "\n".join(plans)
        calls = obj.get("tool_calls") or []
        if not calls:
            trace["reflect"] = obj.get("reflect")
            answer = obj.get("answer")
            answer = answer if isinstance(answer, str) or answer is None else _as_text(answer)
            trace.update(answer=answer, stop="answer")
            return Episode(answer, trace, called)
        if last:
            trace.update(stop="step_budget")
            return Episode(None, trace, called, f"step budget of {limits.max_steps} turns exhausted without an answer")
        if not isinstance(calls, list):
            calls = [calls]
        entries: list[dict | None] = []
        jobs = []  # (slot, name, args): valid calls, run together below
        for call in calls:
            name, arguments = _call_name_args(call)
            if n_calls >= limits.max_tool_calls:
                entries.append({"tool": name, "ok": False, "error": f"tool-call limit of {limits.max_tool_calls} reached"})
                continue
            n_calls += 1
            try:
                args = validate_call(name, arguments, max(1, len(context.clip_uris)))
            except ToolCallError as exc:
                entries.append({"tool": name, "arguments": arguments, "ok": False, "error": f"invalid call: {exc}"})
                continue
            called.append(name)
            jobs.append((len(entries), name, args))
            entries.append(None)
        timeout = limits.tool_timeout_s
        left = _remaining(limits)
        if left is not None:
            timeout = max(0.001, min(timeout, left))

        def run_one(job, timeout=timeout):
            _, name, args = job
            span = context.clip_spans[args.clip] if args.clip < len(context.clip_spans) else None
            audio = context.clip_audio_uris[args.clip] if args.clip < len(context.clip_audio_uris) else None
            return timed_call(tools, name, context.clip_uris[args.clip], args, timeout, span, audio)

        # The calls of one turn are independent: run them concurrently (tools are separate deployments).
        if len(jobs) > 1:
            with cf.ThreadPoolExecutor(min(len(jobs), 6)) as pool:
                results = list(pool.map(run_one, jobs))
        else:
            results = [run_one(j) for j in jobs]
        for (slot, _, _), entry in zip(jobs, results, strict=True):
            entries[slot] = entry
        trace["act"].extend(entries)
        context.evidence.extend(entries)
        if obj.get("final"):
            trace["reflect"] = obj.get("reflect")
            trace.update(answer=obj.get("answer"), stop="answer")
            return Episode(obj.get("answer"), trace, called)
        messages.append(tool_results_message(entries, last_turn=step + 1 == limits.max_steps))
    trace.update(stop="step_budget")
    return Episode(None, trace, called, f"step budget of {limits.max_steps} turns exhausted without an answer")


def _as_text(answer: Any) -> str:
    import json

    return json.dumps(answer)


def tool_decision(called: list[str], required: list[str]) -> dict[str, float]:
    """How well the tools called match the tools the task needs.

    ``jaccard`` (the headline: |called ∩ required| / |called ∪ required|) punishes both a missing
    tool and a needless one; ``recall`` and ``exact`` are kept for the report's breakdown.
    """
    c, r = set(called), set(required)
    if not c and not r:
        return {"jaccard": 1.0, "recall": 1.0, "precision": 1.0, "exact": 1.0}
    inter = len(c & r)
    return {
        "jaccard": inter / len(c | r),
        "recall": inter / len(r) if r else 1.0,
        "precision": inter / len(c) if c else 0.0,
        "exact": float(c == r),
    }
