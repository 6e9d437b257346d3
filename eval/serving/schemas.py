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


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(..., max_length=100_000)


class InputAudio(BaseModel):
    data: str = Field(..., description="Base64 of the audio file.")
    format: Literal["wav"] = "wav"


class AudioPart(BaseModel):
    type: Literal["input_audio"]
    input_audio: InputAudio


class ImageUrl(BaseModel):
    model_config = ConfigDict(extra="ignore")  # OpenAI's "detail" is accepted and has no effect here
    url: str = Field(..., description="data:image/...;base64,... or a URI under serve.allowed_media_roots.")


class ImagePart(BaseModel):
    type: Literal["image_url"]
    image_url: ImageUrl


class ClipRef(BaseModel):
    uri: Uri = Field(..., description="Media file under serve.allowed_media_roots.")
    start_s: float = Field(0.0, ge=0)
    end_s: float | None = Field(None, gt=0, description="None: the end of the file.")


class ClipPart(BaseModel):
    """Extension part (not OpenAI's): a clip by URI; the model decodes its audio and frames itself."""

    type: Literal["amuse_clip"]
    amuse_clip: ClipRef


ContentPart = Annotated[TextPart | AudioPart | ImagePart | ClipPart, Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "user", "assistant", "tool"]
    content: str | list[ContentPart] = Field(..., max_length=100_000)

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p.text for p in self.content if isinstance(p, TextPart))


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The subset of OpenAI's chat completion request this server honours; unknown keys are ignored
    (clients send many optional ones), but known keys are type-checked."""

    model_config = ConfigDict(extra="ignore")
    model: str = Field(..., min_length=1, max_length=128)
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=64)
    max_tokens: int | None = Field(None, ge=1, le=4096)
    max_completion_tokens: int | None = Field(None, ge=1, le=4096, description="OpenAI's newer name for max_tokens.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    seed: int | None = None
    stop: str | list[Annotated[str, StringConstraints(min_length=1, max_length=256)]] | None = Field(None, max_length=4)
    n: int = Field(1, ge=1, le=1, description="One choice per request.")
    stream: bool = False
    stream_options: StreamOptions | None = None

    def stops(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
