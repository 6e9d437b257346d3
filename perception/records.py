"""Record shapes every backend returns: plain dicts, JSON-serialisable, matching ``infra.schemas``.

Backends work in *clip-relative* seconds (0 = the clip's first sample); the actor stages and the
tools shift them to media-file seconds with :func:`shift_times`, which is the schema's convention.
"""

from __future__ import annotations

from typing import TypedDict


class Segment(TypedDict):
    start: float
    end: float


class Turn(TypedDict):
    start: float
    end: float
    speaker: str
    text: str


class Word(TypedDict):
    start: float
    end: float
    word: str


class TranscriptSegment(TypedDict):
    start: float
    end: float
    text: str
    speaker: str
    words: list[Word]


class Box(TypedDict):
    t: float
    x1: float
    y1: float
    x2: float
    y2: float
    score: float


class FaceTrack(TypedDict):
    track_id: str
    boxes: list[Box]
    embedding: list[float]


class ActiveSpeakerTrack(TypedDict):
    track_id: str
    times: list[float]
    scores: list[float]
    sync_offset_s: float
    sync_confidence: float


def shift_times(records: list[dict], offset: float) -> list[dict]:
    """Copy of ``records`` with every time field moved by ``offset`` seconds (nested words/boxes/times too)."""
    out = []
    for rec in records:
        r = dict(rec)
        for key in ("start", "end", "t"):
            if key in r:
                r[key] = float(r[key]) + offset
        if "words" in r:
            r["words"] = shift_times(r["words"], offset)
        if "boxes" in r:
            r["boxes"] = shift_times(r["boxes"], offset)
        if "times" in r:
            r["times"] = [float(t) + offset for t in r["times"]]
        out.append(r)
    return out
