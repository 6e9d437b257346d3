"""Data contracts (DESIGN §3): pyarrow schemas for clip records, task samples, predictions and quarantine.

Conventions every producer and consumer relies on:
- times are float seconds from the start of the *media file* (clip bounds are start_s/end_s in it);
- boxes are normalized to [0, 1] as (x1, y1, x2, y2), whatever the source's native units;
- ``gt_*`` columns hold only the dataset's own labels, ``pred_*`` columns only what perception
  predicted; nothing else may start with either prefix, and neither kind is derived from the other;
- ids are content hashes (``infra.ids``), so reruns are idempotent;
- each table carries ``schema_version``; readers refuse a major version they do not know.
"""

from __future__ import annotations

import pyarrow as pa

SCHEMA_VERSION = "1.0"

SOURCES = ("ava", "ami", "voxceleb2", "friends_mmc", "youtube")
MODES = ("zero_shot", "guided", "agentic")
SPLITS = ("train", "test")

f64, f32, i32, s, b = pa.float64(), pa.float32(), pa.int32(), pa.string(), pa.bool_()

INTERVAL = pa.struct([("start", f64), ("end", f64)])
TURN = pa.struct([("start", f64), ("end", f64), ("speaker", s), ("text", s)])
# A labelled turn may be cut at a clip edge: cut_start / cut_end say it really starts before / ends
# after the clip (null where the source does not say: sources that never cut, older records).
GT_TURN = pa.struct([*TURN, ("cut_start", b), ("cut_end", b)])
WORD = pa.struct([("start", f64), ("end", f64), ("word", s)])
TRANSCRIPT_SEGMENT = pa.struct(
    [("start", f64), ("end", f64), ("text", s), ("speaker", s), ("words", pa.list_(WORD))]
)
BOX = pa.struct([("t", f64), ("x1", f32), ("y1", f32), ("x2", f32), ("y2", f32), ("score", f32)])
GT_BOX = pa.struct([("t", f64), ("x1", f32), ("y1", f32), ("x2", f32), ("y2", f32), ("label", s)])
GT_FACE_TRACK = pa.struct([("track_id", s), ("identity", s), ("boxes", pa.list_(GT_BOX))])
PRED_FACE_TRACK = pa.struct([("track_id", s), ("boxes", pa.list_(BOX)), ("embedding", pa.list_(f32))])
ACTIVE_SPEAKER = pa.struct(
    [
        ("track_id", s),
        ("times", pa.list_(f64)),
        ("scores", pa.list_(f32)),
        ("sync_offset_s", f32),
        ("sync_confidence", f32),
    ]
)
STAGE_ERROR = pa.struct([("stage", s), ("message", s)])


def _with_version(fields: list[pa.Field], name: str) -> pa.Schema:
    return pa.schema(
        [pa.field("schema_version", s, nullable=False), *fields],
        metadata={b"amuse.schema": name.encode(), b"amuse.schema_version": SCHEMA_VERSION.encode()},
    )


CLIP_SCHEMA = _with_version(
    [
        pa.field("clip_id", s, nullable=False),
        pa.field("source", s, nullable=False),
        pa.field("source_video_id", s, nullable=False),  # episode / meeting / video: the split and CSNL unit
        pa.field("scene_index", i32, nullable=False),
        pa.field("media_uri", s, nullable=False),  # video where there is one, else audio
        pa.field("audio_uri", s),  # separate audio track (AMI wav, VoxCeleb2 m4a) when the source has one
        pa.field("start_s", f64, nullable=False),
        pa.field("end_s", f64, nullable=False),
        pa.field("duration_s", f64, nullable=False),
        pa.field("sample_rate", i32, nullable=False),
        pa.field("fps", f32, nullable=False),  # frames sampled per second for perception (0: audio only)
        pa.field("width", i32),
        pa.field("height", i32),
        # --- dataset labels
        pa.field("gt_speakers", pa.list_(s)),
        pa.field("gt_turns", pa.list_(GT_TURN)),
        pa.field("gt_face_tracks", pa.list_(GT_FACE_TRACK)),
        pa.field("gt_overlap_ratio", f64),
        pa.field("gt_num_speakers", i32),
        pa.field("gt_num_visible", i32),
        # --- perception outputs
        pa.field("pred_speech", pa.list_(INTERVAL)),
        pa.field("pred_turns", pa.list_(TURN)),
        pa.field("pred_transcript", pa.list_(TRANSCRIPT_SEGMENT)),
        pa.field("pred_face_tracks", pa.list_(PRED_FACE_TRACK)),
        pa.field("pred_active_speaker", pa.list_(ACTIVE_SPEAKER)),
        pa.field("pred_overlap_ratio", f64),
        pa.field("pred_num_speakers", i32),
        pa.field("pred_num_visible", i32),
        # --- bookkeeping
        pa.field("features_uri", s),  # time-aligned embeddings, stored by reference (npz)
        pa.field("quality_flags", pa.list_(s)),
        pa.field("errors", pa.list_(STAGE_ERROR)),
    ],
    "clip",
)

SAMPLE_SCHEMA = _with_version(
    [
        pa.field("sample_id", s, nullable=False),
        pa.field("task", s, nullable=False),
        pa.field("split", s, nullable=False),
        pa.field("clip_ids", pa.list_(s), nullable=False),  # one clip, or two scenes for CSNL
        pa.field("source", s, nullable=False),
        pa.field("source_video_id", s, nullable=False),
        pa.field("question", s, nullable=False),
        pa.field("options", pa.list_(s)),  # empty for STG and AVDS
        pa.field("answer", s, nullable=False),  # letter, JSON intervals, or reference text
        pa.field("answer_index", i32),
        pa.field("answer_intervals", pa.list_(INTERVAL)),
        pa.field("references", pa.list_(s)),  # AVDS reference summaries
        pa.field("target_speaker", s),
        pa.field("cues", s),  # JSON guided-mode cues, built from pred_* only
        pa.field("required_tools", pa.list_(s)),
        pa.field("overlap_bucket", s, nullable=False),
        pa.field("length_bucket", s, nullable=False),
        pa.field("num_visible", i32, nullable=False),
        pa.field("meta", s),  # JSON: anything task-specific
    ],
    "sample",
)

PREDICTION_SCHEMA = _with_version(
    [
        pa.field("prediction_id", s, nullable=False),  # eval.runner.prediction_id: model identity, sample, mode, prompt version
        pa.field("model", s, nullable=False),
        pa.field("sample_id", s, nullable=False),
        pa.field("task", s, nullable=False),
        pa.field("mode", s, nullable=False),
        pa.field("raw_output", s),
        pa.field("parsed_answer", s),
        pa.field("parse_ok", b, nullable=False),
        pa.field("score", f64, nullable=False),
        pa.field("metrics", s),  # JSON per-sample metrics (tIoU, BLEU inputs, ...)
        pa.field("trace", s),  # JSON {plan, act, reflect, answer}
        pa.field("tools_called", pa.list_(s)),
        pa.field("tool_decision", f64),
        pa.field("latency_s", f64),
        pa.field("error", s),
    ],
    "prediction",
)

QUARANTINE_SCHEMA = _with_version(
    [
        pa.field("quarantine_id", s, nullable=False),
        pa.field("source", s, nullable=False),
        pa.field("uri", s, nullable=False),
        pa.field("line", i32),  # 1-based line in a label file, when the problem is a line
        pa.field("stage", s, nullable=False),  # adapter | decode | <perception stage>
        pa.field("reason", s, nullable=False),
    ],
    "quarantine",
)

SCHEMAS = {"clip": CLIP_SCHEMA, "sample": SAMPLE_SCHEMA, "prediction": PREDICTION_SCHEMA, "quarantine": QUARANTINE_SCHEMA}


def gt_columns(schema: pa.Schema) -> list[str]:
    return [n for n in schema.names if n.startswith("gt_")]


def pred_columns(schema: pa.Schema) -> list[str]:
    return [n for n in schema.names if n.startswith("pred_")]
