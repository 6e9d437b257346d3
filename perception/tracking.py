"""Face tracker: IoU association frame to frame, embedding re-identification across gaps.

Embeddings cost ~50 ms each on CPU with dlib, so the tracker asks for them only when it must:
when a detection starts a new track (to re-identify an ended one) and for the few largest faces
of each track that make up its identity embedding.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from perception.config import FaceTrackerConfig
from perception.records import Box, FaceTrack


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (n,4) and (m,4) x1,y1,x2,y2 boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda x: (x[:, 2] - x[:, 0]) * (x[:, 3] - x[:, 1])  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


@dataclass
class _Track:
    tid: int
    times: list[float] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)  # normalized x1,y1,x2,y2
    scores: list[float] = field(default_factory=list)
    embeddings: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (face area, embedding)

    @property
    def last_t(self) -> float:
        return self.times[-1]

    def identity(self) -> np.ndarray | None:
        if not self.embeddings:
            return None
        e = np.mean([v for _, v in self.embeddings], axis=0)
        return e


class FaceTracker:
    """Feed detections frame by frame with :meth:`update`; :meth:`tracks` returns FaceTrack records.

    ``embed(indices)`` is a callback that returns embeddings for those detections of the *current*
    frame; the caller binds it to the frame so the tracker never holds pixels.
    """

    def __init__(self, cfg: FaceTrackerConfig, distance: Callable[[np.ndarray, np.ndarray], float]):
        self.cfg = cfg
        self.distance = distance
        self._live: list[_Track] = []
        self._ended: list[_Track] = []
        self._next = 0

    def update(self, t: float, boxes: np.ndarray, scores: np.ndarray, embed: Callable[[list[int]], np.ndarray]) -> None:
        c = self.cfg
        still, gone = [], []
        for tr in self._live:
            (still if t - tr.last_t <= c.max_gap_s else gone).append(tr)
        self._ended.extend(gone)
        self._live = still
        prev = np.array([tr.boxes[-1] for tr in self._live]) if self._live else np.zeros((0, 4))
        ious = iou_matrix(prev, boxes)
        assigned: dict[int, _Track] = {}
        # Greedy by IoU: faces in one frame rarely compete for the same track.
        for flat in np.argsort(-ious, axis=None):
            i, j = np.unravel_index(flat, ious.shape)
            if ious[i, j] < c.iou_threshold:
                break
            if j in assigned or any(tr is self._live[i] for tr in assigned.values()):
                continue
            assigned[j] = self._live[i]
        new = [j for j in range(len(boxes)) if j not in assigned]
        emb_need = list(new)
        # Identity embeddings: the first few sightings of each track, largest faces preferred later.
        for j, tr in assigned.items():
            if len(tr.embeddings) < c.embeddings_per_track:
                emb_need.append(j)
        embs = dict(zip(emb_need, embed(emb_need), strict=True)) if emb_need else {}
        for j in new:
            tr = self._reidentify(embs[j])
            if tr is None:
                tr = _Track(self._next)
                self._next += 1
            self._live.append(tr)
            assigned[j] = tr
        for j, tr in assigned.items():
            tr.times.append(float(t))
            tr.boxes.append(np.asarray(boxes[j], dtype=float))
            tr.scores.append(float(scores[j]))
            if j in embs and len(tr.embeddings) < c.embeddings_per_track:
                b = boxes[j]
                tr.embeddings.append(((b[2] - b[0]) * (b[3] - b[1]), embs[j]))

    def _reidentify(self, emb: np.ndarray) -> _Track | None:
        """The ended track (not live) whose identity is nearest to ``emb``, if within reid_distance."""
        best, best_d = None, self.cfg.reid_distance
        for tr in self._ended:
            ident = tr.identity()
            if ident is None:
                continue
            d = self.distance(ident, emb)
            if d < best_d:
                best, best_d = tr, d
        if best is not None:
            self._ended.remove(best)
        return best

    def tracks(self) -> list[FaceTrack]:
        out: list[FaceTrack] = []
        for tr in sorted(self._ended + self._live, key=lambda x: x.tid):
            if len(tr.times) < self.cfg.min_track_frames:
                continue
            ident = tr.identity()
            out.append(FaceTrack(
                track_id=f"face_{len(out):02d}",
                boxes=[Box(t=round(t, 3), x1=float(b[0]), y1=float(b[1]), x2=float(b[2]), y2=float(b[3]), score=s)
                       for t, b, s in zip(tr.times, tr.boxes, tr.scores, strict=True)],
                embedding=[] if ident is None else [float(v) for v in ident],
            ))
        return out
