"""Local Hugging Face model adapter: the RAFT policy (``raft.model.OmniPolicy``).

It loads any folder ``OmniPolicy.from_pretrained`` reads — the tiny random thinker, a full
Qwen2.5-Omni checkpoint, or the HF-format export ``amuse train`` writes — and answers with the
clip's audio and a few frames in the prompt, as training saw them. Sampling is seeded per request
(sample id and mode), so a rerun reproduces its answers.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any

from eval.models.base import AgentContext


def raft_prompt(context: AgentContext, messages: list[dict[str, Any]]) -> str:
    """The prompt in the layout RAFT trains on (``raft.data.build_prompt``): question, lettered
    options, then ``cues:`` lines (guided) or the ``tools:`` line (agentic), then tool results."""
    import json

    parts = [context.question, *[f"{chr(65 + i)}. {o}" for i, o in enumerate(context.options)]]
    if context.mode == "guided":
        parts.append("cues:")
        for key, val in (context.cues or {}).items():
            parts.append(f"{key}: {json.dumps(val, separators=(',', ':'))[:600]}")
    elif context.mode == "agentic":
        parts.append("tools: diarize transcribe detect_faces track_faces sync_check active_speaker")
        parts += [m["content"][:1500] for m in messages[2:] if m["role"] == "user"]
    return "\n".join(parts)


def _flatten(messages: list[dict[str, Any]]) -> tuple[str, str]:
    """(system, prompt): later turns (tool results, own replies) are appended with role tags."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [m for m in messages if m["role"] != "system"]
    if len(rest) == 1:
        return system, rest[0]["content"]
    return system, "\n".join(f"[{m['role']}] {m['content']}" for m in rest)


class HFPolicyAdapter:
    kind = "hf"

    def __init__(
        self,
        name: str,
        path: str,
        max_new_tokens: int = 64,
        temperature: float = 0.0,
        seed: int = 0,
        max_audio_s: float = 4.0,
        num_frames: int = 2,
        frame_size: int = 56,
        max_prompt_chars: int = 4000,
    ):
        from raft.model import OmniPolicy

        self.name, self.path = name, str(path)
        self.policy = OmniPolicy.from_pretrained(self.path, max_audio_s=max_audio_s)
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed
        self.max_audio_s, self.num_frames, self.frame_size = max_audio_s, num_frames, frame_size
        self.max_prompt_chars = max_prompt_chars
        self._lock = threading.Lock()  # one generate at a time: torch on 2 cores gains nothing from more

    def _media(self, context: AgentContext | None):
        if context is None or not context.clip_uris:
            return None, []
        from infra.media import MediaError, decode_audio, iter_frames

        uri = context.clip_uris[0]
        start, end = context.clip_spans[0] if context.clip_spans else (0.0, None)
        end_a = start + self.max_audio_s if end is None else min(end, start + self.max_audio_s)
        try:
            audio = decode_audio(uri, start, end_a)
        except MediaError:
            audio = None  # audio-less or unreadable media: answer from the text alone
        frames = []
        if self.num_frames and end is not None:
            import numpy as np
            from PIL import Image

            fps = self.num_frames / max(end - start, 1e-3)
            try:
                for t, img in iter_frames(uri, start, end, fps=fps, max_height=None):
                    small = np.asarray(Image.fromarray(img).resize((self.frame_size, self.frame_size)))
                    frames.append((t - start, small))
                    if len(frames) == self.num_frames:
                        break
            except MediaError:
                frames = []
        # the thinker's video path takes frames in pairs (temporal patch 2)
        if len(frames) % 2:
            frames = frames[:-1]
        return audio, frames

    def generate(self, messages: list[dict[str, Any]], context: AgentContext | None = None) -> str:
        import torch

        system, prompt = _flatten(messages)
        if context is not None:
            from raft.data import SYSTEM

            system, prompt = SYSTEM, raft_prompt(context, messages)
        prompt = prompt[: self.max_prompt_chars]
        audio, frames = self._media(context)
        key = f"{context.sample_id}|{context.mode}" if context else prompt
        with self._lock:
            torch.manual_seed(self.seed ^ zlib.crc32(key.encode()))
            enc = self.policy.processor.encode(prompt, system=system, audio=audio, frames=frames)
            # OmniPolicy samples; a very low temperature stands in for greedy decoding.
            ids = self.policy.generate(enc, k=1, max_new_tokens=self.max_new_tokens, temperature=max(self.temperature, 1e-4))[0]
        return self.policy.decode(ids)
