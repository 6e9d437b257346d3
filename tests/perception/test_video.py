"""Embedded video stack on a real H.264/AAC file with real faces: detection, tracking, ASD, sync."""

import numpy as np

from perception.actors import get_stage
from perception.scoring import asd_accuracy, asd_rows, ava_map, face_recall, match_tracks


def test_faces_tracks_recall_and_identities(three_speaker_clip, perception_cfg):
    out = get_stage("faces", perception_cfg).run(three_speaker_clip["row"])
    tracks = out["pred_face_tracks"]
    assert out["pred_num_visible"] == 3 and len(tracks) == 3
    gt = three_speaker_clip["gt_boxes"]
    recall = np.mean([face_recall(b, tracks) for b in gt.values()])
    assert recall >= 0.9
    emb = [np.array(t["embedding"]) for t in tracks]
    assert all(len(e) == 128 for e in emb)
    # Different people: embeddings far apart in dlib's metric (same person < 0.6).
    assert min(np.linalg.norm(emb[i] - emb[j]) for i in range(3) for j in range(i + 1, 3)) > 0.6
    assert all(0 <= b["x1"] < b["x2"] <= 1 and 0 <= b["y1"] < b["y2"] <= 1 for t in tracks for b in t["boxes"])


def test_active_speaker_accuracy_and_map(three_speaker_clip, perception_cfg):
    row = dict(three_speaker_clip["row"])
    row.update(get_stage("faces", perception_cfg).run(row))
    res = get_stage("active_speaker", perception_cfg).run(row)["pred_active_speaker"]
    d = three_speaker_clip["dialogue"]
    mapping = match_tracks(three_speaker_clip["gt_boxes"], row["pred_face_tracks"])
    assert len(mapping) == 3
    rows = asd_rows(d.turns, res, mapping)
    acc, m = asd_accuracy(rows), ava_map(rows)
    print(f"synthetic ASD frame accuracy={acc:.3f} mAP={m:.3f}")
    assert acc >= 0.85 and m >= 0.8
    # Encoded AAC starts a little late (encoder priming), so offsets sit within a few frames of 0.
    assert all(abs(r["sync_offset_s"]) <= 0.2 for r in res)


def test_sync_offset_follows_a_delayed_audio_track(tmp_path, perception_cfg):
    from tests.perception import synth

    d = synth.dialogue([0, 1, 0], voices=("slt", "awb"), seed=2)
    base, late = tmp_path / "base.mp4", tmp_path / "late.mp4"
    synth.write_video(base, d, faces=("eileen", "tom"))
    synth.write_video(late, d, faces=("eileen", "tom"), audio_delay_frames=6)
    offsets = []
    for path in (base, late):
        row = {"clip_id": path.stem, "media_uri": str(path), "audio_uri": None, "start_s": 0.0, "end_s": d.duration}
        row.update(get_stage("faces", perception_cfg).run(row))
        res = get_stage("active_speaker", perception_cfg).run(row)["pred_active_speaker"]
        best = max(res, key=lambda r: r["sync_confidence"])
        offsets.append(best["sync_offset_s"])
    assert abs((offsets[1] - offsets[0]) - 6 / 25) <= 1 / 25 + 1e-6


def test_dlib_faces_on_strided_frames(three_speaker_clip, perception_cfg):
    """PyAV hands out row-padded (non-contiguous) frames when the width is not a multiple of its alignment;
    dlib misread them (no faces found on the real 360x360 talking heads) until frames were made contiguous."""
    from perception.faces import FACE_BACKENDS
    from perception.media_io import load_frames

    backend = FACE_BACKENDS.create("opencv_dlib", perception_cfg)
    _, frame = next(iter(load_frames(three_speaker_clip["row"], 1.0, 360)))
    strided = np.pad(frame, ((0, 0), (0, 8), (0, 0)))[:, :-8]  # same pixels, rows 8 px longer in memory
    assert not strided.flags["C_CONTIGUOUS"] and np.array_equal(strided, frame)
    boxes, _ = backend.detect(np.ascontiguousarray(frame))
    strided_boxes, _ = backend.detect(strided)
    assert len(boxes) == 3 and np.allclose(strided_boxes, boxes)
    assert np.allclose(backend.embed(strided, strided_boxes), backend.embed(frame, boxes))
