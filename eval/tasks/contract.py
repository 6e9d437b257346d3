"""The task contract: what curation, RAFT and the evaluator all read from one task class.

A task (``eval/tasks/<task>.py``) subclasses :class:`~eval.tasks.base.TaskBuilder`, which adds
the building side (samples from clip records) to the contract below, and registers itself with
``@register_task``. Everything else derives from the registered class:

- its answer ``kind`` (``eval.tasks.kinds``): prompt format line, parser, gold, scorer, metrics;
- ``required_tools``: the tools a correct agentic answer needs (tool-decision correctness, the
  ``act`` line of the reference response);
- ``guided_steps``: the guided prompt's instructions;
- :meth:`render_prompt`: the chat messages of a sample in a mode — RAFT trains on these same
  messages, byte for byte;
- :meth:`parse` / :meth:`score` / :meth:`reward`: one parse (reply, then answer) and one scorer,
  whose per-sample score is RAFT's answer reward;
- :meth:`reference_response`: the reply RAFT's alignment term trains towards;
- :meth:`tool_only_answer` and ``tool_only_tools``: the tool-only baseline's policy for the task;
- :meth:`columns`: its report columns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from eval import prompting
from eval.metrics.bootstrap import Estimate
from eval.parsing import Parsed
from eval.reply import Reply, parse_reply
from eval.tasks.kinds import AnswerKind, SampleScore, ScoringParams

if TYPE_CHECKING:
    from eval.models.base import AgentContext
    from eval.models.evidence import Evidence


@dataclass
class Answer:
    """A parsed reply: the reply's sections and the task's reading of its answer (a value)."""

    reply: Reply
    parsed: Parsed

    @property
    def ok(self) -> bool:
        return self.parsed.ok

    @property
    def value(self) -> Any:
        return self.parsed.value if self.parsed.ok else None

    @property
    def sections(self) -> dict[str, str]:
        return self.reply.sections

    @property
    def tools(self) -> list[str]:
        return self.reply.tools

    @property
    def answer(self) -> str:
        return self.reply.section("answer")

    @property
    def letter(self) -> str | None:
        v = self.value
        return v if isinstance(v, str) and len(v) == 1 else None

    @property
    def intervals(self) -> list[tuple[float, float]]:
        v = self.value
        return list(v) if isinstance(v, list) else []


class TaskContract:
    name: ClassVar[str] = ""
    kind: ClassVar[AnswerKind]
    required_tools: ClassVar[tuple[str, ...]] = ()
    guided_steps: ClassVar[tuple[str, ...]] = ()
    tool_only_tools: ClassVar[tuple[str, ...] | None] = None  # what the tool-only policy calls (default: required)
    baseline_sanity: ClassVar[bool] = True  # report tool-only minus random for this task

    # -- prompts -----------------------------------------------------------------------------------
    @classmethod
    def cues_of(cls, sample: dict) -> dict:
        cues = sample.get("cues")
        return json.loads(cues or "{}") if isinstance(cues, str) or cues is None else dict(cues)

    @classmethod
    def render_prompt(cls, sample: dict, mode: str, spans: list[tuple[float, float]] | None = None,
                      cues: dict | None = None) -> list[dict[str, str]]:
        """Chat messages for ``sample`` in ``mode`` (guided: ``cues``, default the sample's own)."""
        if mode == "guided" and cues is None:
            cues = cls.cues_of(sample)
        return prompting.render(cls, mode, sample["question"], list(sample.get("options") or []), spans=spans,
                                cues=cues if mode == "guided" else None)

    # -- answers -----------------------------------------------------------------------------------
    @classmethod
    def parse(cls, raw: str | None, sample: dict) -> Answer:
        reply = parse_reply(raw)
        return Answer(reply, cls.kind.parse(reply.answer, sample))

    @classmethod
    def gold(cls, sample: dict) -> Any:
        """The reference answer as a value (raises GoldError naming the sample when unreadable)."""
        return cls.kind.gold(sample)

    @classmethod
    def score(cls, raw: str | Answer | None, sample: dict, params: ScoringParams | None = None) -> SampleScore:
        """Per-sample score in [0, 1] (accuracy, tIoU, or sentence BLEU / 100) and its metrics."""
        ans = raw if isinstance(raw, Answer) else cls.parse(raw, sample)
        return cls.kind.score(ans.parsed, sample, params or ScoringParams())

    @classmethod
    def reward(cls, answer: Answer, sample: dict, params: ScoringParams | None = None) -> float:
        """RAFT's answer reward: the evaluator's per-sample score of the same parsed answer."""
        return float(cls.score(answer, sample, params).score)

    @classmethod
    def aggregate(cls, rows: list[dict[str, Any]], samples: dict[str, dict],
                  params: ScoringParams | None = None) -> dict[str, Estimate]:
        """Headline metrics with bootstrap 95% CIs over prediction rows of this task."""
        return cls.kind.aggregate(rows, samples, params or ScoringParams())

    @classmethod
    def columns(cls, params: ScoringParams | None = None) -> list[str]:
        return cls.kind.columns(params or ScoringParams())

    @classmethod
    def required_tools_for(cls, sample: dict) -> list[str]:
        return list(sample.get("required_tools") or cls.required_tools)

    # -- training target ---------------------------------------------------------------------------
    @classmethod
    def reflection(cls, sample: dict, mode: str) -> str:
        """The reflect line of the reference reply; tasks may say what the evidence shows."""
        return "the cues agree with this answer" if mode == "guided" else "answered from the clip"

    @classmethod
    def reference_response(cls, sample: dict, mode: str) -> str:
        """The reply RAFT trains towards, in the reply format every mode's prompt asks for."""
        tools = cls.required_tools_for(sample) if mode != "zero_shot" else []
        act = " ".join(tools) or "none"
        answer = cls.kind.reference_answer(sample)
        return (f"plan: {'check ' + act if tools else 'answer from the clip'}\nact: {act}\n"
                f"reflect: {cls.reflection(sample, mode)}\nanswer: {answer}")

    # -- tool-only baseline ------------------------------------------------------------------------
    @classmethod
    def tools_for_baseline(cls) -> list[str]:
        return list(cls.tool_only_tools if cls.tool_only_tools is not None else cls.required_tools)

    @classmethod
    def tool_only_answer(cls, ctx: AgentContext, evidence: list[Evidence]) -> str:
        """The tool-only baseline's answer from perception evidence; default: the kind's empty answer."""
        return cls.kind.empty_answer
