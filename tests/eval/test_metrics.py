"""Metrics against the reference implementations on fixed inputs, and hand-computed tIoU."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from eval.metrics import asd, temporal, text
from eval.metrics.bootstrap import bootstrap_mean, bootstrap_stat

HYPS = [
    "Alice asks Bob about the budget and Bob says it is late.",
    "Carol thanks everyone for coming.",
    "Dan and Eve argue about the schedule; Eve wins.",
]
REFS = [
    ["Alice asks Bob about the budget, and Bob answers that it is late.", "Bob says the budget is late when Alice asks."],
    ["Carol thanks everybody for coming to the meeting."],
    ["Dan argues with Eve about the schedule.", "Eve and Dan disagree on the schedule.", "The schedule is debated."],
]


def test_bleu_equals_sacrebleu_exactly():
    import sacrebleu

    # sacrebleu's own API with variable reference counts padded by None.
    streams = [[r[i] if i < len(r) else None for r in REFS] for i in range(3)]
    expected = sacrebleu.corpus_bleu(HYPS, streams).score
    assert text.corpus_bleu(HYPS, REFS) == expected
    assert 0 < expected < 100
    assert text.bleu_signature(HYPS, REFS).startswith("nrefs:var|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0")
    assert text.sentence_bleu(HYPS[1], REFS[1]) == sacrebleu.sentence_bleu(HYPS[1], REFS[1], use_effective_order=True).score


def test_cider_equals_pycocoevalcap_exactly():
    from pycocoevalcap.cider.cider import Cider

    gts = {i: [text.coco_tokenize(r) for r in refs] for i, refs in enumerate(REFS)}
    res = {i: [text.coco_tokenize(h)] for i, h in enumerate(HYPS)}
    expected, per = Cider().compute_score(gts, res)
    got, got_per = text.cider(HYPS, REFS)
    assert got == float(expected)
    assert got_per == [float(x) for x in per]
    assert got > 0


def test_coco_tokenize_drops_punctuation():
    assert text.coco_tokenize("Bob says: \"it's LATE!\"") == "bob says it s late"


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs Java (make sysdeps installs a JRE)")
def test_meteor_runs_through_pycocoevalcap():
    got, got_per = text.meteor(HYPS, REFS)
    # pycocoevalcap's own call on the same JVM (a second one would load METEOR's tables again, ~10 s)
    gts = {i: [text.coco_tokenize(r) for r in refs] for i, refs in enumerate(REFS)}
    res = {i: [text.coco_tokenize(h)] for i, h in enumerate(HYPS)}
    expected, per = text._meteor.compute_score(gts, res)
    assert got == pytest.approx(float(expected), abs=1e-12)
    assert got_per == pytest.approx([float(x) for x in per], abs=1e-12)
    assert 0 < got < 1


@pytest.mark.parametrize(
    "pred,gold,expected",
    [
        ([(0, 10)], [(0, 10)], 1.0),
        ([(0, 5)], [(5, 10)], 0.0),  # touching, no overlap
        ([(0, 10)], [(5, 15)], 5 / 15),
        ([(2, 4)], [(0, 10)], 0.2),
        ([(0, 2), (4, 6)], [(1, 5)], 2 / 6),  # inter 1+1, union 6
        ([(0, 4), (2, 6)], [(0, 6)], 1.0),  # overlapping predictions merge
        ([], [(0, 1)], 0.0),
    ],
)
def test_tiou_hand_cases(pred, gold, expected):
    assert temporal.tiou(pred, gold) == pytest.approx(expected)


def test_stg_sample_metrics():
    m = temporal.stg_sample_metrics([(1.0, 9.0)], [(0.0, 10.0)], [0.3, 0.5, 0.7, 0.9], 1.0)
    assert m["tiou"] == pytest.approx(0.8)
    assert (m["r1@0.3"], m["r1@0.5"], m["r1@0.7"], m["r1@0.9"]) == (1.0, 1.0, 1.0, 0.0)
    assert m["off_by_one"] == 1.0  # both boundaries exactly 1 s off
    assert temporal.off_by_one([(1.5, 9.0)], [(0.0, 10.0)], 1.0) == 0.0
    assert temporal.off_by_one([(1.5, 9.0)], [(0.0, 10.0)], 2.0) == 1.0
    assert temporal.off_by_one([(0, 2), (5, 7)], [(0, 7)], 1.0) == 0.0  # wrong number of turns
    none = temporal.stg_sample_metrics(None, [(0, 1)], [0.5], 1.0)
    assert none == {"tiou": 0.0, "off_by_one": 0.0, "r1@0.5": 0.0}


# --- ASD mAP: the official AVA procedure, transcribed from get_ava_active_speaker_performance.py
def _official_ap(precision, recall):
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = np.maximum(precision[i], precision[i + 1])
    indices = np.where(recall[1:] != recall[:-1])[0] + 1
    return np.sum((recall[indices] - recall[indices - 1]) * precision[indices])


def _official_map(gt_rows, pred_rows):
    df_gt = pd.DataFrame(gt_rows)
    df_pred = pd.DataFrame(pred_rows).assign(label="SPEAKING_AUDIBLE")
    for df in (df_gt, df_pred):
        df["uid"] = df["frame_timestamp"].map(str) + ":" + df["entity_id"]
    merged = df_gt.merge(df_pred, on="uid", suffixes=("_groundtruth", "_prediction"), validate="1:1")
    merged = merged.sort_values(by=["score"], ascending=False).reset_index()
    all_pos = merged[merged["label_groundtruth"] == "SPEAKING_AUDIBLE"]["uid"].count()
    is_tp = np.where((merged["label_groundtruth"] == "SPEAKING_AUDIBLE") & (merged["label_prediction"] == "SPEAKING_AUDIBLE"), 1, 0)
    tp = np.cumsum(is_tp)
    precision = tp / (merged.index + 1)
    recall = tp / all_pos
    return _official_ap(np.array(precision, dtype=float), np.array(recall, dtype=float))


def test_asd_map_matches_official_procedure():
    rng = np.random.default_rng(3)
    labels = ["SPEAKING_AUDIBLE", "NOT_SPEAKING", "SPEAKING_NOT_AUDIBLE"]
    gt, pred = [], []
    for v in range(3):
        for e in range(4):
            for k in range(25):
                ts = round(900.0 + k * 0.04, 2)
                ent = f"vid{v}:{e}"
                label = labels[rng.choice(3, p=[0.4, 0.45, 0.15])]
                gt.append({"video_id": f"vid{v}", "frame_timestamp": ts, "entity_id": ent, "label": label})
                # scores correlate with the label but are noisy (continuous: no ties)
                pred.append({"video_id": f"vid{v}", "frame_timestamp": ts, "entity_id": ent,
                             "score": float(rng.normal(1.0 if label == "SPEAKING_AUDIBLE" else 0.0, 1.0))})
    expected = _official_map(gt, pred)
    got = asd.asd_map(gt, list(reversed(pred)))
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0.4 < got < 1.0


def test_asd_map_hand_case_and_missing_prediction():
    gt = [{"video_id": "v", "frame_timestamp": t, "entity_id": "v:0", "label": lab}
          for t, lab in [(0.0, "SPEAKING_AUDIBLE"), (1.0, "NOT_SPEAKING"), (2.0, "SPEAKING_AUDIBLE")]]
    pred = [{"video_id": "v", "frame_timestamp": t, "entity_id": "v:0", "score": s} for t, s in [(0.0, 0.9), (1.0, 0.8), (2.0, 0.1)]]
    # ranks: TP, FP, TP -> precision 1, 1/2, 2/3; recall 1/2, 1/2, 1 -> AP = 0.5*1 + 0.5*(2/3)
    assert asd.asd_map(gt, pred) == pytest.approx(0.5 + 1 / 3)
    with pytest.raises(ValueError, match="no prediction"):
        asd.asd_map(gt, pred[:2])


def test_bootstrap_ci_contains_mean_and_shrinks_with_n():
    rng = np.random.default_rng(0)
    small = bootstrap_mean(rng.integers(0, 2, 20), 500)
    large = bootstrap_mean(rng.integers(0, 2, 2000), 500)
    assert small.low <= small.value <= small.high
    assert (large.high - large.low) < (small.high - small.low)
    e = bootstrap_stat(3, lambda idx: float(np.sum(idx)), n_boot=50)
    assert e.value == 3.0 and e.n == 3
