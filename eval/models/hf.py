"""Local Hugging Face model adapter: an ``omni.policy.HFOmniPolicy`` over a checkpoint folder.

It loads any folder ``HFOmniPolicy.from_pretrained`` reads — the tiny random thinker, a full
Qwen2.5-Omni checkpoint, or the HF-format export ``amuse train`` writes — and answers the chat
messages the evaluator rendered (``eval.prompting``), encoded with ``OmniProcessor.encode_chat``
and the clip's audio and a few frames, as training encodes them. Decoding is greedy at
temperature 0; otherwise sampling is seeded per request (the request's seed, else sample id and
mode), so a rerun reproduces its answers. Each request samples from its own generator
(``omni.batched.RowSampler``), so requests batched together (:meth:`HFPolicyAdapter.complete_batch`,
one padded forward) get the replies they would get alone.
"""

from __future__ import annotations

import zlib
from typing import Any

from eval.models.base import AgentContext, GenParams
from omni.batched import OnDelta, Row
from omni.completion import Completion
from omni.processor import MAX_TURN_CHARS


class HFPolicyAdapter:
    kind = "hf"

    def __init__(
        self,
        name: str,
        path: str,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        seed: int = 0,
        max_audio_s: float = 30.0,
        num_frames: int = 8,
        frame_size: int = 56,
        max_turn_chars: int | None = MAX_TURN_CHARS,
    ):
        from omni.policy import HFOmniPolicy

        self.name, self.path = name, str(path)
        self.policy = HFOmniPolicy.from_pretrained(self.path, max_audio_s=max_audio_s)
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        self.max_audio_s, self.num_frames, self.frame_size = max_audio_s, num_frames, frame_size
        # each message is bounded as RAFT's training prompts are (omni.processor.MAX_TURN_CHARS)
        self.max_turn_chars = max_turn_chars

    def _media(self, context: AgentContext | None):
        from eval.models.clip_media import clip_media

        audio, frames = clip_media(context, self.max_audio_s, self.num_frames, self.frame_size)
        # the thinker's video path takes frames in pairs (temporal patch 2)
        if len(frames) % 2:
            frames = frames[:-1]
        return audio, frames

    def _resize(self, frames: list) -> list:
        import numpy as np
        from PIL import Image

        out = [(float(t), np.asarray(Image.fromarray(np.asarray(img, dtype=np.uint8)).convert("RGB")
                                     .resize((self.frame_size, self.frame_size)))) for t, img in frames]
        return out[: self.num_frames] if self.num_frames else []

    def row(self, messages: list[dict[str, Any]], context: AgentContext | None = None,
            params: GenParams | None = None, media: dict | None = None) -> Row:
        """One request as the policy batches it. ``media`` (decoded by the ingress from the request's
        content parts) replaces the clip's own audio / frames when it carries them."""
        p = params or GenParams()
        clip = (media or {}).get("clip")
        if clip is not None:  # a clip part: decoded here as an evaluated sample's clip is
            uri, start, end = clip
            audio, frames = self._media(AgentContext("chat", "zero_shot", "", clip_uris=[uri], clip_spans=[(start, end)]))
        else:
            audio, frames = self._media(context)
        if media and media.get("audio") is not None:
            audio = media["audio"][: int(self.max_audio_s * 16000)]
        if media and media.get("frames"):
            frames = self._resize(media["frames"])
            if len(frames) == 1:
                frames = frames * 2  # a single image: the thinker's video path takes frames in pairs
            elif len(frames) % 2:
                frames = frames[:-1]
        key = f"{context.sample_id}|{context.mode}" if context else repr(messages)
        seed = p.seed if p.seed is not None else self.seed ^ zlib.crc32(key.encode())
        return self.policy.row(
            messages, audio, frames, max_new_tokens=p.max_tokens or self.max_new_tokens,
            temperature=self.temperature if p.temperature is None else p.temperature, seed=seed,
            max_turn_chars=self.max_turn_chars, top_p=p.top_p, stop=p.stop,
        )

    def complete_batch(self, rows: list[Row], on_delta: OnDelta | None = None) -> list[Completion]:
        """Replies to several requests (:meth:`row`), batched and streamed by the policy."""
        return self.policy.complete_batch(rows, on_delta)

    def complete(self, messages: list[dict[str, Any]], context: AgentContext | None = None,
                 params: GenParams | None = None, media: dict | None = None) -> Completion:
        """The reply with token usage and finish reason."""
        return self.complete_batch([self.row(messages, context, params, media)])[0]

    def generate(self, messages: list[dict[str, Any]], context: AgentContext | None = None) -> str:
        return self.complete(messages, context).text
