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
