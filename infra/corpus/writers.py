"""Annotation files in each source's real on-disk format.

The quirks are deliberate: adapters must cope with them exactly as with the real
datasets (RTTM's 10 fields with <NA>, AVA's headerless CSV, the stray spaces of
vox2_meta.csv, Friends-MMC's 1280x720 pixel boxes).
"""

from __future__ import annotations

import json
from pathlib import Path

AVA_LABELS = ("SPEAKING_AUDIBLE", "NOT_SPEAKING", "SPEAKING_NOT_AUDIBLE")
FRIENDS_SIZE = (1280, 720)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_json(path: Path, obj) -> None:
    _write_text(path, json.dumps(obj, indent=1, ensure_ascii=False) + "\n")


def write_rttm(path: Path, uri: str, segments: list[tuple[float, float, str]]) -> None:
    """``SPEAKER <uri> 1 <onset> <dur> <NA> <NA> <spk> <NA> <NA>``, one line per (start, end, speaker)."""
    rows = [f"SPEAKER {uri} 1 {s:.3f} {e - s:.3f} <NA> <NA> {spk} <NA> <NA>"
            for s, e, spk in sorted(segments)]
    _write_text(path, "\n".join(rows) + "\n")


def write_uem(path: Path, uri: str, start: float, end: float) -> None:
    _write_text(path, f"{uri} 1 {start:.3f} {end:.3f}\n")


def write_ava_csv(path: Path, rows: list[tuple]) -> None:
    """Headerless ``video_id,frame_timestamp,x1,y1,x2,y2,label,entity_id`` with normalized boxes."""
    out = []
    for vid, t, x1, y1, x2, y2, label, entity in rows:
        assert label in AVA_LABELS
        out.append(f"{vid},{t:.2f},{x1:.3f},{y1:.3f},{x2:.3f},{y2:.3f},{label},{entity}")
    _write_text(path, "\n".join(out) + "\n")


def write_vox_meta(path: Path, rows: list[tuple[str, str, str, str]]) -> None:
    """vox2_meta.csv keeps the real file's trailing space after every field, header included."""
    lines = ["VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set "]
    lines += [f"{vox} ,{vgg} ,{gender} ,{split} " for vox, vgg, gender, split in rows]
    _write_text(path, "\n".join(lines) + "\n")


def friends_box(box_norm: tuple[float, float, float, float]) -> list[int]:
    """Normalized box -> Friends-MMC's 1280x720 pixel coordinates."""
    w, h = FRIENDS_SIZE
    x1, y1, x2, y2 = box_norm
    return [int(round(x1 * w)), int(round(y1 * h)), int(round(x2 * w)), int(round(y2 * h))]
