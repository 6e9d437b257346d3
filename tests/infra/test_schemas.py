import pyarrow as pa
import pytest

from infra.ids import content_id
from infra.schemas import (
    CLIP_SCHEMA,
    PREDICTION_SCHEMA,
    QUARANTINE_SCHEMA,
    SAMPLE_SCHEMA,
    SCHEMAS,
    gt_columns,
    pred_columns,
)
from infra.validate import SchemaError, to_table, validate_row, validate_table


def clip_row(**kw):
    row = {
        "clip_id": content_id("ami", "ES2004a.wav", 0.0, 20.0),
        "source": "ami",
        "source_video_id": "ES2004a",
        "scene_index": 0,
        "media_uri": "data/corpus/ami/amicorpus/ES2004a/audio/ES2004a.Mix-Headset.wav",
        "start_s": 0.0,
        "end_s": 20.0,
        "duration_s": 20.0,
        "sample_rate": 16000,
        "fps": 0.0,
        "gt_speakers": ["A", "B"],
        "gt_turns": [{"start": 0.5, "end": 3.0, "speaker": "A", "text": None}],
        "gt_face_tracks": [
            {"track_id": "t0", "identity": "A",
             "boxes": [{"t": 1.0, "x1": 0.1, "y1": 0.2, "x2": 0.3, "y2": 0.5, "label": "SPEAKING_AUDIBLE"}]}
        ],
        "pred_turns": [{"start": 0.4, "end": 3.1, "speaker": "spk0", "text": None}],
        "pred_overlap_ratio": 0.1,
    }
    row.update(kw)
    return row


def test_every_schema_is_versioned_and_ids_are_required():
    for name, schema in SCHEMAS.items():
        assert schema.field("schema_version").nullable is False, name
        assert schema.metadata[b"amuse.schema"] == name.encode()
        assert any(n.endswith("_id") and not schema.field(n).nullable for n in schema.names), name


def test_gt_and_pred_are_disjoint_families():
    gt, pred = gt_columns(CLIP_SCHEMA), pred_columns(CLIP_SCHEMA)
    assert gt and pred
    # Both families describe the same things (turns, face tracks, overlap, counts) side by side.
    assert {c[3:] for c in gt} & {c[5:] for c in pred} >= {"turns", "face_tracks", "overlap_ratio"}
    assert not set(gt) & set(pred)
    # Samples carry answers from gt only through 'answer*', and cues from pred only through 'cues'.
    assert not gt_columns(SAMPLE_SCHEMA) and not pred_columns(SAMPLE_SCHEMA)


def test_valid_clip_round_trips_through_arrow():
    table = to_table([clip_row()], CLIP_SCHEMA)
    assert table.schema.equals(CLIP_SCHEMA, check_metadata=False)
    assert table.column("schema_version").to_pylist() == ["1.0"]
    assert validate_table(table, CLIP_SCHEMA) == 1


@pytest.mark.parametrize(
    "override, field",
    [
        ({"source": "tiktok"}, "source"),
        ({"start_s": "zero"}, "start_s"),
        ({"end_s": 0.0}, "end_s"),
        ({"gt_turns": [{"start": 1.0, "end": "x", "speaker": "A", "text": None}]}, r"gt_turns\[0\]\.end"),
        ({"pred_turns": [{"start": 5.0, "end": 1.0, "speaker": "s", "text": None}]}, r"pred_turns\[0\]\.end"),
        ({"gt_face_tracks": [{"track_id": "t", "identity": "A",
          "boxes": [{"t": 0.0, "x1": 10.0, "y1": 0.0, "x2": 0.5, "y2": 0.5, "label": None}]}]},
         r"gt_face_tracks\[0\]\.boxes\[0\]\.x1"),
        ({"clip_id": None}, "clip_id"),
        ({"sample_rate": 16000.5}, "sample_rate"),
        ({"pred_overlap_ratio": 1.5}, "pred_overlap_ratio"),
        ({"gt_speakers": "A"}, "gt_speakers"),
        ({"made_up": 1}, "made_up"),
    ],
)
def test_bad_field_is_named(override, field):
    rows = [clip_row(), clip_row(**override)]
    with pytest.raises(SchemaError, match=field) as err:
        to_table(rows, CLIP_SCHEMA)
    assert "row 1" in str(err.value)


def test_incompatible_schema_version_is_rejected():
    with pytest.raises(SchemaError, match="schema_version"):
        validate_row({**clip_row(), "schema_version": "2.0"}, CLIP_SCHEMA)


def test_sample_prediction_quarantine_rows():
    import eval.tasks  # noqa: F401  (registers the task names the validator checks)

    sample = {
        "sample_id": content_id("STG", "c1"), "task": "STG", "split": "test", "clip_ids": ["c1"],
        "source": "ava", "source_video_id": "v1", "question": "When does Alice speak?", "options": [],
        "answer": "[[1.0, 2.0]]", "answer_intervals": [{"start": 1.0, "end": 2.0}],
        "overlap_bucket": "0.1-0.2", "length_bucket": "20-40", "num_visible": 3,
    }
    pred = {
        "prediction_id": content_id("random", sample["sample_id"], "guided"), "model": "random",
        "sample_id": sample["sample_id"], "task": "STG", "mode": "guided", "parse_ok": True, "score": 0.4,
    }
    quarantine = {"quarantine_id": "q1", "source": "ava", "uri": "x.csv", "line": 3, "stage": "adapter",
                  "reason": "bad label"}
    assert to_table([sample], SAMPLE_SCHEMA).num_rows == 1
    assert to_table([pred], PREDICTION_SCHEMA).num_rows == 1
    assert to_table([quarantine], QUARANTINE_SCHEMA).num_rows == 1
    with pytest.raises(SchemaError, match="field 'task'"):
        to_table([{**sample, "task": "QA"}], SAMPLE_SCHEMA)
    with pytest.raises(SchemaError, match="field 'mode'"):
        to_table([{**pred, "mode": "fewshot"}], PREDICTION_SCHEMA)
    with pytest.raises(SchemaError, match="field 'reason' is required"):
        to_table([{**quarantine, "reason": None}], QUARANTINE_SCHEMA)


def test_table_missing_column_is_named():
    table = to_table([clip_row()], CLIP_SCHEMA).drop_columns(["gt_turns"])
    with pytest.raises(SchemaError, match="gt_turns"):
        validate_table(table, CLIP_SCHEMA)


def test_content_ids_are_stable_and_sensitive():
    a = content_id("ava", "v.mp4", 0.0, 20.0)
    assert a == content_id("ava", "v.mp4", 0.0000001, 20.0)
    assert a != content_id("ava", "v.mp4", 0.0, 20.5)
    assert content_id("ab", "c") != content_id("a", "bc")
    assert len(a) == 16 and int(a, 16) >= 0


def test_empty_tables_have_the_contract_schema():
    assert pa.Table.from_pylist([], schema=CLIP_SCHEMA).num_rows == 0
