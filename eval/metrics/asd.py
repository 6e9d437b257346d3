"""Active speaker detection mAP, following the official AVA-ActiveSpeaker evaluation.

The official script (``get_ava_active_speaker_performance.py``) joins ground truth and
predictions on (video_id, frame_timestamp, entity_id), counts a row as a true positive when the
ground truth label is SPEAKING_AUDIBLE (SPEAKING_NOT_AUDIBLE and NOT_SPEAKING are negatives),
ranks all rows by score, and computes VOC-style AP: precision made monotone from the right,
summed over the recall steps. This module does the same with numpy; ties in score are broken by
input order (a stable sort) so the number is deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

POSITIVE = "SPEAKING_AUDIBLE"


def voc_average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    precision = np.concatenate([[0.0], precision, [0.0]])
    recall = np.concatenate([[0.0], recall, [1.0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    idx = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))


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
    keys = list(gt)
    if not keys:
        return float("nan")
    s = np.array([scores[k] for k in keys])
    pos = np.array([gt[k] == POSITIVE for k in keys])
    if not pos.any():
        return float("nan")
    order = np.argsort(-s, kind="stable")
    tp = np.cumsum(pos[order])
    precision = tp / np.arange(1, len(keys) + 1)
    recall = tp / pos.sum()
    return voc_average_precision(precision, recall)
