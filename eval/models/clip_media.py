"""A clip's media as the models are shown it: the span's audio (16 kHz mono, at most
``max_audio_s``) and ``num_frames`` frames sampled evenly over that window, resized square.

One reader for every adapter that sees media (the hf policy, openai endpoints that accept audio
or images), so a local and a remote model are shown the same thing (eval.policy_media).
"""

from __future__ import annotations

import numpy as np

from eval.models.base import AgentContext


def clip_media(context: AgentContext | None, max_audio_s: float, num_frames: int, frame_size: int,
               audio: bool = True, frames: bool = True) -> tuple[np.ndarray | None, list[tuple[float, np.ndarray]]]:
    """(audio or None, [(t from span start, frame_size x frame_size x 3 uint8)]) of the context's first
    clip, by the rule RAFT trains with (``infra.clip_view``); unreadable or absent media gives None / []
    (the model answers from the text alone)."""
    if context is None or not context.clip_uris:
        return None, []
    from infra.clip_view import ClipView, clip_view

    uri = context.clip_uris[0]
    audio_uri = (context.clip_audio_uris[0] if context.clip_audio_uris else None) or uri
    start, end = context.clip_spans[0] if context.clip_spans else (0.0, None)
    return clip_view(uri, audio_uri, start, end, ClipView(max_audio_s, num_frames, frame_size),
                     audio=audio, frames=frames)
