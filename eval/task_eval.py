"""The evaluation side of every task module: render the prompt, parse the answer, score it.

:class:`TaskEvalMixin` is inherited by the task classes in ``eval/tasks`` (through
``TaskBuilder``), so ``TASK_BUILDERS["STG"].score(raw, sample)`` is the task's own scorer. The
methods are classmethods — scoring needs no builder config — and thin: the machinery lives in
``eval.prompting``, ``eval.parsing``, ``eval.scoring`` and ``eval.metrics``, keyed by the task's
answer kind. A task overrides a method only where it differs.
"""

from __future__ import annotations

from typing import Any, ClassVar

from eval import prompting, scoring
from eval.metrics.bootstrap import Estimate
from eval.parsing import Parsed


class TaskEvalMixin:
    name: ClassVar[str] = ""

    @classmethod
    def answer_kind(cls) -> str:
        """choice | intervals | text."""
        return scoring.TASK_KINDS[cls.name]

    @classmethod
    def render_prompt(
        cls, sample: dict, mode: str, spans: list[tuple[float, float]] | None = None, cues: dict | None = None
    ) -> list[dict[str, str]]:
        """Chat messages for ``sample`` in ``mode``; guided mode uses ``cues`` (default: the sample's)."""
        if mode == "guided" and cues is None:
            import json

            cues = json.loads(sample.get("cues") or "{}")
        return prompting.render(cls.name, mode, sample["question"], list(sample.get("options") or []),
                                cls.answer_kind(), spans=spans, cues=cues if mode == "guided" else None)

    @classmethod
    def parse_answer(cls, raw: str | None, sample: dict) -> Parsed:
        """Letter, intervals or text from a raw reply; ``ok=False`` (logged) when unreadable."""
        return scoring.parse_answer(cls.name, raw, sample)

    @classmethod
    def score(cls, raw: str | None, sample: dict, params: scoring.ScoringParams | None = None) -> scoring.SampleScore:
        """Per-sample score in [0, 1] (accuracy, tIoU, or sentence BLEU / 100) and its metrics."""
        return scoring.score_sample(cls.name, raw, sample, params)

    @classmethod
    def aggregate(
        cls, rows: list[dict[str, Any]], samples: dict[str, dict], params: scoring.ScoringParams | None = None
    ) -> dict[str, Estimate]:
        """Headline metrics with bootstrap 95% CIs over prediction rows of this task."""
        return scoring.aggregate(cls.name, rows, samples, params)

    @classmethod
    def required_tools_for(cls, sample: dict) -> list[str]:
        return list(sample.get("required_tools") or getattr(cls, "required_tools", ()) or scoring.DEFAULT_REQUIRED_TOOLS[cls.name])
