"""Diarization predictions (and the labels they are scored against) as RTTM, written by pyannote.core.

One RTTM "file id" per clip (the clip id), with times in seconds from the media file's start, as in the
clip records; a UEM per clip bounds the scored region to the clip's span, so md-eval or pyannote.metrics
score exactly what the clip covers.
"""

from __future__ import annotations

import io
from typing import Any

from pyannote.core import Annotation, Segment, Timeline


def annotation(clip: dict[str, Any], column: str = "pred_turns") -> Annotation:
    """The turns of ``column`` (``pred_turns`` or ``gt_turns``) of one clip record as an Annotation."""
    ann = Annotation(uri=clip["clip_id"])
    for k, turn in enumerate(clip.get(column) or []):
        if turn["end"] > turn["start"]:
            ann[Segment(float(turn["start"]), float(turn["end"])), k] = turn["speaker"]
    return ann


def to_rttm(clips: list[dict[str, Any]], column: str = "pred_turns") -> str:
    """RTTM text (10 fields per line) for every clip's ``column``."""
    buf = io.StringIO()
    for clip in sorted(clips, key=lambda c: c["clip_id"]):
        annotation(clip, column).write_rttm(buf)
    return buf.getvalue()


def to_uem(clips: list[dict[str, Any]]) -> str:
    """UEM text: each clip's [start_s, end_s) under its clip id."""
    buf = io.StringIO()
    for clip in sorted(clips, key=lambda c: c["clip_id"]):
        Timeline([Segment(float(clip["start_s"]), float(clip["end_s"]))], uri=clip["clip_id"]).write_uem(buf)
    return buf.getvalue()
