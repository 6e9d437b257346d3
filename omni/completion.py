"""A model's reply with its token usage and why it ended: what an OpenAI-style client is told.

Light on purpose (no torch): the serving ingress and the baselines build these too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Completion:
    """``prompt_tokens`` / ``completion_tokens`` come from the model's tokenizer (an LM's prompt
    includes its media placeholder tokens; its completion includes the stop token when one was
    generated). ``finish_reason``: ``stop`` (a stop token or stop string) or ``length``
    (``max_tokens`` ran out). ``usage_unit`` says what was counted: ``tokens``, or ``words`` for
    adapters without a tokenizer (the baselines)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str = "stop"
    usage_unit: str = "tokens"

    def to_dict(self) -> dict:
        return asdict(self)


def cut_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """``text`` up to (not including) the earliest stop string, and whether one was found."""
    hits = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[: min(hits)], True) if hits else (text, False)
