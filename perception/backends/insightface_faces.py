"""Full face backend: InsightFace SCRFD detection + ArcFace embedding, ONNX via ``model_zoo.get_model``.

The files come from ``perception.insightface.det_model`` / ``rec_model`` (or the buffalo_l names
under ``perception.weights_dir``). ``get_model`` routes each file by its graph: 6/9/10/15 outputs
make an SCRFD detector, a square 112+ input an ArcFace recognizer; a file routed to anything else
is rejected with its config key. Frames arrive RGB; InsightFace expects OpenCV's BGR.
"""

from __future__ import annotations

import numpy as np

from perception.config import PerceptionConfig
from perception.faces import FaceBackend
from perception.registry import BackendUnavailable, require
from perception.weights import weights_file

DET_FILE = "insightface/det_10g.onnx"
REC_FILE = "insightface/w600k_r50.onnx"


def _load(model_zoo, path: str, key: str, want: str, providers: list[str]):
    model = model_zoo.get_model(path, providers=providers)
    kind = getattr(model, "taskname", None)
    if kind != want:
        raise BackendUnavailable(
            f"{path}: insightface routes this ONNX graph to {kind or 'no model class'}, not {want} "
            f"(perception.insightface.{key} must name an {'SCRFD' if want == 'detection' else 'ArcFace'} model)"
        )
    return model


class InsightFaces(FaceBackend):
    """SCRFD boxes (+5 landmarks), ArcFace 512-d embeddings on landmark-aligned 112x112 crops."""

    def __init__(self, cfg: PerceptionConfig):
        require("insightface", "insightface", "make full installs insightface --no-deps")
        from insightface import model_zoo

        self.cfg = cfg.insightface
        det_path = weights_file(cfg, "insightface.det_model", self.cfg.det_model, DET_FILE)
        rec_path = weights_file(cfg, "insightface.rec_model", self.cfg.rec_model, REC_FILE)
        use_gpu = cfg.video.num_gpus > 0
        providers = (["CUDAExecutionProvider"] if use_gpu else []) + ["CPUExecutionProvider"]
        self._det = _load(model_zoo, det_path, "det_model", "detection", providers)
        self._rec = _load(model_zoo, rec_path, "rec_model", "recognition", providers)
        ctx = 0 if use_gpu else -1
        self._det.prepare(ctx, input_size=tuple(self.cfg.det_size), det_thresh=self.cfg.det_thresh,
                          nms_thresh=self.cfg.nms_thresh)
        self._rec.prepare(ctx)
        self._frame_id = -1
        self._last: tuple[np.ndarray, np.ndarray | None] = (np.zeros((0, 4)), None)

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        bgr = np.ascontiguousarray(frame[:, :, ::-1])
        det, kps = self._det.detect(bgr, max_num=self.cfg.max_faces)
        boxes, scores = det[:, :4].astype(float), det[:, 4].astype(float)
        h, w = frame.shape[:2]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= self.cfg.min_face_px) & ((boxes[:, 3] - boxes[:, 1]) >= self.cfg.min_face_px)
        # Landmarks of this frame's kept boxes, for alignment when embed() is asked about them.
        self._frame_id = id(frame)
        self._last = (boxes[keep], None if kps is None else kps[keep])
        return boxes[keep], scores[keep]

    def _landmarks(self, frame: np.ndarray, box: np.ndarray) -> np.ndarray:
        """SCRFD's 5 points for ``box`` when it came from the last detect(), else a frontal template in the box."""
        if id(frame) == self._frame_id and self._last[1] is not None and len(self._last[0]):
            d = np.abs(self._last[0] - box).sum(1)
            i = int(np.argmin(d))
            if d[i] < 1e-3:
                return self._last[1][i]
        x1, y1, x2, y2 = box
        tmpl = np.array([[0.34, 0.46], [0.66, 0.46], [0.5, 0.64], [0.37, 0.82], [0.63, 0.82]])
        return np.c_[x1 + tmpl[:, 0] * (x2 - x1), y1 + tmpl[:, 1] * (y2 - y1)]

    def embed(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        from insightface.utils import face_align

        if len(boxes) == 0:
            return np.zeros((0, 512), dtype=np.float32)
        bgr = np.ascontiguousarray(frame[:, :, ::-1])
        size = self._rec.input_size[0]
        crops = [face_align.norm_crop(bgr, landmark=self._landmarks(frame, b), image_size=size) for b in boxes]
        feats = np.asarray(self._rec.get_feat(crops), dtype=np.float32).reshape(len(crops), -1)
        return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-9)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        return float(1.0 - a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-9))  # cosine distance
