"""Clip records in the real CLIP_SCHEMA with gt_* labels and imperfect pred_* perception, for
evaluation tests that need samples from the real task builders without running curation."""

from __future__ import annotations

import random

from infra.schemas import CLIP_SCHEMA
from infra.validate import validate_row


def clip(clip_id: str, media_uri: str, source: str = "friends_mmc", video: str = "v1", scene: int = 0,
         speakers=("Ross", "Rachel", "Joey"), dur: float = 24.0, seed: int = 0, start: float = 12.5) -> dict:
    """Round-robin turns of ~3 s; each speaker has a face at a fixed spot; perception is close to the
    labels (jittered times, anonymous speaker labels, active-speaker scores high while speaking).
    The clip spans [start, start + dur] of its media file (times are file seconds), so a time-base
    slip between clip-relative questions and file-time labels cannot hide behind a clip at 0 s."""
    rng = random.Random(seed)
    turns, t, k = [], start + 0.5, 0
    order = list(speakers)
    while t + 3.0 <= start + dur:
        s = order[k % len(order)] if rng.random() > 0.25 else rng.choice(order)
        turns.append({"start": t, "end": t + 2.8, "speaker": s, "text": f"{s.lower()} talks about item {k} today"})
        t += 3.2
        k += 1
    xs = {s: 0.05 + 0.33 * i for i, s in enumerate(speakers)}
    def label(s: str, t: float) -> str:  # AVA-style per-box speaking label, from the turns
        return "SPEAKING_AUDIBLE" if any(x["speaker"] == s and x["start"] <= t <= x["end"] for x in turns) else "NOT_SPEAKING"

    gt_tracks = [{"track_id": s, "identity": s, "boxes": [
        {"t": start + j, "x1": xs[s], "y1": 0.2, "x2": xs[s] + 0.2, "y2": 0.6, "label": label(s, start + j)}
        for j in range(0, int(dur), 2)]}
        for s in speakers]
    anon = {s: f"SPK_{i}" for i, s in enumerate(speakers)}
    jit = lambda v: max(start, v + rng.uniform(-0.3, 0.3))  # noqa: E731
    pred_turns = [{"start": jit(x["start"]), "end": jit(x["end"]) + 0.31, "speaker": anon[x["speaker"]], "text": ""} for x in turns]
    times = [start + i * 0.5 for i in range(int(dur * 2))]
    asd = []
    for s in speakers:
        scores = [0.9 if any(x["speaker"] == s and x["start"] <= tt <= x["end"] for x in turns) else 0.1 for tt in times]
        asd.append({"track_id": f"trk{anon[s]}", "times": times, "scores": scores, "sync_offset_s": 0.0, "sync_confidence": 0.5})
    pred_tracks = [{"track_id": f"trk{anon[s]}", "boxes": [
        {"t": start + j, "x1": xs[s], "y1": 0.2, "x2": xs[s] + 0.2, "y2": 0.6, "score": 0.9} for j in range(0, int(dur), 2)],
        "embedding": []} for s in speakers]
    row = {
        "schema_version": "1.0", "clip_id": clip_id, "source": source, "source_video_id": video, "scene_index": scene,
        "media_uri": media_uri, "audio_uri": None, "start_s": start, "end_s": start + dur, "duration_s": dur,
        "sample_rate": 16000, "fps": 5.0, "width": 640, "height": 360,
        "gt_speakers": sorted(speakers), "gt_turns": turns, "gt_face_tracks": gt_tracks, "gt_overlap_ratio": 0.0,
        "gt_num_speakers": len(speakers), "gt_num_visible": len(speakers),
        "pred_speech": [], "pred_turns": pred_turns,
        "pred_transcript": [{"start": p["start"], "end": p["end"], "speaker": p["speaker"], "text": x["text"], "words": []}
                            for p, x in zip(pred_turns, turns, strict=True)],
        "pred_face_tracks": pred_tracks, "pred_active_speaker": asd, "pred_overlap_ratio": 0.0,
        "pred_num_speakers": len(speakers), "pred_num_visible": len(speakers),
        "features_uri": None, "quality_flags": [], "errors": [],
    }
    validate_row(row, CLIP_SCHEMA)
    return row


def corpus(media_uri: str, videos: int = 6, scenes: int = 2) -> list[dict]:
    return [clip(f"c{v}{s}", media_uri, video=f"ep{v}", scene=s, seed=10 * v + s,
                 speakers=("Ross", "Rachel", "Joey") if v % 2 else ("Monica", "Chandler"))
            for v in range(videos) for s in range(scenes)]
