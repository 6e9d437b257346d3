"""A clip's media as the models are shown it: the span's audio (16 kHz mono, at most
``max_audio_s``) and ``num_frames`` frames sampled evenly over the span, resized square.

One reader for every adapter that sees media (the hf policy, openai endpoints that accept audio
or images), so a local and a remote model are shown the same thing (eval.policy_media).
"""

from __future__ import annotations

import numpy as np

from eval.models.base import AgentContext


def clip_media(context: AgentContext | None, max_audio_s: float, num_frames: int, frame_size: int,
               audio: bool = True, frames: bool = True) -> tuple[np.ndarray | None, list[tuple[float, np.ndarray]]]:
    """(audio or None, [(t from span start, frame_size x frame_size x 3 uint8)]) of the context's first
    clip; unreadable or absent media gives None / [] (the model answers from the text alone)."""
    if context is None or not context.clip_uris:
        return None, []
    from PIL import Image

    from infra.media import MediaError, decode_audio, iter_frames

    uri = context.clip_uris[0]
    audio_uri = (context.clip_audio_uris[0] if context.clip_audio_uris else None) or uri
    start, end = context.clip_spans[0] if context.clip_spans else (0.0, None)
    wav = None
    if audio:
        end_a = start + max_audio_s if end is None else min(end, start + max_audio_s)
        try:
            wav = decode_audio(audio_uri, start, end_a)
        except MediaError:
            wav = None
    out: list[tuple[float, np.ndarray]] = []
    if frames and num_frames and end is not None:
        fps = num_frames / max(end - start, 1e-3)
        try:
            for t, img in iter_frames(uri, start, end, fps=fps, max_height=None):
                out.append((t - start, np.asarray(Image.fromarray(img).resize((frame_size, frame_size)))))
                if len(out) == num_frames:
                    break
        except MediaError:
            out = []
    return wav, out
