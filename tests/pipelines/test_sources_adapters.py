"""Each source adapter on a fixture in its dataset's real format, quirks included, and on a broken one."""

from __future__ import annotations

import json
from dataclasses import asdict

import pyarrow as pa
import pytest
from corpus_fixtures import (
    VOX_META,
    friends_track_key,
    make_video,
    write_ami,
    write_ami_with_loose_turns,
    write_ava,
    write_friends,
    write_friends_tracks,
    write_voxceleb2,
    write_youtube,
)

from infra.schemas import CLIP_SCHEMA
from infra.validate import validate_row
from pipelines.curation.records import conform
from pipelines.sources import ADAPTERS, ClipCut, ClipRef, Quarantined
from pipelines.sources.base import cut_on_turns, overlap_ratio

CUT = ClipCut(10.0, 50.0)


def scan(name: str, root, **options) -> tuple[list[ClipRef], list[Quarantined]]:
    adapter = ADAPTERS[name](str(root / name), CUT, None, options)
    items = list(adapter.scan())
    return [i for i in items if isinstance(i, ClipRef)], [i for i in items if isinstance(i, Quarantined)]


def check_refs(refs: list[ClipRef]) -> None:
    """Every ref is a valid partial CLIP_SCHEMA row within the length bounds, turns inside the clip."""
    for i, ref in enumerate(refs):
        row = ref.to_row()
        assert CUT.min_s - 1e-6 <= row["duration_s"] <= CUT.max_s + 1e-6, row
        for t in row["gt_turns"]:
            assert ref.start_s - 1e-6 <= t["start"] < t["end"] <= ref.end_s + 1e-6
        full = {k: row.get(k) for k in CLIP_SCHEMA.names if k in row}
        full.update(schema_version="1.0", sample_rate=16000, fps=5.0)
        validate_row(full, CLIP_SCHEMA, i)
    assert len({r.clip_id for r in refs}) == len(refs)


def test_cut_on_turns_respects_bounds_and_boundaries():
    turns = [{"start": s, "end": s + 4.0, "speaker": "ab"[k % 2]} for k, s in enumerate(range(0, 120, 5))]
    clips, unplaced = cut_on_turns(turns, 0, 120, 10, 50)
    assert clips and unplaced == 0
    starts = {t["start"] for t in turns}
    ends = {t["end"] for t in turns}
    for a, b in clips:
        assert 10 <= b - a <= 50 and a in starts and b in ends
    # Overlapping turns are never split: the overlapped block is one unit.
    ov = [{"start": 0, "end": 6, "speaker": "a"}, {"start": 5, "end": 12, "speaker": "b"}]
    assert cut_on_turns(ov, 0, 20, 10, 50)[0] == [(0, 12)]
    assert overlap_ratio(ov, 0, 12) == pytest.approx(1 / 12)


def test_ami_rttm_uem_and_media(tmp_path):
    turns = write_ami(tmp_path)
    refs, quarantined = scan("ami", tmp_path)
    assert not quarantined and len(refs) >= 2
    check_refs(refs)
    r = refs[0]
    assert r.media_uri.endswith("ES2002a.Closeup1.mp4") and r.audio_uri.endswith("ES2002a.Mix-Headset.wav")
    assert r.source_video_id == "ES2002a" and [x.scene_index for x in refs] == list(range(len(refs)))
    assert {t["speaker"] for t in r.gt_turns} <= {s for _, _, s in turns}
    row = r.to_row()
    assert row["gt_num_speakers"] == 3 and 0 < row["gt_overlap_ratio"] < 0.5
    assert row["gt_face_tracks"] == [] and row["gt_num_visible"] is None


@pytest.mark.parametrize(
    "line,needle",
    [
        ("SPEAKER ES2002a 1 3.0 2.0 <NA> <NA> MEE006 <NA>", "9 fields, expected 10"),
        ("SPEAKER ES2002a 1 abc 2.0 <NA> <NA> MEE006 <NA> <NA>", "onset is not a number"),
        ("SPEAKER ES2002a 1 3.0 -2 <NA> <NA> MEE006 <NA> <NA>", "out of range"),
        ("LEXEME ES2002a 1 3.0 2.0 <NA> <NA> MEE006 <NA> <NA>", "not SPEAKER"),
    ],
)
def test_ami_broken_rttm_line_is_quarantined_with_line_number(tmp_path, line, needle):
    write_ami(tmp_path, video=False)
    rttm = tmp_path / "ami" / "rttm" / "ES2002a.rttm"
    lines = rttm.read_text().splitlines()
    lines.insert(2, line)
    rttm.write_text("\n".join(lines) + "\n")
    refs, quarantined = scan("ami", tmp_path)
    assert refs == []  # the meeting's labels cannot be trusted
    (q,) = quarantined
    assert q.uri == str(rttm) and q.line == 3 and needle in q.reason and q.stage == "adapter"
    assert q.to_row()["quarantine_id"]


def test_ami_missing_audio_is_quarantined(tmp_path):
    write_ami(tmp_path, video=False)
    (tmp_path / "ami/amicorpus/ES2002a/audio/ES2002a.Mix-Headset.wav").unlink()
    refs, quarantined = scan("ami", tmp_path)
    assert refs == [] and "audio missing" in quarantined[0].reason


def test_ami_turns_in_no_clip_are_counted_and_clip_edges_marked(tmp_path):
    write_ami_with_loose_turns(tmp_path)
    adapter = ADAPTERS["ami"](str(tmp_path / "ami"), CUT, None, {})
    refs = [r for r in adapter.scan() if isinstance(r, ClipRef)]
    check_refs(refs)
    assert [(r.start_s, r.end_s) for r in refs] == [(5.0, 20.0), (30.0, 75.0), (100.0, 130.0), (130.0, 160.0)]
    # Three turns lie in no clip (3 + 2 + 2 s); one has its first second outside the scored region.
    assert asdict(adapter.left_out) == pytest.approx({"turns": 3, "turn_s": 7.0, "cut_turns": 1, "cut_s": 1.0})
    marks = [[(t["start"], t["end"], t["cut_start"], t["cut_end"]) for t in r.gt_turns] for r in refs]
    assert marks[0] == [(5.0, 8.0, True, False), (8.5, 14.0, False, False), (14.5, 20.0, False, False)]
    assert marks[1] == [(30.0, 75.0, False, False)]
    assert marks[2:] == [[(100.0, 130.0, False, True)], [(130.0, 160.0, True, False)]]  # the monologue's two halves
    # The marks survive the clip table's Parquet type.
    gt_type = CLIP_SCHEMA.field("gt_turns").type
    stored = pa.array([conform(refs[2].to_row()["gt_turns"], gt_type)], type=gt_type).to_pylist()[0]
    assert [(t["cut_start"], t["cut_end"]) for t in stored] == [(False, True)]

def test_ava_8_columns_labels_and_tracks(tmp_path):
    write_ava(tmp_path)
    refs, quarantined = scan("ava", tmp_path)
    assert not quarantined and refs
    check_refs(refs)
    r = refs[0]
    assert r.gt_num_visible == 2
    ids = {t["track_id"] for t in r.gt_face_tracks}
    assert ids == {"abcDEF12345_0001", "abcDEF12345_0002"}
    labels = {b["label"] for t in r.gt_face_tracks for b in t["boxes"]}
    assert labels <= {"SPEAKING_AUDIBLE", "NOT_SPEAKING", "SPEAKING_NOT_AUDIBLE"}
    # Turns are the SPEAKING_AUDIBLE runs: A speaks 0-10 s, B 10-20 s.
    first = [t for t in r.gt_turns if t["start"] < 15]
    assert first[0]["speaker"] == "abcDEF12345_0001" and first[0]["end"] == pytest.approx(10.0)
    assert first[1]["speaker"] == "abcDEF12345_0002"
    # SPEAKING_NOT_AUDIBLE is not a turn (the official positive class is SPEAKING_AUDIBLE only).
    all_turns = [t for ref in refs for t in ref.gt_turns]
    assert max(t["end"] for t in all_turns) <= 38.0 + 1e-6



def write_flickering_ava(root, vid="flick000001", step=0.05) -> None:
    """AVA labels as real ones look inside a monologue: A talks 0-12 s and B 13-25 s, each label run
    broken every 0.5 s by 0.15 s of NOT_SPEAKING (so every run is 0.35 s), A's face unboxed for
    0.3 s at 3 s (a missed detection), and A pausing for 1 s at 6-7 s."""
    make_video(root / "ava" / "videos" / f"{vid}.mp4", 26.0)

    def speaking(k: int, a: float, b: float) -> bool:
        first, last = round(a / step), round(b / step)
        return first <= k < last and (k - first) % 10 not in (6, 7, 8)

    rows = []
    for k in range(round(26.0 / step)):
        t = k * step
        if not 3.0 <= t < 3.3 - 1e-9:
            a_label = "SPEAKING_AUDIBLE" if speaking(k, 0.0, 6.0) or speaking(k, 7.0, 12.0) else "NOT_SPEAKING"
            rows.append(f"{vid},{t:.2f},0.1,0.2,0.3,0.6,{a_label},{vid}_A")
        b_label = "SPEAKING_AUDIBLE" if speaking(k, 13.0, 25.0) else "NOT_SPEAKING"
        rows.append(f"{vid},{t:.2f},0.6,0.2,0.85,0.65,{b_label},{vid}_B")
    (root / "ava" / "csv").mkdir(parents=True, exist_ok=True)
    (root / "ava" / "csv" / f"{vid}-activespeaker.csv").write_text("\n".join(rows) + "\n")


def test_ava_label_gaps_within_talk_do_not_split_turns(tmp_path):
    from eval.tasks.config import TasksConfig

    write_flickering_ava(tmp_path)
    refs, quarantined = scan("ava", tmp_path)
    assert not quarantined and len(refs) == 1
    check_refs(refs)
    turns = [(round(t["start"], 2), round(t["end"], 2), t["speaker"][-1]) for t in refs[0].gt_turns]
    # Gaps of 0.15-0.45 s are bridged; A's 1 s pause is a real boundary (default curate.ava_merge_gap_s 0.5).
    assert turns == [(0.0, 6.0, "A"), (7.0, 12.0, "A"), (13.0, 25.0, "B")]
    assert len({s for a, b, s in turns if b - a >= TasksConfig().min_turn_s}) == 2  # NSP / SRID have two speakers to ask about

    # 0 keeps the label runs as they are: the fragments the option exists to join.
    refs0, _ = scan("ava", tmp_path, ava_merge_gap_s=0.0)
    fragments = [t for r in refs0 for t in r.gt_turns]
    assert len(fragments) > 40 and max(t["end"] - t["start"] for t in fragments) < TasksConfig().min_turn_s
    # A pause longer than the gap setting stays a boundary, a longer setting joins it.
    refs2, _ = scan("ava", tmp_path, ava_merge_gap_s=1.2)
    assert [(round(t["start"], 2), round(t["end"], 2)) for t in refs2[0].gt_turns] == [(0.0, 12.0), (13.0, 25.0)]


@pytest.mark.parametrize(
    "bad,needle",
    [
        ("abcDEF12345,1.00,0.1,0.2,0.3,0.6,SPEAKING_AUDIBLE", "7 columns, expected 8"),
        ("abcDEF12345,1.00,0.1,0.2,0.3,0.6,TALKING,abcDEF12345_0001", "label 'TALKING'"),
        ("abcDEF12345,1.00,0.1,0.2,1.3,0.6,NOT_SPEAKING,abcDEF12345_0001", "not a normalized"),
        ("otherVideo01,1.00,0.1,0.2,0.3,0.6,NOT_SPEAKING,abcDEF12345_0001", "does not match"),
    ],
)
def test_ava_broken_csv(tmp_path, bad, needle):
    write_ava(tmp_path)
    csv_path = tmp_path / "ava/csv/abcDEF12345-activespeaker.csv"
    lines = csv_path.read_text().splitlines()
    lines.insert(4, bad)
    csv_path.write_text("\n".join(lines) + "\n")
    refs, quarantined = scan("ava", tmp_path)
    assert refs == []
    assert quarantined[0].line == 5 and needle in quarantined[0].reason


def test_voxceleb2_meta_with_stray_spaces(tmp_path):
    write_voxceleb2(tmp_path)
    refs, quarantined = scan("voxceleb2", tmp_path)
    assert not quarantined
    check_refs(refs)
    # 12 s, 11 s and 10.5 s files make clips; the 4 s one is too short and counted, not clipped.
    assert len(refs) == 3
    by_vid = {r.source_video_id for r in refs}
    assert by_vid == {"21Uxsk56VDQ", "x9Ab_cd-EF0"}
    assert {tuple(r.to_row()["gt_speakers"]) for r in refs} == {("id00012",), ("id00015",)}
    assert refs[0].audio_uri and refs[0].audio_uri.endswith("00001.m4a")
    assert refs[1].audio_uri is None
    assert all(r.to_row()["gt_num_speakers"] is None for r in refs)  # the interviewer is unlabelled


def test_voxceleb2_broken_meta_line_and_unknown_identity(tmp_path):
    write_voxceleb2(tmp_path)
    (tmp_path / "voxceleb2/vox2_meta.csv").write_text(VOX_META.replace("id00015 ,n000015 ,f ,test ", "id0001x ,n1 ,f"))
    refs, quarantined = scan("voxceleb2", tmp_path)
    reasons = {(q.line, q.reason) for q in quarantined}
    assert (3, "3 columns, header has 4") in reasons
    assert any("id00015 is not in vox2_meta.csv" in r for _, r in reasons)
    assert {r.source_video_id for r in refs} == {"21Uxsk56VDQ"}


def test_friends_boxes_normalized_by_annotation_frame(tmp_path):
    doc = write_friends(tmp_path)
    refs, quarantined = scan("friends_mmc", tmp_path, media_dir=str(tmp_path / "media"))
    assert not quarantined and refs
    check_refs(refs)
    r = refs[0]
    assert r.source_video_id == "s01e03" and r.media_parts and r.start_s == 0.0
    assert r.media_uri.startswith(str(tmp_path / "media" / "friends_mmc" / "s01e03"))
    ross = next(t for t in r.gt_face_tracks if t["track_id"] == "Ross")
    box = ross["boxes"][0]
    # [100, 100, 300, 400] px in the 1280x720 annotation frame, not the 64x36 video.
    assert (box["x1"], box["y1"], box["x2"], box["y2"]) == pytest.approx((100 / 1280, 100 / 720, 300 / 1280, 400 / 720))
    assert r.gt_num_visible == 3
    assert r.gt_turns[0]["text"] == doc[0][0]["content"]
    # Ross speaks in turn 0, so his box at that turn's middle is labelled speaking.
    assert box["label"] == "SPEAKING_AUDIBLE" and box["t"] == pytest.approx(1.5, abs=0.05)


def test_friends_face_track_pickle_gives_per_frame_boxes(tmp_path):
    doc = write_friends(tmp_path)
    write_friends_tracks(tmp_path, doc)
    refs, quarantined = scan("friends_mmc", tmp_path, media_dir=str(tmp_path / "media"))
    assert not quarantined and refs
    check_refs(refs)
    r = refs[0]
    tracks = {t["track_id"]: t["boxes"] for t in r.gt_face_tracks}
    n_turns = len(r.gt_turns)
    # 30 frames per 3 s turn from the pickle for Ross and Rachel; Monica keeps one key-frame box per turn.
    assert len(tracks["Ross"]) == len(tracks["Rachel"]) == 30 * n_turns and len(tracks["Monica"]) == n_turns
    ross = tracks["Ross"]
    # Frame first+5 of turn 0 sits 5/30 of the way into its 3 s: t = 0.5 s; the box drifted 10 px.
    assert ross[5]["t"] == pytest.approx(0.5, abs=1e-6)
    assert (ross[5]["x1"], ross[5]["x2"]) == pytest.approx((110 / 1280, 310 / 1280))
    assert ross[0]["label"] == "SPEAKING_AUDIBLE" and ross[30]["label"] == "NOT_SPEAKING"  # Ross speaks turn 0 only
    assert tracks["Rachel"][0]["x1"] == 0.0  # a padded box past the edge is clipped to the frame
    assert tracks["Rachel"][30]["label"] == "SPEAKING_AUDIBLE"  # turn 1 is Rachel's
    turn1 = r.gt_turns[1]
    assert tracks["Rachel"][30]["t"] == pytest.approx(turn1["start"], abs=1e-6)
    assert [b["t"] for b in ross] == sorted(b["t"] for b in ross)
    assert r.gt_num_visible == 3


def test_friends_face_track_entry_by_video_name_or_key_frame():
    from pipelines.sources.friends_mmc import track_entry

    key, first, last = friends_track_key(2)
    entries = {key: {"episode": "s01e03", "first": first, "last": last, "tracks": []}}
    real_style = {"video": key, "frame": "s01e03-000001", "episode": "s01e03"}  # the real metadata names the entry
    assert track_entry(real_style, entries) is entries[key]
    by_frame = {"video": "s01e03/t2.mp4", "frame": f"s01e03-{first + 3}", "episode": "s01e03"}
    assert track_entry(by_frame, entries) is entries[key]
    elsewhere = {"video": "s01e03/t9.mp4", "frame": f"s01e03-{last + 1}", "episode": "s01e03"}
    assert track_entry(elsewhere, entries) is None


@pytest.mark.parametrize(
    "payload,needle",
    [
        ("exploit", "refuses posix.system"),
        ("bad_bbox", "bbox must be 30x4"),
        ("bad_key", "want 'sXXeYY-<first>-<last>'"),
        ("outside", "outside 990..1019"),
    ],
)
def test_friends_broken_face_track_pickle_is_quarantined_and_keyframes_kept(tmp_path, payload, needle):
    import os
    import pickle

    doc = write_friends(tmp_path)
    data = write_friends_tracks(tmp_path, doc)
    path = tmp_path / "friends_mmc/face_track_annotations/test/s01e03.pkl"
    key = friends_track_key(0)[0]
    if payload == "exploit":
        class Boom:
            def __reduce__(self):
                return (os.system, ("true",))
        data = {key: [Boom()]}
    elif payload == "bad_bbox":
        data[key][0]["bbox"] = data[key][0]["bbox"][:, :3]
    elif payload == "bad_key":
        data["turn zero"] = data.pop(key)
    else:
        data[key][1]["frame"] = data[key][1]["frame"] + 100
    path.write_bytes(pickle.dumps(data))
    refs, quarantined = scan("friends_mmc", tmp_path, media_dir=str(tmp_path / "media"))
    (q,) = quarantined
    assert needle in q.reason and q.uri.endswith("face_track_annotations/test/s01e03.pkl"), q.reason
    # The metadata's key-frame boxes still label every clip: one box per name per turn.
    assert refs and all(len(t["boxes"]) == len(r.gt_turns) for r in refs for t in r.gt_face_tracks)


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda t: t["faces"][0].__setitem__(0, [100, 100, 1400, 400]), "outside the 1280x720"),
        (lambda t: t.pop("speaker"), "lacks ['speaker']"),
        (lambda t: t["faces"].append([[1, 2, 3], "Joey"]), "is not [[x1,y1,x2,y2], name]"),
    ],
)
def test_friends_broken_turn_names_line(tmp_path, mutate, needle):
    doc = write_friends(tmp_path, n_turns=4)
    mutate(doc[0][2])
    meta = tmp_path / "friends_mmc/test-metadata.json"
    meta.write_text(json.dumps(doc, indent=2))
    refs, quarantined = scan("friends_mmc", tmp_path, media_dir=str(tmp_path / "media"))
    assert refs == []
    (q,) = quarantined
    text = meta.read_text().splitlines()
    assert needle in q.reason and "dialogue 0 turn 2" in q.reason
    assert text[q.line - 1].strip() == "{"  # the line where that turn's object opens
    assert sum(1 for ln in text[: q.line] if ln.strip() == "{") == 3


def test_youtube_sidecar_and_bare_video(tmp_path):
    write_youtube(tmp_path)
    write_youtube(tmp_path, vid="bareVideo01", duration=25.0, sidecar=False)
    refs, quarantined = scan("youtube", tmp_path)
    assert not quarantined
    check_refs(refs)
    labelled = [r for r in refs if r.source_video_id == "dQw4w9WgXcQ"]
    bare = [r for r in refs if r.source_video_id == "bareVideo01"]
    assert labelled and all(r.gt_turns for r in labelled)
    assert {t["speaker"] for r in labelled for t in r.gt_turns} == {"host", "guest"}
    assert bare and all(r.gt_turns == [] and "no_gt_labels" in r.quality_flags for r in bare)


def test_youtube_broken_sidecar(tmp_path):
    write_youtube(tmp_path)
    side = tmp_path / "youtube/dQw4w9WgXcQ.json"
    doc = json.loads(side.read_text())
    doc["turns"][3]["end"] = "soon"
    side.write_text(json.dumps(doc, indent=2))
    refs, quarantined = scan("youtube", tmp_path)
    assert refs == []
    (q,) = quarantined
    assert "turns[3]" in q.reason and q.line and side.read_text().splitlines()[q.line - 1].strip() == "{"
    side.write_text("{not json")
    (q,) = scan("youtube", tmp_path)[1]
    assert "invalid JSON" in q.reason and q.line == 1


def test_adapters_read_s3(tmp_path, s3_bucket):
    """The same adapters read the formats from s3:// (a real S3 server on loopback)."""
    from infra import storage

    write_ami(tmp_path, video=False)
    write_ava(tmp_path)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            storage.write_bytes(f"{s3_bucket}/corpus/{path.relative_to(tmp_path)}", path.read_bytes())
    for name in ("ami", "ava"):
        local = ADAPTERS[name](str(tmp_path / name), CUT).scan()
        remote = ADAPTERS[name](f"{s3_bucket}/corpus/{name}", CUT).scan()
        lref = [r for r in local if isinstance(r, ClipRef)]
        rref = [r for r in remote if isinstance(r, ClipRef)]
        assert [r.clip_id for r in lref] == [r.clip_id for r in rref] and rref
        assert rref[0].media_uri.startswith(s3_bucket)


@pytest.mark.parametrize("escape", ["../outside/s01e03_x.mp4", "s01e03/../../outside/s01e03_x.mp4",
                                    "ABS", "link/s01e03_x.mp4"])
def test_friends_turn_video_outside_the_dataset_is_quarantined(tmp_path, escape):
    """A label file naming media outside friends_mmc/ (.., absolute, or through a symlink) quarantines
    the dialogue with the file, line and field; no clip points outside the dataset."""
    doc = write_friends(tmp_path, n_turns=6)
    outside = tmp_path / "outside"
    make_video(outside / "s01e03_x.mp4", 3.0, size=(64, 36))
    (tmp_path / "friends_mmc" / "link").symlink_to(outside, target_is_directory=True)
    meta = tmp_path / "friends_mmc" / "test-metadata.json"
    doc[0][2]["video"] = str(outside / "s01e03_x.mp4") if escape == "ABS" else escape
    meta.write_text(json.dumps(doc, indent=2))
    refs, quarantined = scan("friends_mmc", tmp_path, media_dir=str(tmp_path / "media"))
    assert not refs
    (q,) = quarantined
    line = meta.read_text().splitlines()[q.line - 1]
    assert q.uri == str(meta) and q.line and "turn 2 'video'" in q.reason and line.strip() == "{"
    assert "dataset root" in q.reason or "relative" in q.reason
