"""Perception accuracy with the field's own definitions: DER (pyannote.metrics), WER (jiwer),
face-detection recall, frame-level active-speaker accuracy, and AVA-ActiveSpeaker mAP.

``ava_map`` follows the official ``get_ava_active_speaker_performance.py``: only SPEAKING_AUDIBLE
rows are positive, predictions are sorted by score, and AP is VOC-style (precision made
monotone, summed over recall steps). One difference, for ties: the official script sorts with
pandas' (unstable) ``sort_values`` and takes a precision/recall point after every row, so rows of
equal score count in whatever order they happen to lie, and the mAP depends on row order (on 800
rows of which 407 scored 0, reordering only the tied rows moved it from 0.64 to 0.72). Here a
point is taken only at each distinct score (rows of one score enter together), as scikit-learn's
``precision_recall_curve`` / ``average_precision_score`` do. Without ties the two are identical.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from perception.tracking import iou_matrix


def der(reference: Iterable[tuple[float, float, str]], hypothesis: Iterable[dict], collar: float = 0.25,
        uem: tuple[float, float] | None = None) -> float:
    """pyannote.metrics DiarizationErrorRate with ``collar`` (total, seconds around each boundary)."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(), Annotation()
    for i, (s, e, spk) in enumerate(reference):
        ref[Segment(s, e), i] = spk
    for i, t in enumerate(hypothesis):
        hyp[Segment(t["start"], t["end"]), i] = t["speaker"]
    kw = {}
    if uem is not None:
        kw["uem"] = Timeline([Segment(*uem)])
    return float(DiarizationErrorRate(collar=collar)(ref, hyp, **kw))


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER (jiwer) after lower-casing and stripping punctuation."""
    import jiwer

    tf = jiwer.Compose([jiwer.ToLowerCase(), jiwer.RemovePunctuation(), jiwer.RemoveMultipleSpaces(),
                        jiwer.Strip(), jiwer.ReduceToListOfListOfWords()])
    return float(jiwer.wer(references, hypotheses, reference_transform=tf, hypothesis_transform=tf))


def face_recall(gt_boxes: list[tuple[float, float, float, float, float]], pred_tracks: list[dict],
                iou: float = 0.5, max_dt: float = 0.021) -> float:
    """Fraction of ground-truth (t, x1, y1, x2, y2) boxes at sampled times that a predicted box hits."""
    by_t: dict[float, list] = {}
    for tr in pred_tracks:
        for b in tr["boxes"]:
            by_t.setdefault(round(b["t"], 2), []).append([b["x1"], b["y1"], b["x2"], b["y2"]])
    times = np.array(sorted(by_t)) if by_t else np.zeros(0)
    hit = n = 0
    for t, *box in gt_boxes:
        if len(times) == 0:
            n += 1
            continue
        j = int(np.argmin(np.abs(times - t)))
        if abs(times[j] - t) > max_dt:
            continue  # not a sampled frame
        n += 1
        hit += bool(iou_matrix(np.array([box]), np.array(by_t[times[j]])).max() >= iou)
    return hit / n if n else 0.0


def ava_map(rows: list[tuple[str, float, str, str, float]]) -> float:
    """AVA ASD mAP from (video_id, t, entity_id, gt_label, score) rows, as the official script does,
    except that tied scores form one threshold (see the module doc), so row order never matters."""
    if not rows:
        return 0.0
    labels = np.array([1 if r[3] == "SPEAKING_AUDIBLE" else 0 for r in rows])
    scores = np.array([r[4] for r in rows], dtype=float)
    order = np.argsort(-scores, kind="mergesort")
    # One precision/recall point per distinct score: the last row of each run of equal scores.
    last = np.r_[np.flatnonzero(np.diff(scores[order])), len(order) - 1]
    tp = np.cumsum(labels[order])[last]
    precision = tp / (last + 1)
    recall = tp / max(labels.sum(), 1)
    # VOC AP: monotone precision envelope, summed over the points where recall changes.
    recall = np.concatenate([[0.0], recall, [1.0]])
    precision = np.concatenate([[0.0], precision, [0.0]])
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    idx = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))


def match_tracks(gt_boxes: dict[str, list], pred_tracks: list[dict]) -> dict[str, str]:
    """Ground-truth identity -> predicted track id with the highest mean IoU (greedy, one-to-one)."""
    pairs = []
    for ident, boxes in gt_boxes.items():
        gt_t = np.array([b[0] for b in boxes])
        for tr in pred_tracks:
            ious = []
            for b in tr["boxes"]:
                j = int(np.argmin(np.abs(gt_t - b["t"])))
                ious.append(iou_matrix(np.array([boxes[j][1:]]), np.array([[b["x1"], b["y1"], b["x2"], b["y2"]]]))[0, 0])
            pairs.append((float(np.mean(ious)) if ious else 0.0, ident, tr["track_id"]))
    out: dict[str, str] = {}
    for score, ident, tid in sorted(pairs, reverse=True):
        if score > 0.3 and ident not in out and tid not in out.values():
            out[ident] = tid
    return out


def asd_rows(gt_turns: list[tuple[float, float, str]], asd: list[dict], ident_to_track: dict[str, str],
             video_id: str = "v", audible_only: bool = True) -> list[tuple[str, float, str, str, float]]:
    """AVA-style rows: one per (matched track, scored time), labelled from the gt turns of its identity."""
    rows = []
    by_track = {r["track_id"]: r for r in asd}
    for ident, tid in ident_to_track.items():
        r = by_track.get(tid)
        if r is None:
            continue
        for t, s in zip(r["times"], r["scores"], strict=True):
            speaking = any(a <= t < b and spk == ident for a, b, spk in gt_turns)
            rows.append((video_id, float(t), ident, "SPEAKING_AUDIBLE" if speaking else "NOT_SPEAKING", float(s)))
    return rows


def asd_accuracy(rows: list[tuple[str, float, str, str, float]], threshold: float = 0.5) -> float:
    """Frame-level accuracy of thresholded speaking scores."""
    if not rows:
        return 0.0
    return float(np.mean([(r[4] >= threshold) == (r[3] == "SPEAKING_AUDIBLE") for r in rows]))


def der_total(pairs: Iterable[tuple[list, list[dict], tuple[float, float] | None]], collar: float = 0.25) -> float:
    """Corpus DER: pyannote.metrics accumulated over (reference, hypothesis, uem) pairs (error time / reference time)."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=collar)
    for reference, hypothesis, uem in pairs:
        ref, hyp = Annotation(), Annotation()
        for i, (s, e, spk) in enumerate(reference):
            ref[Segment(s, e), i] = spk
        for i, t in enumerate(hypothesis):
            hyp[Segment(t["start"], t["end"]), i] = t["speaker"]
        metric(ref, hyp, **({"uem": Timeline([Segment(*uem)])} if uem else {}))
    return float(abs(metric))
