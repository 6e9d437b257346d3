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


def held_back(text: str, stop: list[str]) -> int:
    """How many trailing characters of ``text`` a stream must not send yet: an incomplete UTF-8
    sequence (decoded as U+FFFD until its last byte arrives) or the start of a stop string (which
    would be cut if the string completes)."""
    n = len(text) - len(text.rstrip("\ufffd"))
    for s in stop:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                n = max(n, k)
                break
    return n


class DeltaText:
    """A reply's text as it grows token by token, in pieces safe to send: their concatenation is
    always a prefix of the final text (``cut_at_stop`` of the whole decode), and ``finish`` sends
    the rest. ``decode`` maps the ids so far to text (re-decoding the whole row keeps multi-byte
    characters and merges right; the cost is small beside a forward step)."""

    def __init__(self, decode, stop: list[str]):
        self.decode, self.stop = decode, [s for s in stop if s]
        self.sent = 0
        self.stopped = False  # a stop string appeared: the row is done

    def push(self, ids: list[int]) -> str:
        text, self.stopped = cut_at_stop(self.decode(ids), self.stop)
        end = len(text) if self.stopped else len(text) - held_back(text, self.stop)
        if end <= self.sent:
            return ""
        piece, self.sent = text[self.sent:end], end
        return piece

    def finish(self, final: str) -> str:
        piece, self.sent = final[self.sent:], len(final)
        return piece
