"""Constant-time tool backends with the ``perception.tools`` signatures, for measuring the serving
layer itself (``bench/serve.py``): the work a tool does is nil, so what a call costs is the path."""

from __future__ import annotations

from typing import Any


def _echo(name: str, uri: str, start_s: float, end_s: float | None) -> dict[str, Any]:
    return {"tool": name, "uri": uri, "start_s": float(start_s), "end_s": end_s, "turns": [], "tracks": [], "segments": []}


def diarize(uri: str, start_s: float = 0.0, end_s: float | None = None, **_: Any) -> dict[str, Any]:
    return _echo("diarize", uri, start_s, end_s)


def transcribe(uri: str, start_s: float = 0.0, end_s: float | None = None, **_: Any) -> dict[str, Any]:
    return _echo("transcribe", uri, start_s, end_s)


def detect_faces(uri: str, start_s: float = 0.0, end_s: float | None = None, **_: Any) -> dict[str, Any]:
    return _echo("detect_faces", uri, start_s, end_s)


def track_faces(uri: str, start_s: float = 0.0, end_s: float | None = None, **_: Any) -> dict[str, Any]:
    return _echo("track_faces", uri, start_s, end_s)


def sync_check(uri: str, start_s: float = 0.0, end_s: float | None = None, **_: Any) -> dict[str, Any]:
    return _echo("sync_check", uri, start_s, end_s)


def active_speaker(uri: str, start_s: float = 0.0, end_s: float | None = None, **_: Any) -> dict[str, Any]:
    return _echo("active_speaker", uri, start_s, end_s)
