"""Active speaker detection mAP, following the official AVA-ActiveSpeaker evaluation.

The official script (``get_ava_active_speaker_performance.py``) joins ground truth and
predictions on (video_id, frame_timestamp, entity_id), counts a row as a true positive when the
ground truth label is SPEAKING_AUDIBLE (SPEAKING_NOT_AUDIBLE and NOT_SPEAKING are negatives),
ranks all rows by score, and computes VOC-style AP: precision made monotone from the right,
summed over the recall steps. This module does the join and the missing-row check; the ranking
and the AP are ``perception.scoring.ava_map``, where rows of equal score enter the ranking
together (one precision/recall point per distinct score, as scikit-learn does), so the number does
not depend on row order; the official script breaks ties by an unstable sort.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from perception.scoring import ava_map

POSITIVE = "SPEAKING_AUDIBLE"


def _key(row: Mapping) -> tuple[str, str, str]:
    # Timestamps are compared at millisecond precision, as the official CSVs print them.
    return (str(row["video_id"]), f"{float(row['frame_timestamp']):.3f}", str(row["entity_id"]))


def asd_map(groundtruth: Iterable[Mapping], predictions: Iterable[Mapping]) -> float:
    """mAP over rows ``{video_id, frame_timestamp, entity_id, label}`` and ``{..., score}``.

    Every ground-truth row needs a prediction, as in the official script; a missing one raises
    naming the row, since silently dropping it would inflate the score.
    """
    gt = {_key(r): r["label"] for r in groundtruth}
    scores = {_key(r): float(r["score"]) for r in predictions}
    missing = [k for k in gt if k not in scores]
    if missing:
        raise ValueError(f"{len(missing)} ground-truth rows have no prediction, e.g. {missing[0]}")
    if not any(label == POSITIVE for label in gt.values()):
        return float("nan")  # AP is undefined without a positive row
    # The ranking and VOC-style AP are perception.scoring.ava_map's (one implementation in the repo).
    return ava_map([(*k, label, scores[k]) for k, label in gt.items()])
