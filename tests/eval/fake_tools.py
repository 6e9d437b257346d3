"""A stand-in tools module for loop and endpoint tests, shaped exactly like ``perception.tools``.

Two speakers alternate (A: 0-2 s, B: 2-4 s, A: 4-6 s); track t0 (left) talks when A does, t1
(right) when B does. A media path containing ``slow`` makes every tool sleep, for timeout tests;
one containing ``broken`` makes every tool raise.
"""

from __future__ import annotations

import time

TURNS = [{"start": 0.0, "end": 2.0, "speaker": "A"}, {"start": 2.0, "end": 4.0, "speaker": "B"},
         {"start": 4.0, "end": 6.0, "speaker": "A"}]
SLOW_S = 3.0
CALLS: list[str] = []


def _maybe_slow(uri: str) -> None:
    if "slow" in uri:
        time.sleep(SLOW_S)
    if "broken" in uri:  # a crashing backend, whose error text names server paths
        raise RuntimeError(f"backend crashed reading {uri}: " + "internal-state " * 200)


def _span(uri, start_s, end_s):
    return {"uri": uri, "start_s": float(start_s), "end_s": end_s}


def diarize(uri, start_s=0.0, end_s=None, *, audio_uri=None, cfg=None):
    _maybe_slow(uri)
    CALLS.append("diarize")
    return {**_span(uri, start_s, end_s), "turns": TURNS, "num_speakers": 2, "overlap_ratio": 0.0}


def transcribe(uri, start_s=0.0, end_s=None, *, audio_uri=None, cfg=None):
    _maybe_slow(uri)
    segs = [{**t, "text": f"hello from {t['speaker']}", "words": []} for t in TURNS]
    return {**_span(uri, start_s, end_s), "segments": segs, "text": " ".join(s["text"] for s in segs)}


def detect_faces(uri, start_s=0.0, end_s=None, *, cfg=None):
    _maybe_slow(uri)
    return {**_span(uri, start_s, end_s), "frames": []}


def _boxes(x):
    return [{"t": t * 0.5, "x1": x, "y1": 0.2, "x2": x + 0.2, "y2": 0.5, "score": 0.9} for t in range(12)]


def track_faces(uri, start_s=0.0, end_s=None, *, cfg=None):
    _maybe_slow(uri)
    return {**_span(uri, start_s, end_s), "tracks": [{"track_id": "t0", "boxes": _boxes(0.1)}, {"track_id": "t1", "boxes": _boxes(0.7)}],
            "num_visible": 2}


def _asd():
    times = [t * 0.5 for t in range(12)]
    return [
        {"track_id": "t0", "times": times, "scores": [0.9 if (t < 2 or t >= 4) else 0.1 for t in times], "sync_offset_s": 0.0, "sync_confidence": 0.8},
        {"track_id": "t1", "times": times, "scores": [0.9 if 2 <= t < 4 else 0.1 for t in times], "sync_offset_s": 0.0, "sync_confidence": 0.7},
    ]


def sync_check(uri, start_s=0.0, end_s=None, *, audio_uri=None, cfg=None):
    _maybe_slow(uri)
    return {**_span(uri, start_s, end_s), "tracks": [{**{k: r[k] for k in ("track_id", "sync_offset_s", "sync_confidence")}, "in_sync": True} for r in _asd()]}


def active_speaker(uri, start_s=0.0, end_s=None, *, audio_uri=None, cfg=None):
    _maybe_slow(uri)
    return {**_span(uri, start_s, end_s), "tracks": _asd(), "speaking": []}
