"""Active speaker detection and AV sync: per face track, a speaking score over time and the best offset.

Interface: ``ActiveSpeaker(cfg)`` has ``fps`` (the frame rate it wants) and
``__call__(audio, sr, frames, tracks) -> list[ActiveSpeakerTrack]``; ``frames`` is an iterable of
(clip-relative t, RGB frame) at ``fps``, streamed, and ``tracks`` are FaceTrack records (boxes
sampled at a lower rate are interpolated). A positive ``sync_offset_s`` means the audio lags the
video.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator

import cv2
import numpy as np

from perception.config import PerceptionConfig
from perception.records import ActiveSpeakerTrack, FaceTrack
from perception.registry import Registry

ASD_BACKENDS = Registry("active_speaker")


class ActiveSpeaker(ABC):
    fps: float

    @abstractmethod
    def __call__(
        self, audio: np.ndarray, sr: int, frames: Iterable[tuple[float, np.ndarray]], tracks: list[FaceTrack]
    ) -> list[ActiveSpeakerTrack]:
        """Speaking scores in [0, 1] per track over time, with the best AV offset and its confidence."""


def on_grid(frames: Iterable[tuple[float, np.ndarray]], fps: float) -> Iterator[tuple[int, np.ndarray]]:
    """(k, frame) for the grid times k / fps, each with the decoded frame nearest to it.

    Like ffmpeg's fps filter: a slower source repeats frames and a faster one drops some, so frame
    k always sits with the audio at k / fps. (Rounding each frame's own time to the grid instead
    leaves holes and collisions: a 30 fps source decoded at 25 fps has frames at k = 2, 2, 3 ...)
    """
    prev: tuple[float, np.ndarray] | None = None
    k = 0
    for t, frame in frames:
        if prev is None:
            k = max(0, int(np.ceil(t * fps - 0.5)))  # the first grid time this frame is nearest to
        else:
            mid = (prev[0] + t) / 2
            while k / fps < mid:
                yield k, prev[1]
                k += 1
        prev = (t, frame)
    if prev is not None:
        while k / fps <= prev[0] + 0.5 / fps:
            yield k, prev[1]
            k += 1


def box_at(track: FaceTrack, t: float, max_gap_s: float) -> np.ndarray | None:
    """Track box (normalized) at time ``t``, linearly interpolated; None where the track is absent."""
    ts = np.array([b["t"] for b in track["boxes"]])
    if len(ts) == 0 or t < ts[0] - max_gap_s / 2 or t > ts[-1] + max_gap_s / 2:
        return None
    bx = np.array([[b["x1"], b["y1"], b["x2"], b["y2"]] for b in track["boxes"]])
    i = int(np.searchsorted(ts, t))
    if i == 0:
        return bx[0]
    if i >= len(ts):
        return bx[-1]
    if ts[i] - ts[i - 1] > max_gap_s:
        near = i if ts[i] - t < t - ts[i - 1] else i - 1
        return bx[near] if abs(ts[near] - t) <= max_gap_s / 2 else None
    w = (t - ts[i - 1]) / max(ts[i] - ts[i - 1], 1e-9)
    return (1 - w) * bx[i - 1] + w * bx[i]


def audio_energy(audio: np.ndarray, sr: int, fps: float, n: int) -> np.ndarray:
    """RMS of the audio in each video frame's window: the signal a moving mouth should follow."""
    hop = sr / fps
    out = np.zeros(n)
    for i in range(n):
        seg = audio[int(round(i * hop)) : int(round((i + 1) * hop))]
        if seg.size:
            out[i] = np.sqrt(np.mean(seg.astype(np.float64) ** 2))
    return out


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def shifted(x: np.ndarray, offset: int) -> np.ndarray:
    """x[t + offset] aligned to t, NaN where it falls outside."""
    out = np.full(len(x), np.nan)
    if offset >= 0:
        out[: len(x) - offset] = x[offset:]
    else:
        out[-offset:] = x[: len(x) + offset]
    return out


# dlib's 68-point layout: inner-lip pairs (upper, lower) and the outer eye corners.
INNER_LIPS = ((61, 67), (62, 66), (63, 65))
EYE_CORNERS = (36, 45)


class MotionCorrelation(ActiveSpeaker):
    """Mouth opening from face landmarks vs audio energy.

    The visual signal is the inner-lip gap (dlib's 68-point landmarks, the model that ships with
    face-recognition-models) over the distance between the outer eye corners, so it does not depend
    on face size. Speaking score at each time: zero where the audio is silent; elsewhere the
    mouth's mean frame-to-frame movement ``m`` over ``window_s`` as ``m / (m + activity_scale)``
    (0.5 at ``activity_scale``). The AV offset maximizes the clip-level correlation of the gap with
    the audio energy over -N..+N frames; its confidence is the peak minus the median over offsets
    (SyncNet's definition).

    Why motion and not local correlation: on real talking heads the gap follows the energy only
    loosely (clip-level correlation 0.1-0.3 for the true speaker), so 0.4 s correlations are noise;
    a still listener's mouth barely moves, a speaker's does. For the same reason the estimated
    offset is reported but not applied to the silence gate: on real footage its peak often lands at
    +7..+10 frames with the confidence of a correct one, and a wrong shift misplaces the gate.
    A listener whose lips move while muted still scores as speaking: telling that apart needs sync
    (a full backend).
    """

    def __init__(self, cfg: PerceptionConfig):
        import dlib
        import face_recognition_models as frm

        self.cfg = cfg.motion_corr
        self.fps = self.cfg.fps
        self.max_gap_s = cfg.tracker.max_gap_s
        self._landmarks = dlib.shape_predictor(frm.pose_predictor_model_location())
        self._rect = dlib.rectangle

    def mouth_gap(self, frame: np.ndarray, box: np.ndarray) -> float | None:
        """Inner-lip gap over eye-corner distance for the face in ``box`` (normalized), or None if degenerate."""
        h, w = frame.shape[:2]
        x1, y1, x2, y2 = (box * np.array([w, h, w, h])).astype(int)
        if x2 - x1 < 8 or y2 - y1 < 8:
            return None
        # The predictor on a small gray crop around the face: the binding converts the whole array it
        # is given on every call, which cost about 1.8 ms per face on a 640x360 RGB frame.
        m = (x2 - x1) // 4
        ya, xa = max(0, y1 - m), max(0, x1 - m)
        crop = np.ascontiguousarray(frame[ya : y2 + m, xa : x2 + m])
        if crop.ndim == 3:
            crop = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        shape = self._landmarks(crop, self._rect(x1 - xa, y1 - ya, x2 - xa, y2 - ya))
        pt = lambda j: np.array([shape.part(j).x, shape.part(j).y], dtype=float)  # noqa: E731
        eyes = np.linalg.norm(pt(EYE_CORNERS[0]) - pt(EYE_CORNERS[1]))
        if eyes < 2:
            return None
        return float(np.mean([np.linalg.norm(pt(a) - pt(b)) for a, b in INNER_LIPS]) / eyes)

    def _visual(self, frames, tracks) -> tuple[int, dict[int, np.ndarray]]:
        vals: dict[int, dict[int, float]] = {i: {} for i in range(len(tracks))}
        n = 0
        for k, frame in on_grid(frames, self.fps):
            n = k + 1
            frame = np.ascontiguousarray(frame)  # dlib misreads strided arrays (see faces.OpencvDlibFaces.detect)
            for i, tr in enumerate(tracks):
                box = box_at(tr, k / self.fps, self.max_gap_s)
                gap = None if box is None else self.mouth_gap(frame, box)
                if gap is not None:
                    vals[i][k] = gap
        signals = {}
        for i, by_k in vals.items():
            sig = np.full(n, np.nan)
            for k, v in by_k.items():
                sig[k] = v
            signals[i] = sig
        return n, signals

    def __call__(self, audio, sr, frames, tracks) -> list[ActiveSpeakerTrack]:
        c = self.cfg
        n, signals = self._visual(frames, tracks)
        energy = audio_energy(audio, sr, self.fps, n)
        loud = energy > max(0.05 * np.percentile(energy, 95), 1e-4) if n else energy.astype(bool)
        half = max(2, int(round(c.window_s * self.fps / 2)))
        hop = max(1, int(round(c.score_hop_s * self.fps)))
        offs = list(range(-c.max_offset_frames, c.max_offset_frames + 1))
        out: list[ActiveSpeakerTrack] = []
        for i, tr in enumerate(tracks):
            v = signals[i]
            corrs = []
            for o in offs:
                a = shifted(energy, o)
                ok = ~np.isnan(v) & ~np.isnan(a)
                corrs.append(_corr(v[ok], a[ok]) if ok.sum() >= 3 else 0.0)
            corrs = np.asarray(corrs)
            best = int(np.argmax(corrs))
            conf = float(corrs[best] - np.median(corrs))
            times, scores = [], []
            for k in range(0, n, hop):
                if np.isnan(v[k]):
                    continue
                lo, hi = max(0, k - half), min(n, k + half + 1)
                moves = np.abs(np.diff(v[lo:hi]))
                moves = moves[~np.isnan(moves)]
                score = 0.0
                if len(moves) >= 4 and np.mean(loud[lo:hi]) > 0.2:
                    m = float(moves.mean())
                    score = m / (m + c.activity_scale)
                times.append(round(k / self.fps, 3))
                scores.append(round(score, 4))
            out.append(ActiveSpeakerTrack(track_id=tr["track_id"], times=times, scores=scores,
                                          sync_offset_s=round(offs[best] / self.fps, 3),
                                          sync_confidence=round(max(conf, 0.0), 4)))
        return out


ASD_BACKENDS.register("motion_corr", MotionCorrelation)
ASD_BACKENDS.register("syncnet", "perception.backends.syncnet_asd:SyncNetASD")
ASD_BACKENDS.register("light_asd", "perception.backends.light_asd:LightASDBackend")
