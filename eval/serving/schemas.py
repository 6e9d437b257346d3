"""Request and response bodies of the HTTP API, validated by pydantic (errors name the field; 422)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from eval.tasks import task_names
from infra.schemas import MODES


def _registered_task(name: str) -> str:
    if name not in task_names():
        raise ValueError(f"{name!r} is not a registered task ({', '.join(task_names())})")
    return name


Task = Annotated[str, StringConstraints(max_length=64), AfterValidator(_registered_task)]
Mode = Literal[MODES]  # type: ignore[valid-type]
# Bounds on every list item and string, so no field can carry a large payload past validation
# (the whole body is also capped by serve.max_body_bytes, 413).
Option = Annotated[str, StringConstraints(max_length=1000)]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=4096)]


class AnswerRequest(BaseModel):
    """``POST /v1/amuse/answer``: one question about one clip (two for CSNL) in one mode."""

    model_config = ConfigDict(extra="forbid")
    model: str = Field(..., min_length=1, max_length=128, description="Model name (see GET /v1/models).")
    task: Task
    mode: Mode
    question: str = Field(..., min_length=1, max_length=4000)
    options: list[Option] = Field(default_factory=list, max_length=10)
    clip_uris: list[Uri] = Field(..., min_length=1, max_length=2, description="Media URIs inside the allowed roots.")
    clip_spans: list[tuple[float, float]] | None = Field(
        None, max_length=2, description="[start, end] per clip in media-file seconds; None: the whole file."
    )
    cues: dict[str, Any] | None = Field(
        None, max_length=64, description="Guided mode cues (at most 64 keys); None: the server computes them with the tools."
    )
    sample_id: str = Field("", max_length=128, description="Caller's id (seeds the random baseline; echoed back).")
    target_speaker: str | None = Field(None, max_length=256)

    @model_validator(mode="after")
    def _spans_match(self) -> AnswerRequest:
        if self.clip_spans is not None:
            if len(self.clip_spans) != len(self.clip_uris):
                raise ValueError(f"clip_spans: {len(self.clip_spans)} span(s) for {len(self.clip_uris)} clip(s)")
            for i, (s, e) in enumerate(self.clip_spans):
                if s < 0 or e <= s:
                    raise ValueError(f"clip_spans[{i}]: [{s}, {e}] is not a forward span of non-negative seconds")
        return self


class AnswerResponse(BaseModel):
    model: str
    sample_id: str
    mode: str
    answer: str | None
    trace: dict[str, Any]
    tools_called: list[str]
    error: str | None = None
    latency_s: float


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool"]
    content: str = Field(..., max_length=100_000)


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat completion request this server honours; unknown keys are ignored
    (clients send many optional ones), but known keys are type-checked."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(..., min_length=1, max_length=128)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=64)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    temperature: float | None = Field(None, ge=0, le=2)
    stream: bool = False

    @model_validator(mode="after")
    def _no_stream(self) -> ChatRequest:
        if self.stream:
            raise ValueError("stream: streaming responses are not supported; send stream=false")
        return self
