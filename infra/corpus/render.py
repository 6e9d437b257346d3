"""Scene video: a static room, one head-and-shoulders per speaker, mouths driven by audio.

Each speaker gets its own horizontal region; the head drifts slowly on a
sinusoid (sub-pixel, so trackers see smooth motion rather than 1-px jumps) and
the mouth opens with that speaker's own smoothed loudness at the frame time.
Ground-truth boxes come from the same placement maths, so they are exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from infra.corpus.faces import CROP, Face, haar_box_in_tile
from infra.corpus.media import FPS, HEIGHT, WIDTH

TILE_SIZE = {1: 200, 2: 200, 3: 175, 4: 150}  # head tile side by number of people on screen


@dataclass
class Placement:
    identity: str
    face: Face
    size: int
    cx: float
    cy: float
    ax: float  # drift amplitudes (px) and periods (s)
    ay: float
    px: float
    py: float
    phase_x: float
    phase_y: float
    torso_color: tuple[int, int, int]
    haar_box: tuple[float, float, float, float]  # ground-truth face box inside the tile
    mouth_box: tuple[float, float, float, float]  # mouth region inside the tile


def _background(rng: np.random.Generator) -> np.ndarray:
    """A soft, static room: wall gradient, a few blurred panels, a table edge."""
    top = rng.uniform(90, 200, 3)
    bottom = top * rng.uniform(0.55, 0.85)
    ramp = np.linspace(0, 1, HEIGHT)[:, None, None]
    img = (top * (1 - ramp) + bottom * ramp) * np.ones((1, WIDTH, 1))
    for _ in range(int(rng.integers(3, 6))):
        x1, y1 = rng.uniform(0, WIDTH - 80), rng.uniform(0, HEIGHT * 0.55)
        w, h = rng.uniform(60, 200), rng.uniform(40, 140)
        cv2.rectangle(img, (int(x1), int(y1)), (int(x1 + w), int(y1 + h)), rng.uniform(40, 230, 3).tolist(), -1)
    table_y = int(rng.uniform(0.8, 0.88) * HEIGHT)
    img[table_y:] = rng.uniform(40, 120, 3) * np.linspace(1.0, 0.7, HEIGHT - table_y)[:, None, None]
    img = cv2.GaussianBlur(img, (0, 0), 6)
    return np.clip(img, 0, 255).astype(np.uint8)


def _alpha(size: int) -> np.ndarray:
    """Feathered elliptical head mask, so a square crop reads as a head in the room."""
    big = np.zeros((size * 4, size * 4), np.uint8)
    cv2.ellipse(big, (size * 2, int(size * 2.08)), (int(size * 1.76), int(size * 2.08)), 0, 0, 360, 255, -1)
    mask = cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return cv2.GaussianBlur(mask, (0, 0), max(1.0, size * 0.03))[..., None]


class SceneRenderer:
    """Renders frame ``n`` of a scene from placements and per-frame mouth openings."""

    def __init__(self, rng: np.random.Generator, faces: dict[str, Face], openings: dict[str, np.ndarray],
                 order: list[str] | None = None):
        ids = order or list(faces)
        self.openings = openings
        self.background = _background(rng)
        size = TILE_SIZE[min(len(ids), 4)]
        region = WIDTH / len(ids)
        max_ax = max(2.0, min(9.0, (region - 0.84 * size) / 2 - 2))
        self.placements: list[Placement] = []
        for k, ident in enumerate(ids):
            face = faces[ident]
            scale = size / CROP
            mx1, my1, mx2, my2 = face.mouth_box
            self.placements.append(Placement(
                identity=ident, face=face, size=size,
                cx=(k + 0.5) * region + rng.uniform(-8, 8), cy=HEIGHT * 0.46 + rng.uniform(-12, 12),
                ax=rng.uniform(0.5, 1.0) * max_ax, ay=rng.uniform(2, 5),
                px=rng.uniform(7, 13), py=rng.uniform(5, 11),
                phase_x=rng.uniform(0, 2 * np.pi), phase_y=rng.uniform(0, 2 * np.pi),
                torso_color=tuple(int(c) for c in rng.integers(25, 140, 3)),
                haar_box=haar_box_in_tile(face, size),
                mouth_box=(mx1 * scale, my1 * scale, mx2 * scale, my2 * scale),
            ))
        self._alpha = _alpha(size)
        self._closed = {p.identity: cv2.resize(p.face.crop, (size, size), interpolation=cv2.INTER_AREA)
                        for p in self.placements}

    def origin(self, p: Placement, t: float) -> tuple[float, float]:
        """Top-left corner of the head tile at time t (float pixels)."""
        x = p.cx + p.ax * np.sin(2 * np.pi * t / p.px + p.phase_x) - p.size / 2
        y = p.cy + p.ay * np.sin(2 * np.pi * t / p.py + p.phase_y) - p.size / 2
        return float(x), float(y)

    def face_box(self, p: Placement, t: float) -> tuple[float, float, float, float]:
        x, y = self.origin(p, t)
        b = p.haar_box
        return (x + b[0], y + b[1], x + b[2], y + b[3])

    def mouth_box(self, p: Placement, t: float) -> tuple[float, float, float, float]:
        x, y = self.origin(p, t)
        b = p.mouth_box
        return (x + b[0], y + b[1], x + b[2], y + b[3])

    def _tile(self, p: Placement, n: int) -> np.ndarray:
        op = self.openings[p.identity]
        opening = float(op[n]) if n < len(op) else 0.0
        if opening <= 0.02:
            return self._closed[p.identity]
        return cv2.resize(p.face.render(opening), (p.size, p.size), interpolation=cv2.INTER_AREA)

    def frame(self, n: int) -> np.ndarray:
        t = n / FPS
        img = self.background.copy()
        for p in self.placements:
            x, y = self.origin(p, t)
            center = (int(round((x + p.size / 2) * 16)), int(round((y + p.size * 1.22) * 16)))
            axes = (int(p.size * 0.42 * 16), int(p.size * 0.4 * 16))
            cv2.ellipse(img, center, axes, 0, 0, 360, p.torso_color, -1, cv2.LINE_AA, 4)
        for p in self.placements:
            x, y = self.origin(p, t)
            ix, iy = int(np.floor(x)), int(np.floor(y))
            shift = np.float32([[1, 0, x - ix], [0, 1, y - iy]])
            s = p.size + 1
            tile = cv2.warpAffine(self._tile(p, n), shift, (s, s), flags=cv2.INTER_LINEAR).astype(np.float32)
            alpha = cv2.warpAffine(self._alpha, shift, (s, s), flags=cv2.INTER_LINEAR)[..., None]
            x0, y0, x1, y1 = max(ix, 0), max(iy, 0), min(ix + s, WIDTH), min(iy + s, HEIGHT)
            sub = img[y0:y1, x0:x1].astype(np.float32)
            a = alpha[y0 - iy:y1 - iy, x0 - ix:x1 - ix]
            blend = sub * (1 - a) + tile[y0 - iy:y1 - iy, x0 - ix:x1 - ix] * a
            img[y0:y1, x0:x1] = np.clip(blend + 0.5, 0, 255).astype(np.uint8)
        return img

    def frames(self, first: int, last: int):
        for n in range(first, last):
            yield self.frame(n)
