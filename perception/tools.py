"""Perception as plain in-process functions: the agent's tools and the guided-cue builders call these.

Each takes a media URI (local path or s3://) and a span ``[start_s, end_s)`` of that file, loads
the configured backends once per process, and returns a JSON-serialisable dict. Times are
seconds from the start of the media file, like the clip records. Failures raise (MediaError names
the file; BackendUnavailable names the missing package or weights file and config key).
"""

from __future__ import annotations

from typing import Any

from perception.actors import as_config, get_stage
from perception.config import PerceptionConfig
from perception.faces import detect_frames
from perception.media_io import load_frames

Cfg = PerceptionConfig | dict | None


def _row(uri: str, start_s: float, end_s: float | None, audio_uri: str | None) -> dict[str, Any]:
    return {"clip_id": f"{uri}#{start_s}-{end_s}", "media_uri": uri, "audio_uri": audio_uri,
            "start_s": float(start_s), "end_s": end_s}


def _span(uri, start_s, end_s) -> dict[str, Any]:
    return {"uri": uri, "start_s": float(start_s), "end_s": end_s}


def diarize(uri: str, start_s: float = 0.0, end_s: float | None = None, *, audio_uri: str | None = None,
            num_speakers: int | None = None, cfg: Cfg = None) -> dict[str, Any]:
    """Who speaks when: {speech, turns[{start,end,speaker}], num_speakers, overlap_ratio}."""
    c = as_config(cfg)
    if num_speakers is not None:
        c = as_config({**_asdict(c), "num_speakers": num_speakers})
    row = _row(uri, start_s, end_s, audio_uri)
    row.update(get_stage("vad", c).run(row))
    row.update(get_stage("diarization", c).run(row))
    return {**_span(uri, start_s, end_s), "speech": row["pred_speech"],
            "turns": [{k: t[k] for k in ("start", "end", "speaker")} for t in row["pred_turns"]],
            "num_speakers": row["pred_num_speakers"], "overlap_ratio": row["pred_overlap_ratio"]}


def transcribe(uri: str, start_s: float = 0.0, end_s: float | None = None, *, audio_uri: str | None = None,
               with_speakers: bool = True, cfg: Cfg = None) -> dict[str, Any]:
    """What was said: {segments[{start,end,text,speaker,words}], text}. Speakers come from diarization."""
    c = as_config(cfg)
    row = _row(uri, start_s, end_s, audio_uri)
    row.update(get_stage("vad", c).run(row))
    if with_speakers:
        row.update(get_stage("diarization", c).run(row))
    row.update(get_stage("asr", c).run(row))
    segs = row["pred_transcript"]
    return {**_span(uri, start_s, end_s), "segments": segs, "text": " ".join(s["text"] for s in segs if s["text"])}


def detect_faces(uri: str, start_s: float = 0.0, end_s: float | None = None, *, fps: float | None = None,
                 cfg: Cfg = None) -> dict[str, Any]:
    """Faces per sampled frame: {frames[{t, faces[{t,x1,y1,x2,y2,score}]}]}, boxes normalized."""
    c = as_config(cfg)
    backend = get_stage("faces", c).backend
    row = _row(uri, start_s, end_s, None)
    frames = [(t + start_s, f) for t, f in load_frames(row, fps or c.fps_sample, c.max_height)]
    return {**_span(uri, start_s, end_s), "frames": detect_frames(backend, frames)}


def track_faces(uri: str, start_s: float = 0.0, end_s: float | None = None, *, cfg: Cfg = None,
                with_embeddings: bool = False) -> dict[str, Any]:
    """Face tracks: {tracks[{track_id, boxes, embedding?}], num_visible}."""
    c = as_config(cfg)
    out = get_stage("faces", c).run(_row(uri, start_s, end_s, None))
    tracks = out["pred_face_tracks"]
    if not with_embeddings:
        tracks = [{k: v for k, v in t.items() if k != "embedding"} for t in tracks]
    return {**_span(uri, start_s, end_s), "tracks": tracks, "num_visible": out["pred_num_visible"]}


def _asd(uri, start_s, end_s, audio_uri, c) -> list[dict]:
    row = _row(uri, start_s, end_s, audio_uri)
    row.update(get_stage("faces", c).run(row))
    return get_stage("active_speaker", c).run(row)["pred_active_speaker"]


def sync_check(uri: str, start_s: float = 0.0, end_s: float | None = None, *, audio_uri: str | None = None,
               min_confidence: float = 0.1, cfg: Cfg = None) -> dict[str, Any]:
    """AV sync per face track: {tracks[{track_id, sync_offset_s, sync_confidence, in_sync}]}."""
    c = as_config(cfg)
    res = _asd(uri, start_s, end_s, audio_uri, c)
    frame = 1.0 / get_stage("active_speaker", c).backend.fps
    return {**_span(uri, start_s, end_s), "tracks": [
        {"track_id": r["track_id"], "sync_offset_s": r["sync_offset_s"], "sync_confidence": r["sync_confidence"],
         "in_sync": bool(r["sync_confidence"] >= min_confidence and abs(r["sync_offset_s"]) <= 2 * frame)}
        for r in res]}


def active_speaker(uri: str, start_s: float = 0.0, end_s: float | None = None, *, audio_uri: str | None = None,
                   threshold: float = 0.5, cfg: Cfg = None) -> dict[str, Any]:
    """Who is speaking on screen: per-track scores over time, and the speaking track per time step."""
    c = as_config(cfg)
    res = _asd(uri, start_s, end_s, audio_uri, c)
    timeline: dict[float, tuple[str, float]] = {}
    for r in res:
        for t, s in zip(r["times"], r["scores"], strict=True):
            if s >= threshold and s > timeline.get(t, ("", -1.0))[1]:
                timeline[t] = (r["track_id"], s)
    return {**_span(uri, start_s, end_s), "tracks": res,
            "speaking": [{"t": t, "track_id": tid, "score": s} for t, (tid, s) in sorted(timeline.items())]}


def _asdict(c: PerceptionConfig) -> dict:
    from infra.config import to_dict

    return to_dict(c)
