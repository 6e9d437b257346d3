import pytest

from perception.diarization import absorb_short_runs, labels_to_turns, overlap_ratio
from perception.scoring import ava_map, der, wer


def test_ava_map_matches_hand_computed_voc_ap():
    # scores sorted: P(0.9) N(0.8) P(0.7) N(0.6) P(0.5); 3 positives.
    # precision at each positive: 1/1, 2/3, 3/5 -> AP = (1 + 2/3 + 3/5) / 3 (monotone envelope keeps these)
    rows = [("v", 0, "a", "SPEAKING_AUDIBLE", 0.9), ("v", 1, "a", "NOT_SPEAKING", 0.8),
            ("v", 2, "a", "SPEAKING_AUDIBLE", 0.7), ("v", 3, "a", "SPEAKING_NOT_AUDIBLE", 0.6),
            ("v", 4, "a", "SPEAKING_AUDIBLE", 0.5)]
    assert ava_map(rows) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    # SPEAKING_NOT_AUDIBLE counts as negative, as in the official script: ranking it first costs AP.
    worse = [(*r[:4], 1.0 if r[3] == "SPEAKING_NOT_AUDIBLE" else r[4]) for r in rows]
    assert ava_map(worse) < ava_map(rows)



def _voc_from_sklearn_curve(labels, scores) -> float:
    """VOC AP (monotone precision envelope) over scikit-learn's per-threshold precision/recall points:
    an independent computation of how tied scores enter (sklearn keeps one point per distinct score)."""
    import numpy as np
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(labels, scores, drop_intermediate=False)
    precision, recall = precision[::-1][1:], recall[::-1][1:]  # ascending recall, without sklearn's (0, 1) end point
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.r_[0.0, recall])
    return float(np.sum(steps * envelope))


def _rows(labels, scores):
    return [("v", 0.04 * i, "e", "SPEAKING_AUDIBLE" if y else "NOT_SPEAKING", float(s))
            for i, (y, s) in enumerate(zip(labels, scores, strict=True))]


@pytest.mark.parametrize("case", ["all_tied", "mostly_zero", "few_levels", "no_ties"])
def test_ava_map_does_not_depend_on_row_order(case):
    """Shuffled rows give one mAP, equal to the envelope over sklearn's per-threshold points."""
    import numpy as np

    rng = np.random.default_rng(7)
    n = 300
    labels = rng.random(n) < 0.4
    scores = {
        "all_tied": np.zeros(n),
        # about half the rows scored exactly 0 (no face / no audio), the rest spread: the reported case
        "mostly_zero": np.where(rng.random(n) < 0.5, 0.0, rng.random(n) * 0.5 + 0.5 * labels),
        "few_levels": np.round(rng.random(n) * 0.6 + 0.4 * labels, 1),
        "no_ties": rng.random(n) + labels,
    }[case]
    rows = _rows(labels, scores)
    expected = _voc_from_sklearn_curve(labels, scores)
    got = {round(ava_map([rows[i] for i in rng.permutation(n)]), 12) for _ in range(60)}
    assert got == {round(expected, 12)}
    if case == "all_tied":  # one threshold holding every row: precision = positive share, recall 1
        assert expected == pytest.approx(labels.mean())


def test_ava_map_without_ties_is_the_official_voc_ap():
    """No ties: one point per row, as the official script takes; it bounds sklearn's (non-interpolated) AP
    from above and equals it where precision already falls monotonically."""
    import numpy as np
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(3)
    labels = rng.random(200) < 0.3
    scores = rng.random(200) + 0.3 * labels
    assert len(set(scores)) == len(scores)
    m = ava_map(_rows(labels, scores))
    assert m == pytest.approx(_voc_from_sklearn_curve(labels, scores))
    assert m >= average_precision_score(labels, scores) - 1e-12
    monotone = [1, 1, 0, 1, 0, 0, 1, 0]  # precision at each positive: 1, 1, 3/4, 4/7: already decreasing
    ranked = np.linspace(1, 0.1, len(monotone))
    assert ava_map(_rows(monotone, ranked)) == pytest.approx(average_precision_score(monotone, ranked))
    assert ava_map(_rows(monotone, ranked)) == pytest.approx((1 + 1 + 3 / 4 + 4 / 7) / 4)


def test_der_and_wer_basics():
    ref = [(0.0, 5.0, "A"), (5.0, 10.0, "B")]
    assert der(ref, [{"start": 0.0, "end": 5.0, "speaker": "x"}, {"start": 5.0, "end": 10.0, "speaker": "y"}]) == 0.0
    assert der(ref, [{"start": 0.0, "end": 10.0, "speaker": "x"}], collar=0.0) == pytest.approx(0.5)
    assert wer(["Hello, world."], ["hello world"]) == 0.0


def test_turn_helpers():
    import numpy as np

    lab = np.array([0, 0, 0, 1, 0, 0, -1, 1, 1, 1])
    fixed = absorb_short_runs(lab, 2)
    assert list(fixed) == [0, 0, 0, 0, 0, 0, -1, 1, 1, 1]
    turns = labels_to_turns(fixed, 0.5, ["A", "B"])
    assert [(t["start"], t["end"], t["speaker"]) for t in turns] == [(0.0, 3.0, "A"), (3.5, 5.0, "B")]
    assert overlap_ratio([{"start": 0, "end": 4, "speaker": "A"}, {"start": 3, "end": 5, "speaker": "B"}]) == pytest.approx(0.2)


def test_yin_pitch_finds_f0_and_voicing():
    import numpy as np

    from perception.diarization import yin_pitch

    sr, f = 16000, 150.0
    t = np.arange(sr) / sr
    tone = sum(np.sin(2 * np.pi * f * h * t) / h for h in range(1, 6)).astype(np.float32)  # a voiced-like harmonic
    noise = np.random.default_rng(0).normal(0, 0.3, sr).astype(np.float32)
    f0, voiced = yin_pitch(np.concatenate([tone, noise]), sr)
    assert len(f0) == 200
    assert voiced[10:90].all() and voiced[110:190].mean() < 0.1
    assert np.median(f0[10:90]) == pytest.approx(f, rel=0.01)


def test_pitch_explained_and_overlaps_at_changes():
    import numpy as np

    from perception.clustering import pitch_explained
    from perception.diarization import extend_at_changes

    lab = np.array([0, 0, 0, 1, 1, 1])
    assert pitch_explained(lab, np.array([1.0, 1.2, 0.8, 5.0, 5.2, np.nan])) > 0.9
    assert pitch_explained(lab, np.array([1.0, 5.0, 3.0, 1.0, 5.0, 3.0])) == pytest.approx(0.0)
    turns = [{"start": 0.0, "end": 2.0, "speaker": "A", "text": ""}, {"start": 2.0, "end": 4.0, "speaker": "B", "text": ""},
             {"start": 5.0, "end": 6.0, "speaker": "A", "text": ""}, {"start": 6.0, "end": 8.0, "speaker": "B", "text": ""}]
    pauses = np.zeros(800, bool)
    pauses[590:600] = True  # a pause just before the second change: no overlap there
    out = extend_at_changes(turns, pauses, 0.3, 0.3)
    assert [(t["start"], t["end"]) for t in out] == [(0.0, 2.3), (1.7, 4.0), (5.0, 6.0), (6.0, 8.0)]


def test_decode_spans_cover_overlaps_once():
    from perception.asr import decode_spans

    spans = [(0.0, 5.0, "A"), (4.0, 8.0, "B"), (5.5, 6.0, "C"), (7.5, 9.0, "A")]
    assert decode_spans(spans) == [(0.0, 4.5), (4.5, 7.75), (5.5, 5.5), (7.75, 9.0)]
