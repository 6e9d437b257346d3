"""The random baseline: a seeded guess per (sample, mode), ignoring every cue and tool.

Choice tasks pick a uniformly random option; STG answers one random span inside the clip; AVDS
answers the question's own words in random order (a floor for n-gram metrics, like the paper's
"random" row). The seed mixes the configured seed with the sample id and mode, so reruns agree.
"""

from __future__ import annotations

import json
import random
import string
import zlib
from typing import Any

from eval.models.base import AgentContext


class RandomAdapter:
    kind = "random"

    def __init__(self, name: str = "random", seed: int = 0):
        self.name, self.seed = name, seed

    def _rng(self, context: AgentContext) -> random.Random:
        return random.Random(self.seed * 1_000_003 + zlib.crc32(f"{context.sample_id}|{context.mode}|{context.question}".encode()))

    def generate(self, messages: list[dict[str, Any]], context: AgentContext | None = None) -> str:
        if context is None:  # plain chat: nothing structured to guess from
            return "A"
        rng = self._rng(context)
        if context.options:
            return string.ascii_uppercase[rng.randrange(len(context.options))]
        from eval.tasks import get_task

        if get_task(context.task).kind.name == "intervals":
            start, end = context.clip_spans[0] if context.clip_spans else (0.0, 10.0)
            # answers are clip-relative seconds, like the questions
            a, b = sorted(rng.uniform(0.0, end - start) for _ in range(2))
            return json.dumps([[round(a, 2), round(b, 2)]])
        words = context.question.split()
        rng.shuffle(words)
        return " ".join(words)
