"""Real face crops from pip-shipped images, with a mouth that opens on demand.

Each face is cut out of its source image by a fixed similarity transform (centre,
side, roll angle measured once with dlib's 68-point landmarks) so the eyes are
level; the Haar cascade misses the tilted heads of the group photo otherwise.
The same crop is committed under ``assets/`` as a lossless PNG, so generation
gives identical pixels with or without the source packages installed.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

CROP = 160  # canonical crop side in pixels
ASSETS = Path(__file__).with_name("assets")

# Detector settings shared by the reliability check here and the corpus tests.
HAAR_FILE = "haarcascade_frontalface_default.xml"
HAAR_SCALE = 1.1
HAAR_NEIGHBORS = 5
HAAR_MIN = 64  # corpus faces are 90-150 px; skipping small scales makes detection 2x faster
HAAR_MAX = 260


@dataclass(frozen=True)
class FaceSource:
    package: str
    relpath: str  # inside the package directory
    cx: float  # crop centre in the source image (between eyes and mouth, raised a little)
    cy: float
    side: float  # crop side in source pixels: 3.6 x eye-to-mouth distance
    angle: float  # roll of the eye line in degrees; the crop undoes it


FACE_SOURCES = {
    "rachel": FaceSource("insightface", "data/images/t1.jpg", 120.0, 331.6, 172.5, -25.5),
    "monica": FaceSource("insightface", "data/images/t1.jpg", 313.7, 214.9, 155.2, -32.1),
    "ross": FaceSource("insightface", "data/images/t1.jpg", 510.5, 343.6, 205.4, 15.3),
    "chandler": FaceSource("insightface", "data/images/t1.jpg", 780.8, 414.4, 157.9, 7.6),
    "joey": FaceSource("insightface", "data/images/t1.jpg", 936.5, 133.2, 205.5, -5.4),
    "phoebe": FaceSource("insightface", "data/images/t1.jpg", 1170.9, 338.9, 152.1, -3.8),
    "tom": FaceSource("insightface", "data/images/Tom_Hanks_54745.png", 54.8, 63.5, 155.8, -2.7),
    "eileen": FaceSource("skimage", "data/astronaut.png", 224.1, 115.6, 153.7, 3.5),
    "grace": FaceSource("matplotlib", "mpl-data/sample_data/grace_hopper.jpg", 266.0, 217.3, 318.4, -2.2),
}


def source_path(src: FaceSource) -> Path | None:
    """Locate the image inside the installed package without importing it (insightface needs onnx)."""
    spec = importlib.util.find_spec(src.package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / src.relpath
    return path if path.exists() else None


def crop_from_source(key: str) -> np.ndarray | None:
    src = FACE_SOURCES[key]
    path = source_path(src)
    if path is None:
        return None
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    scale = CROP / src.side
    m = cv2.getRotationMatrix2D((src.cx, src.cy), src.angle, scale)
    m[:, 2] += np.array([CROP / 2 - src.cx, CROP / 2 - src.cy])
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.warpAffine(image, m, (CROP, CROP), flags=interp, borderMode=cv2.BORDER_REPLICATE)


@functools.cache
def canonical_crop(key: str) -> np.ndarray:
    """The BGR crop of a face: from the installed package when present, else the committed asset."""
    crop = crop_from_source(key)
    if crop is None:
        asset = ASSETS / f"{key}.png"
        if not asset.exists():
            raise FileNotFoundError(
                f"face '{key}': neither package {FACE_SOURCES[key].package} nor {asset} is available")
        crop = cv2.imread(str(asset), cv2.IMREAD_COLOR)
    crop.setflags(write=False)
    return crop


def apply_variant(crop: np.ndarray, variant: int) -> np.ndarray:
    """Mirrored and colour-shifted copies, used only when the large corpus runs out of faces."""
    if variant == 0:
        return crop
    out = crop[:, ::-1].copy() if variant % 2 else crop.copy()
    hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(np.int16)
    hsv[..., 0] = (hsv[..., 0] + 6 * variant) % 180
    hsv[..., 2] = np.clip(hsv[..., 2] * (1.0 + 0.06 * ((variant % 3) - 1)), 0, 255)
    return cv2.cvtColor(hsv.astype(np.uint8), cv2.COLOR_HSV2BGR)


@functools.cache
def _shape_predictor():
    import dlib
    import face_recognition_models

    return dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())


def landmarks(crop: np.ndarray) -> np.ndarray:
    """68 (x, y) landmarks of the face in a canonical crop.

    The crop is built around the face (side = 3.6 eye-to-mouth distances), so the
    face rectangle is known and dlib's slow-to-load HOG detector is not needed; on
    these crops it agrees with the detector's rectangle to within half a pixel.
    """
    import dlib

    em = CROP / 3.6
    cx, cy, half = CROP / 2, CROP / 2 + 0.2 * em, 1.05 * em
    rect = dlib.rectangle(int(cx - half), int(cy - half), int(cx + half), int(cy + half))
    shape = _shape_predictor()(np.ascontiguousarray(crop[..., ::-1]), rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


@functools.cache
def haar_cascade() -> cv2.CascadeClassifier:
    return cv2.CascadeClassifier(cv2.data.haarcascades + HAAR_FILE)


def haar_detect(gray: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Haar face boxes as (x1, y1, x2, y2) with the settings the tests use."""
    found = haar_cascade().detectMultiScale(gray, HAAR_SCALE, HAAR_NEIGHBORS, minSize=(HAAR_MIN, HAAR_MIN),
                                            maxSize=(HAAR_MAX, HAAR_MAX))
    return [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h in found]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class Face:
    """A renderable face: canonical crop plus mouth geometry from its landmarks."""

    def __init__(self, key: str, variant: int = 0):
        self.key, self.variant = key, variant
        base = canonical_crop(key)
        self.crop = apply_variant(base, variant)
        pts = landmarks(base)
        if variant % 2:  # mirrored copy: landmarks mirror too (left/right order does not matter here)
            pts = pts.copy()
            pts[:, 0] = CROP - 1 - pts[:, 0]
        self.points = pts
        inner = pts[60:68]
        self.mouth_c = inner.mean(axis=0)
        self.mouth_w = float(np.linalg.norm(pts[54] - pts[48]))
        chin = pts[8]
        self.jaw_len = float(max(chin[1] - self.mouth_c[1], 0.5 * self.mouth_w))
        outer = pts[48:60]
        # Region that moves when the mouth opens: the lips plus the maximal drop.
        self.mouth_box = (
            float(outer[:, 0].min() - 3), float(outer[:, 1].min() - 3),
            float(outer[:, 0].max() + 3), float(outer[:, 1].max() + 3 + self.max_open_px()),
        )
        yy, xx = np.mgrid[0:CROP, 0:CROP].astype(np.float32)
        self._grid = (xx, yy)
        # Jaw-drop weight: zero above the lip line, one over the chin, fading below it
        # and sideways, so the lower face stretches down like a real jaw opening.
        dy = (yy - self.mouth_c[1]) / max(self.jaw_len, 1.0)
        wy = np.clip(dy / 0.25, 0, 1) * np.clip((1.6 - dy) / 0.6, 0, 1)
        wx = np.exp(-(((xx - self.mouth_c[0]) / (0.9 * self.mouth_w)) ** 2))
        self._jaw_weight = (wy * wx).astype(np.float32)

    def max_open_px(self) -> float:
        return 0.42 * self.mouth_w

    def render(self, opening: float) -> np.ndarray:
        """The canonical crop with the mouth opened by ``opening`` in [0, 1]."""
        if opening <= 0.02:
            return self.crop
        h = self.max_open_px() * min(float(opening), 1.0)
        xx, yy = self._grid
        map_y = yy - self._jaw_weight * (0.8 * h)
        out = cv2.remap(self.crop, xx, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # Dark mouth cavity between the upper lip and the dropped lower lip; 4-bit
        # sub-pixel coordinates keep small openings from snapping to whole pixels.
        cx, cy = self.mouth_c
        center = (int(round(cx * 16)), int(round((cy + 0.35 * h) * 16)))
        axes = (int(round(0.34 * self.mouth_w * 16)), int(round(max(0.5 * h, 0.5) * 16)))
        cv2.ellipse(out, center, axes, 0, 0, 360, (28, 18, 40), -1, cv2.LINE_AA, 4)
        if h > 4:  # a hint of upper teeth once the mouth is clearly open
            teeth_axes = (int(axes[0] * 0.7), int(min(axes[1] * 0.3, 2.5 * 16)))
            teeth_c = (center[0], int(center[1] - axes[1] * 0.7))
            cv2.ellipse(out, teeth_c, teeth_axes, 0, 0, 360, (200, 205, 210), -1, cv2.LINE_AA, 4)
        return out


def is_reliable(face: Face, sizes=(150, 175, 200)) -> bool:
    """Haar must find the face at every tile size and mouth opening the corpus uses."""
    for size in sizes:
        for opening in (0.0, 0.6, 1.0):
            tile = cv2.resize(face.render(opening), (size, size), interpolation=cv2.INTER_AREA)
            canvas = np.full((size + 80, size + 80, 3), 110, np.uint8)
            canvas[40:40 + size, 40:40 + size] = tile
            expect = (40 + 0.2 * size, 40 + 0.2 * size, 40 + 0.8 * size, 40 + 0.85 * size)
            hits = haar_detect(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY))
            if not any(iou(h, expect) > 0.3 for h in hits):
                return False
    return True


def haar_box_in_tile(face: Face, size: int) -> tuple[float, float, float, float]:
    """Where Haar finds the (closed-mouth) face inside a tile of ``size``; the ground-truth face box."""
    tile = cv2.resize(face.crop, (size, size), interpolation=cv2.INTER_AREA)
    canvas = np.full((size + 80, size + 80, 3), 110, np.uint8)
    canvas[40:40 + size, 40:40 + size] = tile
    hits = haar_detect(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY))
    center = (40 + size / 2, 40 + size / 2)
    if hits:
        best = min(hits, key=lambda h: abs((h[0] + h[2]) / 2 - center[0]) + abs((h[1] + h[3]) / 2 - center[1]))
        return tuple(float(v - 40) for v in best)
    pts = face.points * (size / CROP)  # fallback: landmark hull widened to a Haar-like box
    x1, y1 = pts.min(axis=0)
    x2, y2 = pts.max(axis=0)
    return (float(x1), float(y1 - 0.15 * (y2 - y1)), float(x2), float(y2))


def save_assets(keys) -> list[Path]:
    """Write the canonical crops of ``keys`` as PNGs under assets/ (needs the source packages)."""
    ASSETS.mkdir(parents=True, exist_ok=True)
    written = []
    for key in keys:
        crop = crop_from_source(key)
        if crop is None:
            raise FileNotFoundError(f"face '{key}': package {FACE_SOURCES[key].package} is not installed")
        path = ASSETS / f"{key}.png"
        cv2.imwrite(str(path), crop, [cv2.IMWRITE_PNG_COMPRESSION, 9])
        written.append(path)
    return written
