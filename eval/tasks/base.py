"""What every AMUSE task module shares: the sample record, the skip signal and the builder base class.

A task module (``eval/tasks/<task>.py``) holds everything about one task. This base adds the
*building* side to the task contract (``eval.tasks.contract``: prompts, parsing, scoring, reward,
reference reply, tool-only policy): ``build_clip`` (single-clip tasks) or ``build_video`` (tasks
over several scenes of one source video, CSNL), both by rule from the clips' ``gt_*`` labels.

Conventions of the samples built here:
- question text speaks in *clip-relative* seconds (what a model watching the clip sees);
  ``answer_intervals`` keep the schema's media-file seconds; ``meta.clip_start_s`` links the two;
- options are full option texts without letters; ``answer`` is the letter of the correct one;
- ``cues`` (guided mode) come from ``pred_*`` columns only, never from labels.
"""

from __future__ import annotations

import random
from abc import ABC
from dataclasses import dataclass, field
from typing import Any, ClassVar

from eval.tasks.config import TasksConfig
from eval.tasks.contract import TaskContract
from infra.ids import content_id

LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


class Skip(Exception):
    """A sample that cannot be built from this clip; ``reason`` is counted, nothing is invented."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Sample:
    """One task sample; ``to_row`` gives a SAMPLE_SCHEMA row once the split is known."""

    task: str
    clip_ids: list[str]
    source: str
    source_video_id: str
    question: str
    answer: str
    options: list[str] = field(default_factory=list)
    answer_index: int | None = None
    answer_intervals: list[dict] | None = None
    references: list[str] | None = None
    target_speaker: str | None = None
    cues: dict[str, Any] = field(default_factory=dict)
    required_tools: list[str] = field(default_factory=list)
    overlap_bucket: str = "unknown"
    length_bucket: str = "unknown"
    num_visible: int = 0
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sample_id(self) -> str:
        return content_id(self.task, self.clip_ids, self.question, self.options, self.answer)

    def to_row(self, split: str) -> dict[str, Any]:
        import json

        return {
            "sample_id": self.sample_id, "task": self.task, "split": split, "clip_ids": list(self.clip_ids),
            "source": self.source, "source_video_id": self.source_video_id, "question": self.question,
            "options": list(self.options), "answer": self.answer, "answer_index": self.answer_index,
            "answer_intervals": self.answer_intervals, "references": self.references,
            "target_speaker": self.target_speaker, "cues": json.dumps(self.cues, sort_keys=True),
            "required_tools": list(self.required_tools), "overlap_bucket": self.overlap_bucket,
            "length_bucket": self.length_bucket, "num_visible": int(self.num_visible),
            "meta": json.dumps(self.meta, sort_keys=True),
        }


class TaskBuilder(TaskContract, ABC):
    """Base of the task classes. Subclasses set ``name``, ``kind`` and ``required_tools``, override
    ``build_clip`` (or ``build_video`` for multi-scene tasks) and register with ``@register_task``."""

    multi_clip: ClassVar[bool] = False  # True: built from groups of clips of one source video

    def __init__(self, cfg: TasksConfig, seed: int = 0):
        self.cfg = cfg
        self.seed = seed
        self._letters = LetterBalancer(random.Random(content_id("letters", self.name, seed)))

    def rng_for(self, *key: Any) -> random.Random:
        """A generator seeded by (seed, task, key): a clip's samples do not depend on the others."""
        return random.Random(content_id(self.seed, self.name, *key))

    def build_clip(self, clip: dict, rng: random.Random) -> list[Sample]:
        """Samples from one clip record (a CLIP_SCHEMA row); raise Skip when none can be built."""
        raise Skip("not a single-clip task")

    def build_video(self, clips: list[dict], rng: random.Random) -> list[Sample]:
        """Samples from all clips of one source video, in scene order (multi-clip tasks)."""
        raise Skip("not a multi-clip task")

    def choice(self, correct: str, distractors: list[str], rng: random.Random) -> tuple[list[str], int, str]:
        """(options, answer_index, answer_letter): distractors shuffled by ``rng``, the correct one placed
        at a position the balancer picks, so every letter is correct about equally often."""
        n = min(self.cfg.num_options, 1 + len(distractors))
        if n < 2:
            raise Skip("fewer than 2 options")
        picked = rng.sample(distractors, n - 1)
        pos = self._letters.next(n)
        options = picked[:pos] + [correct] + picked[pos:]
        return options, pos, LETTERS[pos]


class LetterBalancer:
    """Correct positions drawn without replacement from a shuffled bag per option count.

    Within each block of n samples with n options, each letter is correct exactly once; the order
    inside a block is random (seeded), so position carries no signal.
    """

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.bags: dict[int, list[int]] = {}

    def next(self, n: int) -> int:
        bag = self.bags.setdefault(n, [])
        if not bag:
            bag.extend(range(n))
            self.rng.shuffle(bag)
        return bag.pop()
