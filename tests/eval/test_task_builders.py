"""Task builders on clip records: answers from gt_*, cues from pred_*, balanced letters, leak-free splits."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from eval.tasks import TASKS, task_names
from eval.tasks.build import assign_splits, build_all
from eval.tasks.config import TasksConfig
from infra.schemas import CLIP_SCHEMA, SAMPLE_SCHEMA
from infra.validate import to_table, validate_row

TOOLS = {"diarize", "transcribe", "detect_faces", "track_faces", "sync_check", "active_speaker"}


def clip(clip_id: str, source="ami", video="m1", scene=0, start=100.0, dur=30.0, speakers=("a", "b", "c"),
         text=True, faces=False, pred=False) -> dict:
    """A valid CLIP_SCHEMA row with round-robin turns of 3 s (every third overlapping the previous)."""
    turns, t = [], start + 0.5
    k = 0
    while t + 3.0 <= start + dur:
        s = speakers[k % len(speakers)]
        turns.append({"start": t, "end": t + 3.0, "speaker": s, "text": f"line {k} by {s}" if text else None})
        t += 3.5 if k % 3 else 2.5
        k += 1
    tracks = []
    if faces:
        for i, s in enumerate(speakers):
            x = 0.05 + 0.33 * i
            tracks.append({"track_id": s, "identity": s, "boxes": [
                {"t": start + j, "x1": x, "y1": 0.2, "x2": x + 0.2, "y2": 0.6, "label": "NOT_SPEAKING"}
                for j in range(0, int(dur), 2)]})
    row = {
        "schema_version": "1.0", "clip_id": clip_id, "source": source, "source_video_id": video, "scene_index": scene,
        "media_uri": f"/m/{video}.mp4", "audio_uri": None, "start_s": start, "end_s": start + dur, "duration_s": dur,
        "sample_rate": 16000, "fps": 5.0, "width": 640, "height": 360,
        "gt_speakers": sorted(set(speakers)), "gt_turns": turns, "gt_face_tracks": tracks, "gt_overlap_ratio": 0.1,
        "gt_num_speakers": len(set(speakers)), "gt_num_visible": len(tracks) if faces else None,
        "pred_speech": None, "pred_turns": None, "pred_transcript": None, "pred_face_tracks": None,
        "pred_active_speaker": None, "pred_overlap_ratio": None, "pred_num_speakers": None, "pred_num_visible": None,
        "features_uri": None, "quality_flags": [], "errors": [],
    }
    if pred:
        row["pred_turns"] = [{"start": start + 1, "end": start + 4, "speaker": "SPK_0", "text": "predicted words"}]
        row["pred_transcript"] = [{"start": start + 1, "end": start + 4, "speaker": "SPK_0", "text": "predicted words",
                                   "words": []}]
    validate_row(row, CLIP_SCHEMA)
    return row


def corpus() -> list[dict]:
    clips = []
    for v in range(6):
        for s in range(3):
            clips.append(clip(f"ami{v}{s}", "ami", f"meet{v}", s, start=6.0 + 40.0 * s, text=False))
            clips.append(clip(f"fr{v}{s}", "friends_mmc", f"s01e0{v}", s, start=3.5, dur=24.0,
                              speakers=("Ross", "Rachel", "Joey"), faces=True, pred=True))
    clips.append(clip("solo", "voxceleb2", "yt1", 0, speakers=("id00012",), text=False))
    return clips


def test_every_task_builds_valid_samples_with_strata():
    res = build_all(corpus(), TasksConfig(), seed=0)
    table = to_table(res.rows, SAMPLE_SCHEMA)  # validates every row
    assert set(table.column("task").to_pylist()) == set(task_names())
    for row in res.rows:
        assert row["overlap_bucket"] in ("low", "mid", "high")
        assert row["length_bucket"] in ("0-20s", "20-40s", ">40s")
        assert set(row["required_tools"]) <= TOOLS and row["required_tools"]
        if row["task"] in ("STG", "AVDS"):
            assert row["options"] == []
        else:
            assert len(row["options"]) >= 2 and row["answer"] == "ABCD"[row["answer_index"]]


def test_answers_come_from_gt_labels():
    c = clip("c1", speakers=("a", "b"))
    res = build_all([c], TasksConfig(tasks=["STG", "NSP"]), seed=3)
    stg = next(r for r in res.rows if r["task"] == "STG")
    own = [t for t in c["gt_turns"] if t["speaker"] == stg["target_speaker"]]
    assert [(i["start"], i["end"]) for i in stg["answer_intervals"]] == [(t["start"], t["end"]) for t in own]
    assert json.loads(stg["answer"])[0] == [round(own[0]["start"] - c["start_s"], 1), round(own[0]["end"] - c["start_s"], 1)]
    nsp = next(r for r in res.rows if r["task"] == "NSP")
    meta = json.loads(nsp["meta"])
    nxt = next(t for t in c["gt_turns"] if t["start"] >= meta["cut_s"])
    assert nsp["target_speaker"] == nxt["speaker"]


def test_unbuildable_samples_are_skipped_and_counted():
    res = build_all([clip("solo", speakers=("x",)), clip("notext", video="m2", text=False)], TasksConfig(), seed=0)
    assert not any(r["task"] == "NSP" and "solo" in r["clip_ids"] for r in res.rows)
    assert res.skipped["NSP"]["fewer than 2 labelled speakers"] == 1
    assert res.skipped["AVDS"] == {"labels carry no dialogue text": 1, "fewer than 2 labelled speakers": 1}
    assert res.skipped["AVSA"]["fewer than 2 labelled visible people"] == 2
    assert res.skipped["CSNL"]["source video has fewer than 2 scenes"] == 2


def test_correct_letter_is_balanced_across_positions():
    clips = [clip(f"c{i}", video=f"v{i}", speakers=("a", "b", "c", "d")) for i in range(40)]
    res = build_all(clips, TasksConfig(tasks=["SRID"]), seed=1)
    letters = Counter(r["answer"] for r in res.rows if len(r["options"]) == 4)
    assert sum(letters.values()) >= 36
    assert max(letters.values()) - min(letters.values()) <= 1, letters


def test_split_is_by_source_video_and_nothing_leaks():
    res = build_all(corpus(), TasksConfig(test_fraction=0.34), seed=0)
    sides: dict[tuple, set] = {}
    clip_sides: dict[str, set] = {}
    for r in res.rows:
        sides.setdefault((r["source"], r["source_video_id"]), set()).add(r["split"])
        for cid in r["clip_ids"]:
            clip_sides.setdefault(cid, set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values()) and all(len(s) == 1 for s in clip_sides.values())
    splits = {s for v in sides.values() for s in v}
    assert splits == {"train", "test"}
    csnl = [r for r in res.rows if r["task"] == "CSNL"]
    assert csnl and all(len(r["clip_ids"]) == 2 for r in csnl)
    per_source = Counter((src, s) for (src, _), v in sides.items() for s in v)
    assert per_source[("ami", "test")] == 2 and per_source[("ami", "train")] == 4
    # One video alone in its source stays in train; a different seed changes which videos are test.
    assert assign_splits({("voxceleb2", "yt1")}, 0.3, 0) == {("voxceleb2", "yt1"): "train"}
    vids = {("ami", f"m{i}") for i in range(20)}
    assert assign_splits(vids, 0.3, 0) != assign_splits(vids, 0.3, 1)


def test_guided_cues_come_from_pred_only():
    with_pred = clip("p", "friends_mmc", speakers=("Ross", "Rachel"), faces=True, pred=True)
    res = build_all([with_pred, clip("q", speakers=("a", "b"))], TasksConfig(tasks=["NSP", "AVDS", "STG"]), seed=0)
    for r in res.rows:
        cues = json.loads(r["cues"])
        text = json.dumps(cues)
        assert "line " not in text  # no gt transcript text in cues
        if "p" in r["clip_ids"]:
            assert cues["turns"][0]["speaker"] == "SPK_0" and cues["turns"][0]["start"] == 1.0
        else:
            assert cues == {} or all(not v for v in cues.values())


def test_nsp_options_do_not_reveal_the_future():
    res = build_all([clip(f"c{i}", video=f"v{i}", speakers=("a", "b", "c", "d")) for i in range(10)],
                    TasksConfig(tasks=["NSP"]), seed=0)
    for r in res.rows:
        cut = json.loads(r["meta"])["cut_s"] - 0.0
        for opt in r["options"]:
            if "first heard at" in opt:
                assert float(opt.split("first heard at ")[1].split(" s")[0]) < cut


def test_builds_are_deterministic_and_seeded():
    a = build_all(corpus(), TasksConfig(), seed=7).rows
    b = build_all(list(reversed(corpus())), TasksConfig(), seed=7).rows
    assert a == b
    c = build_all(corpus(), TasksConfig(), seed=8).rows
    assert [r["sample_id"] for r in a] != [r["sample_id"] for r in c]


def test_registry_has_one_builder_per_task():
    assert task_names() == ["AVSA", "NSP", "SRID", "STG", "AVDS", "CSNL"]
    for name, cls in TASKS.items():
        assert cls.name == name and set(cls.required_tools) <= TOOLS


@pytest.mark.parametrize("bad", [{"tasks": ["XYZ"]}, {"num_options": 1}, {"test_fraction": 1.0}])
def test_tasks_config_rejects_bad_values(bad):
    from infra.config import ConfigError, from_dict

    with pytest.raises(ConfigError):
        from_dict(TasksConfig, bad)
