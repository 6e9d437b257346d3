"""Perception accuracy on the generated corpus (``data/corpus``), from its manifest's ground truth.

A manifest scene becomes a clip row (``scene_row``) that the stages run on; its turns, face boxes
and, for AVA scenes, the AVA CSV's labels are the references. Scoring uses ``perception.scoring``
(pyannote.metrics DER, jiwer WER, AVA mAP as the official script computes it). Friends-MMC scenes
are left out: their media are per-utterance clips on a dialogue time base, not one file span.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from perception.scoring import asd_accuracy, asd_rows, ava_map, face_recall, match_tracks
from perception.tracking import iou_matrix

SOURCES = ("ami", "ava", "voxceleb2", "youtube")


def load_scenes(root: str | Path, sources: tuple[str, ...] = SOURCES) -> list[dict]:
    """Manifest scenes of ``sources``, each with ``root`` recorded for its media paths."""
    root = Path(root)
    scenes = json.loads((root / "manifest.json").read_text())["scenes"]
    return [dict(s, _root=str(root)) for s in scenes if s["source"] in sources]


def scene_row(scene: dict) -> dict[str, Any]:
    """Clip row for a scene: the video when there is one (with a separate audio track if given)."""
    root, media = Path(scene["_root"]), scene["media"]
    video, audio = media.get("video"), media.get("audio")
    has_faces = bool(video) and bool(scene.get("faces"))
    return {
        "clip_id": scene["scene_id"],
        "media_uri": str(root / (video if has_faces else (audio or video))),
        "audio_uri": str(root / audio) if audio else None,
        "start_s": float(scene["start"]), "end_s": float(scene["end"]),
        "fps": None if has_faces else 0.0,
    }


def gt_turns(scene: dict) -> list[tuple[float, float, str]]:
    return [(float(t["start"]), float(t["end"]), t["speaker"]) for t in scene["turns"]]


def gt_boxes(scene: dict) -> dict[str, list[tuple[float, float, float, float, float]]]:
    return {f["identity"]: [tuple(map(float, b)) for b in f["boxes"]] for f in scene.get("faces", [])}


def ava_label_rows(scene: dict) -> list[tuple[float, list[float], str, str]]:
    """(t, box, label, entity_id) rows of the scene's AVA CSV, inside the scene span."""
    path = scene["media"].get("csv")
    if not path:
        return []
    rows = []
    with open(Path(scene["_root"]) / path) as fh:
        for r in csv.reader(fh):
            t = float(r[1])
            if scene["start"] <= t < scene["end"]:
                rows.append((t, [float(v) for v in r[2:6]], r[6], r[7]))
    return rows


def _score_at(asd: dict, t: float, max_dt: float = 0.25) -> float:
    if not asd["times"]:
        return 0.0
    times = np.asarray(asd["times"])
    j = int(np.argmin(np.abs(times - t)))
    return float(asd["scores"][j]) if abs(times[j] - t) <= max_dt else 0.0


def ava_prediction_rows(scene: dict, tracks: list[dict], asd: list[dict]) -> list[tuple[str, float, str, str, float]]:
    """One AVA row per labelled (entity, time): its label, and the score of the predicted track covering
    its box (IoU >= 0.5 at the nearest sampled time); an entity no track covers scores 0."""
    by_track = {a["track_id"]: a for a in asd}
    out = []
    vid = scene["scene_id"]
    for t, box, label, entity in ava_label_rows(scene):
        best, best_iou = None, 0.5
        for tr in tracks:
            ts = np.array([b["t"] for b in tr["boxes"]])
            j = int(np.argmin(np.abs(ts - t)))
            if abs(ts[j] - t) > 0.25:
                continue
            b = tr["boxes"][j]
            iou = float(iou_matrix(np.array([box]), np.array([[b["x1"], b["y1"], b["x2"], b["y2"]]]))[0, 0])
            if iou >= best_iou:
                best, best_iou = tr["track_id"], iou
        score = _score_at(by_track[best], t) if best in by_track else 0.0
        out.append((vid, t, entity, label, score))
    return out


def video_metrics(scene: dict, out: dict, fps_sample: float = 5.0) -> dict[str, Any]:
    """Face recall, frame-level ASD rows (by matched identity) and AVA rows for one scene's outputs.

    Ground-truth boxes are given once per second of file time while frames are sampled from the
    clip's start, so each gt box is compared with the nearest sampled frame (within half a period).
    """
    tracks = out.get("pred_face_tracks") or []
    boxes = gt_boxes(scene)
    recall_hits = [face_recall(b, tracks, max_dt=0.5 / fps_sample + 1e-6) for b in boxes.values()]
    mapping = match_tracks(boxes, tracks)
    rows = asd_rows(gt_turns(scene), out.get("pred_active_speaker") or [], mapping, video_id=scene["scene_id"])
    return {"face_recall": float(np.mean(recall_hits)) if recall_hits else None, "asd_rows": rows,
            "ava_rows": ava_prediction_rows(scene, tracks, out.get("pred_active_speaker") or [])}


def summarize(rows: list, ava: list) -> dict[str, float]:
    return {"asd_accuracy": asd_accuracy(rows), "asd_map": ava_map(rows), "ava_map": ava_map(ava)}
