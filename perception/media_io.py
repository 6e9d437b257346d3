"""Clip media for perception: the audio and sampled frames of one clip row, via ``infra.media``.

A clip row names ``media_uri`` (video or audio), an optional separate ``audio_uri`` and the span
``[start_s, end_s)`` in the file. Everything returned here is clip-relative (t=0 at start_s).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from infra.media import decode_audio, iter_frames


def _span(row: dict[str, Any]) -> tuple[float, float | None]:
    start = float(row.get("start_s") or 0.0)
    end = row.get("end_s")
    end = None if end is None or (isinstance(end, float) and math.isnan(end)) else float(end)
    return start, end


def audio_uri(row: dict[str, Any]) -> str:
    """The separate audio track when the row has one (AMI wav, VoxCeleb2 m4a), else the media file."""
    uri = row.get("audio_uri")
    if isinstance(uri, str) and uri:
        return uri
    return row["media_uri"]


def load_audio(row: dict[str, Any], sample_rate: int) -> np.ndarray:
    """Mono float32 audio of the clip span at ``sample_rate``; raises MediaError naming the file."""
    start, end = _span(row)
    return decode_audio(audio_uri(row), start, end, sample_rate)


def load_frames(row: dict[str, Any], fps: float, max_height: int | None) -> Iterator[tuple[float, np.ndarray]]:
    """(clip-relative t, RGB frame) at ``fps`` over the clip span, streamed one frame at a time."""
    start, end = _span(row)
    for t, frame in iter_frames(row["media_uri"], start, end, fps, max_height):
        yield t - start, frame


def has_video(row: dict[str, Any]) -> bool:
    """Whether the row's media file can carry video (audio-only sources skip the face stages)."""
    uri = str(row.get("media_uri", "")).lower()
    return not uri.endswith((".wav", ".flac", ".mp3", ".m4a", ".aac"))
