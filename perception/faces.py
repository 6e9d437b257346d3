"""Faces: per-frame detection, tracking across sampled frames, one identity embedding per track.

Interface: a ``FaceBackend(cfg)`` with ``detect(frame) -> (boxes_px (n,4), scores (n,))``,
``embed(frame, boxes_px) -> (n, d)`` and ``distance(a, b)``; :func:`track_faces` runs any backend
with the shared :class:`~perception.tracking.FaceTracker`. Boxes in records are normalized.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable

import cv2
import numpy as np

from perception.config import PerceptionConfig
from perception.records import Box, FaceTrack
from perception.registry import Registry
from perception.tracking import FaceTracker

FACE_BACKENDS = Registry("faces")


class FaceBackend(ABC):
    @abstractmethod
    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Face boxes (n,4) x1,y1,x2,y2 in pixels of ``frame`` (RGB uint8) and their scores (n,)."""

    @abstractmethod
    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Identity embeddings (n, d) for ``boxes`` (pixels) of ``frame``."""

    @abstractmethod
    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Identity distance between two embeddings (small: same person)."""


def _scaled(frame: np.ndarray, height: int) -> tuple[np.ndarray, float]:
    """Frame resized to ``height`` (never up) and the factor back to the original pixels."""
    h = frame.shape[0]
    if h <= height:
        return frame, 1.0
    s = height / h
    return cv2.resize(frame, (int(round(frame.shape[1] * s)), height), interpolation=cv2.INTER_AREA), 1.0 / s


class OpencvDlibFaces(FaceBackend):
    """dlib HOG or OpenCV Haar detection, dlib 5-point alignment + ResNet embedding (128-d).

    All weights ship in pip packages: Haar cascades in opencv-python-headless<5, the landmark and
    ResNet models in face-recognition-models.
    """

    def __init__(self, cfg: PerceptionConfig):
        import dlib
        import face_recognition_models as frm

        self.cfg = cfg.opencv_dlib
        if self.cfg.detector == "hog":
            self._hog = dlib.get_frontal_face_detector()
        else:
            path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
            self._haar = cv2.CascadeClassifier(path)
            if self._haar.empty():
                raise RuntimeError(f"cannot load the Haar cascade {path} (opencv-python-headless<5 ships it)")
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._rec = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
        self._dlib = dlib

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        c = self.cfg
        # dlib reads an image's rows as if they were packed: a strided view (PyAV pads rows to its alignment, so a
        # 360-px-wide frame arrives with 1104-byte rows) is silently misread by HOG and rejected by the embedder.
        small, back = _scaled(np.ascontiguousarray(frame), c.detect_height)
        if c.detector == "hog":
            rects, scores, _ = self._hog.run(small, c.upsample, 0.0)
            boxes = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], dtype=float).reshape(-1, 4)
            scores = np.asarray(scores, dtype=float)
        else:
            gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
            found, _, weights = self._haar.detectMultiScale3(
                gray, scaleFactor=c.haar_scale_factor, minNeighbors=c.haar_min_neighbors,
                minSize=(c.min_face_px, c.min_face_px), outputRejectLevels=True,
            )
            found = np.asarray(found, dtype=float).reshape(-1, 4)
            boxes = np.c_[found[:, :2], found[:, :2] + found[:, 2:]]
            scores = np.asarray(weights, dtype=float).reshape(-1)
        keep = (boxes[:, 2] - boxes[:, 0]) >= c.min_face_px
        boxes, scores = boxes[keep] * back, scores[keep]
        h, w = frame.shape[:2]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        return boxes, scores

    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        frame = np.ascontiguousarray(frame)  # see detect
        out = []
        for x1, y1, x2, y2 in boxes:
            rect = self._dlib.rectangle(int(x1), int(y1), int(x2), int(y2))
            shape = self._shape(frame, rect)
            out.append(np.asarray(self._rec.compute_face_descriptor(frame, shape), dtype=np.float32))
        return np.stack(out) if out else np.zeros((0, 128), dtype=np.float32)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))  # dlib's metric: same person < 0.6


def detect_frames(backend: FaceBackend, frames: Iterable[tuple[float, np.ndarray]]) -> list[dict]:
    """Per sampled frame: {t, faces: [Box]} with normalized boxes (no tracking, no embeddings)."""
    out = []
    for t, frame in frames:
        boxes, scores = backend.detect(frame)
        out.append({"t": round(float(t), 3), "faces": _boxes(t, boxes, scores, frame.shape)})
    return out


def _boxes(t: float, boxes: np.ndarray, scores: np.ndarray, shape) -> list[Box]:
    h, w = shape[:2]
    return [Box(t=round(float(t), 3), x1=float(b[0] / w), y1=float(b[1] / h), x2=float(b[2] / w), y2=float(b[3] / h),
                score=float(s)) for b, s in zip(boxes, scores, strict=True)]


def track_faces(backend: FaceBackend, frames: Iterable[tuple[float, np.ndarray]], cfg: PerceptionConfig) -> list[FaceTrack]:
    """Detect on every given frame, link detections into tracks, one embedding per track."""
    tracker = FaceTracker(cfg.tracker, backend.distance)
    for t, frame in frames:
        boxes, scores = backend.detect(frame)
        h, w = frame.shape[:2]
        norm = boxes / np.array([w, h, w, h], dtype=float) if len(boxes) else np.zeros((0, 4))
        tracker.update(t, norm, scores, lambda idx, f=frame, b=boxes: backend.embed(f, b[idx]))
    return tracker.tracks()


FACE_BACKENDS.register("opencv_dlib", OpencvDlibFaces)
FACE_BACKENDS.register("insightface", "perception.backends.insightface_faces:InsightFaces")
