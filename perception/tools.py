"""Perception as plain in-process functions: the agent's tools and the guided-cue builders call these.

Each takes a media URI (local path or s3://) and a span ``[start_s, end_s)`` of that file, loads
the configured backends once per process, and returns a JSON-serialisable dict. Times are
seconds from the start of the media file, like the clip records. Failures raise (MediaError names
the file; BackendUnavailable names the missing package or weights file and config key).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
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
    with _FACE_LOCK:  # the face backend is shared with track_faces (see below)
        found = detect_frames(backend, frames)
    return {**_span(uri, start_s, end_s), "frames": found}


# --- one face stage for track_faces, active_speaker and sync_check ---------------------------------
#
# The tools used to run the face stage separately (active_speaker through its own FacesStage), and
# the agent calls them concurrently from threads. Two things followed: the tracks that
# active_speaker scored were not the tracks track_faces returned (ids could not be linked), and two
# threads shared dlib's ResNet embedder, which keeps per-call state in the network and is not
# thread-safe, so concurrent calls could corrupt embeddings and change how tracks were re-joined
# (7 tracks on one run, 4 on the next). Now every face-track computation runs under one lock and
# is cached per process by (media, span, config, file version): identical input gives identical
# tracks, and every tool sees the same ids.

_FACE_LOCK = threading.RLock()
_CACHE_SIZE = 64
_TRACKS: OrderedDict[tuple, list[dict]] = OrderedDict()
_ASD: OrderedDict[tuple, list[dict]] = OrderedDict()


def _file_version(uri: str) -> tuple:
    try:
        st = os.stat(uri)
        return (st.st_size, st.st_mtime_ns)
    except OSError:  # remote (s3://) or missing: the stage itself names a missing file
        return ()


def _key(uri: str, start_s: float, end_s: float | None, c: PerceptionConfig, *extra: Any) -> tuple:
    return (uri, _file_version(uri), round(float(start_s), 4), None if end_s is None else round(float(end_s), 4),
            json.dumps(_asdict(c), sort_keys=True, default=str), *extra)


def _remember(cache: OrderedDict, key: tuple, value: list[dict]) -> list[dict]:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def face_tracks(uri: str, start_s: float, end_s: float | None, c: PerceptionConfig) -> list[dict]:
    """The face tracks of a span (media-file seconds), computed once per process and shared."""
    key = _key(uri, start_s, end_s, c)
    with _FACE_LOCK:
        if key not in _TRACKS:
            out = get_stage("faces", c).run(_row(uri, start_s, end_s, None))
            _remember(_TRACKS, key, out["pred_face_tracks"])
        else:
            _TRACKS.move_to_end(key)
        return _TRACKS[key]


def clear_cache() -> None:
    with _FACE_LOCK:
        _TRACKS.clear()
        _ASD.clear()


def track_faces(uri: str, start_s: float = 0.0, end_s: float | None = None, *, cfg: Cfg = None,
                with_embeddings: bool = False) -> dict[str, Any]:
    """Face tracks: {tracks[{track_id, boxes, box, x_center, position, embedding?}], num_visible}.

    The same tracks (and ids) that active_speaker and sync_check score for the same span.
    """
    c = as_config(cfg)
    tracks = [_summarize(t) for t in face_tracks(uri, start_s, end_s, c)]
    if not with_embeddings:
        tracks = [{k: v for k, v in t.items() if k != "embedding"} for t in tracks]
    return {**_span(uri, start_s, end_s), "tracks": tracks, "num_visible": len(tracks)}


def horizontal(x: float) -> str:
    """Where a face is across the frame; the thresholds the AVSA questions use (eval.tasks.common)."""
    return "left" if x < 0.38 else ("right" if x > 0.62 else "centre")


def _summarize(track: dict) -> dict:
    """A track with its representative place: mean normalized box, its x centre and a position word."""
    boxes = track.get("boxes") or []
    out = dict(track, boxes=[dict(b) for b in boxes])
    if boxes:
        mean = {k: round(sum(float(b[k]) for b in boxes) / len(boxes), 4) for k in ("x1", "y1", "x2", "y2")}
        out["box"] = mean
        out["x_center"] = round((mean["x1"] + mean["x2"]) / 2, 4)
        out["position"] = horizontal(out["x_center"])
        out["from"], out["to"] = float(boxes[0]["t"]), float(boxes[-1]["t"])
    return out


def _asd(uri, start_s, end_s, audio_uri, c) -> list[dict]:
    """Active-speaker records, one per face track of the span (same ids as track_faces), cached."""
    key = _key(uri, start_s, end_s, c, audio_uri)
    tracks = face_tracks(uri, start_s, end_s, c)
    with _FACE_LOCK:
        if key not in _ASD:
            row = _row(uri, start_s, end_s, audio_uri)
            row["pred_face_tracks"] = tracks
            _remember(_ASD, key, get_stage("active_speaker", c).run(row)["pred_active_speaker"])
        else:
            _ASD.move_to_end(key)
        res = _ASD[key]
    by_id = {t["track_id"]: _summarize(t) for t in tracks}
    out = []
    for r in res:
        tr = by_id.get(r["track_id"], {})
        out.append({**r, **{k: tr[k] for k in ("box", "x_center", "position", "boxes") if k in tr}})
    return out


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
    """Who is speaking on screen, per face track: {tracks[{track_id, times, scores, sync_offset_s,
    sync_confidence, box, x_center, position, boxes}], speaking[{t, track_id, score}]}.

    Track ids and boxes are those of track_faces for the same span, so a client can tell where in the
    frame (left / centre / right) the speaking person is.
    """
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
