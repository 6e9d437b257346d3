"""Perception quality of the evaluated clips, from their records: ``pred_*`` against ``gt_*``.

The report shows these next to the task scores because guided cues and the tool-only baseline are
only as good as perception. The metrics are the field's, computed by ``perception.scoring`` (not
re-implemented here):

- **ASD mAP, the AVA way**: one row per labelled face box (``gt_face_tracks[].boxes[].label``, the
  dataset's own SPEAKING_AUDIBLE / SPEAKING_NOT_AUDIBLE / NOT_SPEAKING), scored by the predicted
  face track covering that box (IoU >= 0.5 at the nearest sampled frame) at the nearest scored time;
  a face no track covers scores 0, as the official script needs a score for every labelled row.
  Only SPEAKING_AUDIBLE is positive; VOC-style AP over rows sorted by score (``ava_map``).
- **DER** (pyannote.metrics, 0.25 s collar, the clip span as UEM) from ``gt_turns`` / ``pred_turns``;
  per-clip components summed, which is what ``perception.scoring.der_total`` computes.
- **WER** (jiwer) where the labels carry text, from ``gt_turns`` text / ``pred_transcript``.

Every figure has a bootstrap 95% CI over clips (the unit perception runs on; rows of one clip are
not independent).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from eval.metrics.bootstrap import bootstrap_stat

IOU_MIN = 0.5
MAX_DT_S = 0.25  # labelled boxes (AVA: 10-30 Hz) vs frames sampled at fps_sample (5 Hz by default)


def _nearest(times: list[float], t: float) -> int | None:
    if not times:
        return None
    j = int(np.argmin(np.abs(np.asarray(times, dtype=float) - t)))
    return j if abs(times[j] - t) <= MAX_DT_S else None


def _iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    from perception.tracking import iou_matrix

    return float(iou_matrix(np.array([a]), np.array([b]))[0, 0])


def asd_label_rows(clip: dict) -> list[tuple[str, float, str, str, float]]:
    """(clip_id, t, gt track id, label, score) for every labelled gt face box of one clip record."""
    preds = []
    by_track = {a["track_id"]: a for a in clip.get("pred_active_speaker") or []}
    for tr in clip.get("pred_face_tracks") or []:
        boxes = tr.get("boxes") or []
        preds.append((tr["track_id"], [float(b["t"]) for b in boxes], boxes))
    rows = []
    for gt in clip.get("gt_face_tracks") or []:
        for box in gt.get("boxes") or []:
            if not box.get("label"):
                continue  # a box without a speaking label is not an ASD ground-truth row
            t, g = float(box["t"]), (box["x1"], box["y1"], box["x2"], box["y2"])
            best, best_iou = None, IOU_MIN
            for tid, times, boxes in preds:
                j = _nearest(times, t)
                if j is None:
                    continue
                b = boxes[j]
                iou = _iou(g, (b["x1"], b["y1"], b["x2"], b["y2"]))
                if iou >= best_iou:
                    best, best_iou = tid, iou
            score = 0.0
            asd = by_track.get(best)
            if asd is not None:
                k = _nearest(list(asd.get("times") or []), t)
                score = float(asd["scores"][k]) if k is not None else 0.0
            rows.append((clip["clip_id"], t, str(gt["track_id"]), str(box["label"]), score))
    return rows


def _turns(turns: list[dict] | None) -> list[tuple[float, float, str]]:
    return [(float(t["start"]), float(t["end"]), str(t["speaker"])) for t in turns or []]


def _text(segments: list[dict] | None) -> str:
    return " ".join((s.get("text") or "").strip() for s in sorted(segments or [], key=lambda s: s["start"]) if s.get("text"))


def _der_components(reference: list[tuple[float, float, str]], hypothesis: list[dict], uem: tuple[float, float],
                    collar: float = 0.25) -> tuple[float, float]:
    """(error seconds, reference seconds) of one clip by pyannote.metrics, as ``der_total`` scores it."""
    from pyannote.core import Annotation, Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref, hyp = Annotation(), Annotation()
    for i, (s, e, spk) in enumerate(reference):
        ref[Segment(s, e), i] = spk
    for i, t in enumerate(hypothesis):
        hyp[Segment(t["start"], t["end"]), i] = t["speaker"]
    c = DiarizationErrorRate(collar=collar)(ref, hyp, uem=Timeline([Segment(*uem)]), detailed=True)
    return c["confusion"] + c["missed detection"] + c["false alarm"], c["total"]


def summarize(clips: list[dict], n_boot: int = 200, seed: int = 0) -> dict[str, Any]:
    """``{metric: Estimate dict | None, ...}`` plus how many clips and rows each figure rests on."""
    from perception.scoring import ava_map, wer

    clips = sorted(clips, key=lambda c: c["clip_id"])
    out: dict[str, Any] = {"n_clips": len(clips)}

    per_clip = [asd_label_rows(c) for c in clips]
    asd_clips = [r for r in per_clip if r]
    out["asd_rows"] = sum(len(r) for r in asd_clips)
    out["asd_positive"] = sum(1 for rs in asd_clips for r in rs if r[3] == "SPEAKING_AUDIBLE")

    def asd_map(idx: np.ndarray) -> float:
        rows = [r for i in idx for r in asd_clips[i]]
        # A resample without a positive row has no AP (nan, left out of the CI), not an AP of 0.
        return ava_map(rows) if any(r[3] == "SPEAKING_AUDIBLE" for r in rows) else float("nan")

    out["ASD mAP"] = _est(len(asd_clips), asd_map, n_boot, seed) if out["asd_positive"] else None

    dia = [(_turns(c.get("gt_turns")), list(c.get("pred_turns") or []), (float(c["start_s"]), float(c["end_s"])))
           for c in clips if c.get("gt_turns") and c.get("pred_turns") is not None]
    out["der_clips"] = len(dia)
    if dia:
        # Per-clip error and reference time once, summed per resample: the same number as
        # der_total over the resampled clips (pyannote accumulates exactly these components), at a
        # fraction of the cost of re-running pyannote 200 times.
        comp = np.array([_der_components(*d) for d in dia])
        out["DER"] = _est(len(dia), lambda idx: comp[idx, 0].sum() / comp[idx, 1].sum(), n_boot, seed)
    else:
        out["DER"] = None

    txt = [(_text(c.get("gt_turns")), _text(c.get("pred_transcript"))) for c in clips
           if _text(c.get("gt_turns")) and c.get("pred_transcript") is not None]
    out["wer_clips"] = len(txt)
    out["WER"] = _est(len(txt), lambda idx: wer([txt[i][0] for i in idx], [txt[i][1] for i in idx]), n_boot, seed) \
        if txt else None
    return out


def _est(n: int, stat, n_boot: int, seed: int) -> dict:
    return bootstrap_stat(n, stat, n_boot=n_boot, seed=seed).to_dict()
