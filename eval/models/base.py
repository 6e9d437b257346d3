"""The one interface every model adapter implements, and the context the agent loop hands it.

An adapter turns chat messages into text. Language models read only ``messages``; the two
baselines, which have no language model, read the structured :class:`AgentContext` the loop
passes beside them (task, options, clip spans, and the tool results gathered so far). Both views
describe the same request, so any adapter can sit behind the loop, the evaluator or the endpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, runtime_checkable

from omni.completion import Completion, cut_at_stop


@dataclass
class AgentContext:
    task: str
    mode: str
    question: str
    options: list[str] = field(default_factory=list)
    sample_id: str = ""
    clip_uris: list[str] = field(default_factory=list)
    clip_spans: list[tuple[float, float]] = field(default_factory=list)  # media-file seconds per clip
    clip_audio_uris: list[str | None] = field(default_factory=list)  # separate audio track (AMI), else None
    cues: dict | None = None  # guided mode: perception cues (from pred_* / the tools)
    evidence: list[dict] = field(default_factory=list)  # agentic: trace entries of tool calls so far
    tools_allowed: bool = False  # whether this turn may still call tools
    target_speaker: str | None = None
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AgentContext:
        d = dict(d)
        d["clip_spans"] = [tuple(s) for s in d.get("clip_spans") or []]
        return cls(**d)


@dataclass
class GenParams:
    """Per-request generation settings (the OpenAI request's); None: the adapter's configured value."""

    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@runtime_checkable
class ModelAdapter(Protocol):
    name: str

    def generate(self, messages: list[dict[str, Any]], context: AgentContext | None = None) -> str:
        """One model turn: the assistant's reply text."""
        ...


def _words(messages: list[dict[str, Any]]) -> int:
    return sum(len(str(m.get("content") or "").split()) for m in messages)


def complete(adapter: Any, messages: list[dict[str, Any]], context: AgentContext | None = None,
             params: GenParams | None = None, media: dict | None = None) -> Completion:
    """One turn with usage and finish reason. Adapters with a tokenizer implement ``complete``
    themselves (``media``: decoded ``audio`` at 16 kHz and ``frames`` [(t, HxWx3 uint8)] sent with
    the request). The others (the baselines: no language model, no tokenizer, no media) answer
    through ``generate``; their usage counts whitespace-separated words (``usage_unit`` "words"),
    ``max_tokens`` cuts the reply to that many words (finish ``length``) and ``stop`` cuts it."""
    params = params or GenParams()
    if hasattr(adapter, "complete"):
        return adapter.complete(messages, context, params, media)
    text, _ = cut_at_stop(adapter.generate(messages, context), params.stop)
    words, finish = text.split(), "stop"
    if params.max_tokens is not None and len(words) > params.max_tokens:
        text, finish = " ".join(words[: params.max_tokens]), "length"
        words = words[: params.max_tokens]
    return Completion(text, _words(messages), len(words), finish, usage_unit="words")
