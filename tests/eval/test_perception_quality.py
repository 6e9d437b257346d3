"""The report's perception-quality figures from clip records: ASD mAP the AVA way on a hand-worked
case, and DER / WER equal to perception.scoring's own functions."""

from __future__ import annotations

import pytest

from eval.metrics import asd
from eval.metrics.perception_quality import asd_label_rows, summarize

BOX_A = {"x1": 0.1, "y1": 0.2, "x2": 0.3, "y2": 0.6}
BOX_B = {"x1": 0.6, "y1": 0.2, "x2": 0.8, "y2": 0.6}
FAR = {"x1": 0.0, "y1": 0.8, "x2": 0.05, "y2": 0.95}


def _clip(clip_id: str = "c1") -> dict:
    gt_a = [("SPEAKING_AUDIBLE", 0.0), ("NOT_SPEAKING", 1.0), ("SPEAKING_AUDIBLE", 2.0), ("SPEAKING_NOT_AUDIBLE", 3.0)]
    gt_b = [("NOT_SPEAKING", 0.0), ("SPEAKING_AUDIBLE", 1.0), (None, 2.0)]  # an unlabelled box is no ASD row
    return {
        "clip_id": clip_id, "start_s": 0.0, "end_s": 4.0,
        "gt_face_tracks": [
            {"track_id": "A", "identity": "Ann", "boxes": [{"t": t, **BOX_A, "label": lab} for lab, t in gt_a]},
            {"track_id": "B", "identity": "Bo", "boxes": [{"t": t, **BOX_B, "label": lab} for lab, t in gt_b]},
        ],
        # p0 follows A, 0.05 s off the labelled times (nearest frame); p1 follows B at t=0 but is
        # elsewhere at t=1, so B's speaking box there is covered by no track and scores 0.
        "pred_face_tracks": [
            {"track_id": "p0", "boxes": [{"t": t + 0.05, **BOX_A, "score": 1.0} for t in range(4)]},
            {"track_id": "p1", "boxes": [{"t": 0.0, **BOX_B, "score": 1.0}, {"t": 1.0, **FAR, "score": 1.0}]},
        ],
        "pred_active_speaker": [
            {"track_id": "p0", "times": [0.05, 1.05, 2.05, 3.05], "scores": [0.9, 0.2, 0.7, 0.8]},
            {"track_id": "p1", "times": [0.0, 1.0], "scores": [0.3, 0.6]},
        ],
        "gt_turns": [{"start": 0.0, "end": 0.5, "speaker": "Ann", "text": "hello there"},
                     {"start": 1.0, "end": 1.5, "speaker": "Bo", "text": "good morning"},
                     {"start": 2.0, "end": 2.5, "speaker": "Ann", "text": "how are you"}],
        "pred_turns": [{"start": 0.0, "end": 0.6, "speaker": "S0"}, {"start": 1.0, "end": 2.5, "speaker": "S1"}],
        "pred_transcript": [{"start": 0.0, "end": 0.6, "text": "hello there"}, {"start": 1.0, "end": 2.5, "text": "good morning how are you"}],
    }


def test_asd_rows_match_boxes_to_tracks_and_score_unmatched_faces_zero():
    rows = asd_label_rows(_clip())
    assert [(r[2], r[1], r[3], r[4]) for r in rows] == [
        ("A", 0.0, "SPEAKING_AUDIBLE", 0.9), ("A", 1.0, "NOT_SPEAKING", 0.2), ("A", 2.0, "SPEAKING_AUDIBLE", 0.7),
        ("A", 3.0, "SPEAKING_NOT_AUDIBLE", 0.8), ("B", 0.0, "NOT_SPEAKING", 0.3), ("B", 1.0, "SPEAKING_AUDIBLE", 0.0),
    ]


def test_asd_map_by_hand_and_as_the_official_procedure():
    q = summarize([_clip()], n_boot=50)
    # ranked: .9 TP, .8 FP (not audible is negative), .7 TP, .3 FP, .2 FP, 0 TP -> precision 1, 1/2, 2/3,
    # 1/2, 2/5, 1/2; monotone envelope at the three recall steps: 1, 2/3, 1/2 -> AP = (1 + 2/3 + 1/2) / 3
    assert q["ASD mAP"]["value"] == pytest.approx((1 + 2 / 3 + 1 / 2) / 3)
    assert q["asd_rows"] == 6 and q["asd_positive"] == 3
    rows = asd_label_rows(_clip())
    gt = [{"video_id": r[0], "frame_timestamp": r[1], "entity_id": r[2], "label": r[3]} for r in rows]
    pred = [{"video_id": r[0], "frame_timestamp": r[1], "entity_id": r[2], "score": r[4]} for r in rows]
    assert asd.asd_map(gt, pred) == pytest.approx(q["ASD mAP"]["value"])


def test_der_and_wer_are_perception_scorings_and_cis_cover_them():
    from perception.scoring import der_total, wer

    clips = [_clip("c1"), {**_clip("c2"), "pred_turns": [{"start": 0.0, "end": 2.5, "speaker": "S0"}],
                           "pred_transcript": [{"start": 0.0, "end": 2.5, "text": "hello morning"}]}]
    q = summarize(clips, n_boot=100)
    ref = [([(t["start"], t["end"], t["speaker"]) for t in c["gt_turns"]], c["pred_turns"], (0.0, 4.0)) for c in clips]
    assert q["DER"]["value"] == pytest.approx(der_total(ref))
    assert q["WER"]["value"] == pytest.approx(wer(["hello there good morning how are you"] * 2,
                                                   ["hello there good morning how are you", "hello morning"]))
    for key in ("ASD mAP", "DER", "WER"):
        e = q[key]
        assert e["n"] == 2 and e["low"] <= e["value"] <= e["high"], (key, e)


def test_clips_without_labels_give_no_figures():
    q = summarize([{"clip_id": "x", "start_s": 0.0, "end_s": 1.0}])
    assert q["ASD mAP"] is None and q["DER"] is None and q["WER"] is None and q["n_clips"] == 1
