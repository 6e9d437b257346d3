"""Small synthetic clips in the real contracts (CLIP_SCHEMA / SAMPLE_SCHEMA), with real media files.

Each clip is the last 4 s of an mp4 (64x48 video with a moving block, 16 kHz tone bursts as speech)
that starts ``CLIP_START`` s into the file, as curated clips of real recordings do, and a row
carrying pred_* perception metadata and gt_* labels in media-file seconds; samples cover letter,
interval and summary tasks, with questions and answers in clip-relative seconds. A non-zero start
is what catches a time-base bug (clip-relative vs media-file seconds) that a clip at 0 s hides.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

from infra import storage
from infra.ids import content_id
from infra.schemas import CLIP_SCHEMA, SAMPLE_SCHEMA
from infra.validate import to_table

CLIP_START = 26.2  # seconds into the media file where every synthetic clip starts
CLIP_LEN = 4.0


def write_clip_media(path: Path, seconds: float = CLIP_START + CLIP_LEN, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        v = out.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = out.add_stream("aac", rate=16000)
        a.layout = "mono"
        for i in range(int(seconds * 10)):
            img = np.full((48, 64, 3), 40, np.uint8)
            x = (i * 3 + seed * 7) % 48
            img[10:30, x : x + 16] = 220
            for pkt in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(pkt)
        t = np.arange(int(seconds * 16000)) / 16000
        tone = (0.3 * np.sin(2 * np.pi * (220 + 40 * seed) * t) * (np.sin(2 * np.pi * 0.5 * t) > 0)).astype(np.float32)
        tone += 0.01 * rng.standard_normal(tone.shape).astype(np.float32)
        for j in range(0, tone.size, 1024):
            frame = av.AudioFrame.from_ndarray(tone[None, j : j + 1024], format="flt", layout="mono")
            frame.sample_rate = 16000
            frame.pts = j
            for pkt in a.encode(frame):
                out.mux(pkt)
        for pkt in list(v.encode()) + list(a.encode()):
            out.mux(pkt)


def clip_row(i: int, media: str, start: float = CLIP_START) -> dict:
    """Clip ``i`` of ``media``, spanning [start, start + 4] s of the file; all times in file seconds."""
    o = start
    turns = [{"start": o + 0.2, "end": o + 1.8, "speaker": "S1", "text": "hello team the budget is ready"},
             {"start": o + 2.1, "end": o + 3.8, "speaker": "S2", "text": "good the design meeting is tomorrow"}]
    track = lambda tid, x: {  # noqa: E731
        "track_id": tid, "embedding": [0.1, 0.2],
        "boxes": [{"t": o + t / 2, "x1": x, "y1": 0.2, "x2": x + 0.2, "y2": 0.6, "score": 0.9} for t in range(8)]}
    return {
        "clip_id": f"clip{i}", "source": "ami", "source_video_id": f"meet{i // 2}", "scene_index": i % 2,
        "media_uri": media, "audio_uri": None, "start_s": o, "end_s": o + CLIP_LEN, "duration_s": CLIP_LEN,
        "sample_rate": 16000, "fps": 10.0, "width": 64, "height": 48,
        "gt_speakers": ["alice", "bob"],
        "gt_turns": [{**t, "speaker": s} for t, s in zip(turns, ["alice", "bob"], strict=True)],
        "gt_face_tracks": [], "gt_overlap_ratio": 0.0, "gt_num_speakers": 2, "gt_num_visible": 2,
        "pred_speech": [{"start": t["start"], "end": t["end"]} for t in turns],
        "pred_turns": turns,
        "pred_transcript": [{**t, "words": []} for t in turns],
        "pred_face_tracks": [track("t1", 0.1), track("t2", 0.6)],
        "pred_active_speaker": [
            {"track_id": "t1", "times": [o + 0.5, o + 1.0, o + 2.5, o + 3.0], "scores": [0.9, 0.8, 0.1, 0.2],
             "sync_offset_s": 0.04, "sync_confidence": 0.9},
            {"track_id": "t2", "times": [o + 0.5, o + 1.0, o + 2.5, o + 3.0], "scores": [0.1, 0.2, 0.9, 0.7],
             "sync_offset_s": 0.6, "sync_confidence": 0.5}],
        "pred_overlap_ratio": 0.0, "pred_num_speakers": 2, "pred_num_visible": 2,
        "features_uri": None, "quality_flags": [], "errors": [],
    }


def sample_rows(clips: list[dict]) -> list[dict]:
    """Samples as curation writes them: guided cues from the clip's pred_* by the builders' own function."""
    from eval.tasks.common import cues

    rows = []
    for n, clip in enumerate(clips):
        cid = clip["clip_id"]
        split = "test" if n == len(clips) - 1 else "train"
        base = {"clip_ids": [cid], "source": "ami", "source_video_id": "meet0", "split": split,
                "overlap_bucket": "0-0.1", "length_bucket": "0-20", "num_visible": 2,
                "cues": json.dumps(cues(clip), sort_keys=True),
                "references": [], "answer_intervals": [], "options": [], "target_speaker": None,
                "required_tools": [], "meta": "{}", "answer_index": None}
        rows.append({**base, "task": "AVSA", "question": "Which visible person spoke at 0.5-1.5 s?",
                     "options": ["person in track t1", "person in track t2"], "answer": "A", "answer_index": 0,
                     "required_tools": ["active_speaker", "sync_check"]})
        rows.append({**base, "task": "STG", "question": "When does S2 speak?", "target_speaker": "S2",
                     "answer": "[[2.1, 3.8]]",
                     "answer_intervals": [{"start": CLIP_START + 2.1, "end": CLIP_START + 3.8}]})
        rows.append({**base, "task": "AVDS", "question": "Summarize the dialogue.",
                     "answer": "S1 says the budget is ready; S2 says the design meeting is tomorrow.",
                     "references": ["S1 says the budget is ready; S2 says the design meeting is tomorrow."]})
    for r in rows:
        r["sample_id"] = content_id(r["task"], r["clip_ids"], r["question"])
    return rows


def build_dataset(root: Path, n_clips: int = 3) -> tuple[str, str]:
    """Write clips.parquet and samples.parquet (and media) under ``root``; return their paths."""
    root.mkdir(parents=True, exist_ok=True)
    clips = []
    for i in range(n_clips):
        media = root / f"clip{i}.mp4"
        write_clip_media(media, seed=i)
        clips.append(clip_row(i, str(media)))
    clips_uri, samples_uri = str(root / "clips.parquet"), str(root / "samples.parquet")
    storage.write_parquet(to_table(clips, CLIP_SCHEMA), clips_uri)
    storage.write_parquet(to_table(sample_rows(clips), SAMPLE_SCHEMA), samples_uri)
    return samples_uri, clips_uri
