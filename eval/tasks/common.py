"""Helpers the task modules share: strata, speaker naming, turn selection and guided cues."""

from __future__ import annotations

from typing import Any

from eval.tasks.config import TasksConfig

# Sources whose speaker labels are people's names a viewer can use (Friends-MMC characters);
# elsewhere labels are opaque ids (AMI MEE006, AVA entity ids) and speakers are named by order.
NAMED_SOURCES = ("friends_mmc",)


def bucket(value: float | None, edges: list[float], labels: list[str]) -> str:
    if value is None:
        return "unknown"
    for edge, label in zip(edges, labels, strict=False):
        if value < edge:
            return label
    return labels[-1]


def overlap_bucket(clip: dict, cfg: TasksConfig) -> str:
    """low/mid/high from the labels' overlap ratio, else perception's (the stratum must exist)."""
    ratio = clip.get("gt_overlap_ratio")
    if ratio is None:
        ratio = clip.get("pred_overlap_ratio")
    e = cfg.overlap_edges
    labels = ["low", "mid", "high"] if len(e) == 2 else [f"<{x:g}" for x in e] + [f">={e[-1]:g}"]
    return bucket(ratio, e, labels)


def length_bucket(duration_s: float, cfg: TasksConfig) -> str:
    e = cfg.length_edges
    labels = [f"{lo:g}-{hi:g}s" for lo, hi in zip([0.0, *e[:-1]], e, strict=True)] + [f">{e[-1]:g}s"]
    return bucket(duration_s, e, labels)


def num_visible(clip: dict) -> int:
    for key in ("gt_num_visible", "pred_num_visible"):
        if clip.get(key) is not None:
            return int(clip[key])
    return 0


def strata(clip: dict, cfg: TasksConfig) -> dict[str, Any]:
    return {"overlap_bucket": overlap_bucket(clip, cfg), "length_bucket": length_bucket(clip["duration_s"], cfg),
            "num_visible": num_visible(clip)}


def rel(clip: dict, t: float) -> float:
    """Media-file seconds -> clip-relative seconds, rounded for questions."""
    return round(t - clip["start_s"], 1)


def gt_turns(clip: dict, min_s: float = 0.0) -> list[dict]:
    return [t for t in clip.get("gt_turns") or [] if t["end"] - t["start"] >= min_s]


def speaker_labels(clip: dict) -> dict[str, str]:
    """gt speaker id -> how a question names them: the character's name where the source has
    names, else 'Speaker N' in order of first speaking (with when they first speak)."""
    turns = sorted(clip.get("gt_turns") or [], key=lambda t: (t["start"], t["speaker"]))
    order: dict[str, float] = {}
    for t in turns:
        order.setdefault(t["speaker"], t["start"])
    if clip["source"] in NAMED_SOURCES:
        return {s: s for s in order}
    return {s: f"Speaker {i + 1} (first heard at {rel(clip, t0):.1f} s)" for i, (s, t0) in enumerate(order.items())}


def cues(clip: dict, keys: tuple[str, ...] = ("turns", "transcript", "faces", "active_speaker")) -> dict[str, Any]:
    """Guided-mode cues from pred_* only, compact and in clip-relative seconds."""
    out: dict[str, Any] = {}
    if "turns" in keys and clip.get("pred_turns") is not None:
        out["turns"] = [{"start": rel(clip, t["start"]), "end": rel(clip, t["end"]), "speaker": t["speaker"]}
                        for t in clip["pred_turns"]]
    if "transcript" in keys and clip.get("pred_transcript") is not None:
        out["transcript"] = [{"start": rel(clip, s["start"]), "end": rel(clip, s["end"]), "speaker": s["speaker"],
                              "text": s["text"]} for s in clip["pred_transcript"] if s.get("text")]
    if "faces" in keys and clip.get("pred_face_tracks") is not None:
        faces = []
        for tr in clip["pred_face_tracks"]:
            boxes = tr.get("boxes") or []
            if not boxes:
                continue
            cx = sum((b["x1"] + b["x2"]) / 2 for b in boxes) / len(boxes)
            faces.append({"track_id": tr["track_id"], "from": rel(clip, boxes[0]["t"]), "to": rel(clip, boxes[-1]["t"]),
                          "position": horizontal(cx)})
        out["faces"] = faces
    if "active_speaker" in keys and clip.get("pred_active_speaker") is not None:
        out["active_speaker"] = [
            {"track_id": a["track_id"],
             "mean_score": round(sum(a["scores"]) / len(a["scores"]), 3) if a.get("scores") else None,
             "sync_offset_s": a.get("sync_offset_s"), "sync_confidence": a.get("sync_confidence")}
            for a in clip["pred_active_speaker"]
        ]
    return out


def horizontal(cx: float) -> str:
    return "left" if cx < 0.38 else ("right" if cx > 0.62 else "centre")


def quote(text: str | None, words: int = 8) -> str | None:
    if not text:
        return None
    parts = text.split()
    return " ".join(parts[:words]) + (" ..." if len(parts) > words else "")
