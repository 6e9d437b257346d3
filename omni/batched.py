"""Several chat requests through one padded ``generate``, each with its own sampling, stopping and
token stream.

Rows are left-padded to the longest prompt (``OmniThinker._collate``: attention mask, media row by
row) and decoded together for as many steps as the longest-running row needs. What differs per
request is handled per row inside that one call:

- sampling: :class:`RowSampler` draws each sampled row's token from that row's own seeded
  generator (greedy rows keep their argmax), so a row's draws do not depend on its batch-mates;
- stopping: :class:`RowTracker` ends a row at a stop token, at one of its ``stop`` strings, at
  its own ``max_new_tokens``, or when its ``cancel`` event is set (nobody reads it any more);
  ``generate`` pads a finished row until every row is done;
- streaming: the same tracker turns each new token into a text delta for its row
  (:class:`omni.completion.DeltaText`) and hands it to ``on_delta`` as the token is produced.

transformers calls stopping criteria once per step with the ids including the new token, before
its own streamer; one object therefore does both jobs, and sees exactly what ``generate`` keeps.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import (
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from omni.completion import Completion, DeltaText, cut_at_stop
from omni.processor import EOS, Encoded

OnDelta = Callable[[int, str], None]  # (row, text piece)


@dataclass
class Row:
    """One request: its encoded prompt and its generation settings (temperature 0: greedy). ``cancel``,
    when set, ends the row at the next step (finish ``cancelled``)."""

    enc: Encoded
    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    cancel: threading.Event | None = None


class RowSampler(LogitsProcessor):
    """Temperature / top-p sampling per row, each from a private ``torch.Generator``.

    ``generate`` would sample every row from torch's global generator: one request's draws would
    then depend on its batch-mates (and two threads seeding it would race). This processor draws a
    sampled row's next token itself and leaves every other token of that row at -inf, so
    ``generate`` runs greedily (argmax picks the drawn token); greedy rows pass through unchanged."""

    def __init__(self, rows: list[Row]):
        self.rows = [
            None if r.temperature <= 0 else (
                TemperatureLogitsWarper(r.temperature),
                TopPLogitsWarper(r.top_p) if r.top_p < 1.0 else None,
                torch.Generator().manual_seed(int(r.seed) & 0xFFFF_FFFF_FFFF_FFFF),
            )
            for r in rows
        ]

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = scores
        for i, spec in enumerate(self.rows):
            if spec is None:
                continue
            temperature, top_p, gen = spec
            row = temperature(input_ids[i : i + 1], scores[i : i + 1])
            if top_p is not None:
                row = top_p(input_ids[i : i + 1], row)
            drawn = torch.multinomial(torch.softmax(row.float(), dim=-1).cpu(), 1, generator=gen)
            if out is scores:
                out = scores.clone()
            out[i] = float("-inf")
            out[i, int(drawn)] = 0.0
        return out


class RowTracker(StoppingCriteria):
    """Per-row stopping and streaming (see the module doc). After ``generate``, ``ids[i]`` holds row
    i's tokens up to and including the one that ended it, ``finish[i]`` why it ended."""

    def __init__(self, rows: list[Row], prompt_len: int, stop_ids: list[int], decode: Callable[[list[int]], str],
                 on_delta: OnDelta | None):
        self.rows, self.prompt_len, self.stop_ids = rows, prompt_len, set(stop_ids)
        self.ids: list[list[int]] = [[] for _ in rows]
        self.finish: list[str | None] = [None] * len(rows)
        self.text = [DeltaText(decode, r.stop) for r in rows]
        self.on_delta = on_delta

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        new = input_ids[:, -1].tolist()
        for i, tok in enumerate(new):
            if self.finish[i] is not None:
                continue  # generate pads it until every row is done
            if self.rows[i].cancel is not None and self.rows[i].cancel.is_set():
                self.finish[i] = "cancelled"
                continue
            self.ids[i].append(tok)
            piece = "" if tok in self.stop_ids else self.text[i].push(self.ids[i])
            if tok in self.stop_ids or self.text[i].stopped:
                self.finish[i] = "stop"
            elif len(self.ids[i]) >= self.rows[i].max_new_tokens:
                self.finish[i] = "length"
            if piece and self.on_delta is not None:
                self.on_delta(i, piece)
        return torch.tensor([f is not None for f in self.finish], device=input_ids.device)

    def completion(self, i: int) -> Completion:
        """Row i's reply; the tail its stream has not sent yet goes to ``on_delta`` now."""
        text, cut = cut_at_stop(self.text[i].decode(self.ids[i]), self.rows[i].stop)
        rest = self.text[i].finish(text)
        if rest and self.on_delta is not None:
            self.on_delta(i, rest)
        finish = self.finish[i] or ("stop" if cut else "length")
        return Completion(text, self.rows[i].enc.length, len(self.ids[i]), finish)


@torch.no_grad()
def generate_rows(thinker, rows: list[Row], on_delta: OnDelta | None = None) -> list[Completion]:
    """One ``generate`` over ``rows`` (an :class:`omni.policy.OmniThinker`; the rows must carry the
    same kinds of media, see ``OmniThinker._media_key``). Returns one :class:`Completion` per row."""
    inputs, _, prompt_len = thinker._collate([r.enc for r in rows], [1] * len(rows))
    tracker = RowTracker(rows, prompt_len, thinker.stop_ids, thinker.decode, on_delta)
    extra = {}
    if any(r.temperature > 0 for r in rows):
        extra["logits_processor"] = LogitsProcessorList([RowSampler(rows)])
    was_training = thinker.model.training
    thinker.model.eval()
    try:
        thinker.model.generate(
            **inputs, do_sample=False, max_new_tokens=max(r.max_new_tokens for r in rows),
            eos_token_id=thinker.stop_ids, suppress_tokens=thinker.suppress_ids,
            pad_token_id=thinker.processor.ids[EOS], stopping_criteria=StoppingCriteriaList([tracker]), **extra,
        )
    finally:
        thinker.model.train(was_training)
    return [tracker.completion(i) for i in range(len(rows))]
