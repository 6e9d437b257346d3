"""Any OpenAI-compatible chat endpoint (ours, vLLM's, a vendor's) through the ``openai`` client.

Transient failures are retried by the client itself, up to ``max_attempts`` calls in all
(``eval.remote_max_attempts``): connection errors, timeouts, 408/409/429 and 5xx, after the
server's ``Retry-After`` when it sends one (a longer wait than 2 min is not retried), else after an exponential backoff with
jitter (0.5 s doubling to at most 8 s, less a random 0-25%). Any other 4xx fails at once: the
request itself is wrong and would fail again.

With ``accepts`` naming ``audio`` and/or ``image`` (``eval.models[i].accepts``), the clip the
evaluator asks about is sent as OpenAI content parts in the first user message: its audio span as
a base64 wav ``input_audio`` part, its frames as JPEG data-URL ``image_url`` parts
(``eval.models.clip_media``, bounded by ``eval.policy_media``), so GPT-4o or a vLLM-served
Qwen2.5-Omni is evaluated on the clip, not on the text alone.
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any

from eval.models.base import AgentContext


class OpenAIAdapter:
    kind = "openai"

    def __init__(
        self,
        name: str,
        base_url: str,
        remote_model: str | None = None,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_new_tokens: int = 128,
        temperature: float = 0.0,
        timeout_s: float = 120.0,
        max_attempts: int = 4,
        accepts: list[str] = ("text",),
        media: dict | None = None,
    ):
        from openai import OpenAI

        self.name = name
        self.remote_model = remote_model or name
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.accepts = set(accepts)
        self.media = {"max_audio_s": 30.0, "num_frames": 8, "frame_size": 224, **(media or {})}
        key = api_key or os.environ.get(api_key_env) or "none"
        if max_attempts < 1:
            raise ValueError(f"max_attempts: must be >= 1, got {max_attempts}")
        self.client = OpenAI(base_url=base_url, api_key=key, timeout=timeout_s, max_retries=max_attempts - 1)

    def media_parts(self, context: AgentContext | None) -> list[dict]:
        """The clip's audio and frames as content parts, as far as the model accepts them."""
        from eval.models.clip_media import clip_media

        want_audio, want_image = "audio" in self.accepts, "image" in self.accepts
        if context is None or not (want_audio or want_image):
            return []
        audio, frames = clip_media(context, audio=want_audio, frames=want_image, **self.media)
        parts = []
        if audio is not None and audio.size:
            import soundfile as sf

            buf = io.BytesIO()
            sf.write(buf, audio, 16000, format="WAV", subtype="PCM_16")
            parts.append({"type": "input_audio",
                          "input_audio": {"data": base64.b64encode(buf.getvalue()).decode(), "format": "wav"}})
        for _, frame in frames:
            from PIL import Image

            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=85)
            parts.append({"type": "image_url",
                          "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()}})
        return parts

    def with_media(self, messages: list[dict[str, Any]], context: AgentContext | None) -> list[dict[str, Any]]:
        """``messages`` with the media parts opening the first user turn (where Qwen2.5-Omni places media)."""
        parts = self.media_parts(context)
        if not parts:
            return messages
        out, placed = [], False
        for m in messages:
            if m["role"] == "user" and not placed and isinstance(m.get("content"), str):
                m = {**m, "content": [*parts, {"type": "text", "text": m["content"]}]}
                placed = True
            out.append(m)
        return out

    def generate(self, messages: list[dict[str, Any]], context: AgentContext | None = None) -> str:
        resp = self.client.chat.completions.create(
            model=self.remote_model,
            messages=self.with_media(messages, context),
            max_tokens=self.max_new_tokens,
            temperature=self.temperature,
        )
        return resp.choices[0].message.content or ""
