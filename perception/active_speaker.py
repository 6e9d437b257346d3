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


def mouth_crop(frame: np.ndarray, box: np.ndarray, size: tuple[int, int] = (32, 16)) -> np.ndarray | None:
    """Gray lower-centre part of a face box (where the mouth is on a frontal face), fixed size."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box * np.array([w, h, w, h])
    bw, bh = x2 - x1, y2 - y1
    xa, xb = int(x1 + 0.2 * bw), int(x2 - 0.2 * bw)
    ya, yb = int(y1 + 0.6 * bh), int(min(h, y1 + 1.05 * bh))
    xa, ya = max(xa, 0), max(ya, 0)
    xb = min(xb, w)
    if xb - xa < 4 or yb - ya < 4:
        return None
    crop = cv2.cvtColor(frame[ya:yb, xa:xb], cv2.COLOR_RGB2GRAY)
    return cv2.resize(crop, size, interpolation=cv2.INTER_AREA).astype(np.float32)


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


class MotionCorrelation(ActiveSpeaker):
    """Mouth-region contrast vs audio energy, correlated over offsets of -N..+N frames.

    The visual signal is the standard deviation of the gray mouth crop: an opening mouth shows a
    dark cavity (and teeth) against the lips, so contrast follows the opening, with a known sign
    and little sensitivity to small box jitter. The best offset maximizes the clip-level
    correlation with the audio energy; its confidence is the peak minus the median over offsets
    (SyncNet's definition). The speaking score at each time is the local correlation over
    ``window_s``, scaled down where the mouth barely moves and zero where the audio is silent.
    """

    def __init__(self, cfg: PerceptionConfig):
        self.cfg = cfg.motion_corr
        self.fps = self.cfg.fps
        self.max_gap_s = cfg.tracker.max_gap_s

    def _visual(self, frames, tracks) -> tuple[int, dict[int, np.ndarray]]:
        vals: dict[int, dict[int, float]] = {i: {} for i in range(len(tracks))}
        n = 0
        for t, frame in frames:
            k = int(round(t * self.fps))
            n = max(n, k + 1)
            for i, tr in enumerate(tracks):
                box = box_at(tr, t, self.max_gap_s)
                if box is not None:
                    crop = mouth_crop(frame, box)
                    if crop is not None:
                        vals[i][k] = float(crop.std())
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
            a = shifted(energy, offs[best])
            al = shifted(loud.astype(float), offs[best])
            times, scores = [], []
            for k in range(0, n, hop):
                if np.isnan(v[k]):
                    continue
                lo, hi = max(0, k - half), min(n, k + half + 1)
                vv, aa, ll = v[lo:hi], a[lo:hi], al[lo:hi]
                ok = ~np.isnan(vv) & ~np.isnan(aa)
                score = 0.0
                if ok.sum() >= 5 and np.mean(ll[ok]) > 0.2:
                    activity = min(1.0, float(np.std(vv[ok])) / c.activity_scale)
                    score = max(0.0, _corr(vv[ok], aa[ok])) * activity
                times.append(round(k / self.fps, 3))
                scores.append(round(score, 4))
            out.append(ActiveSpeakerTrack(track_id=tr["track_id"], times=times, scores=scores,
                                          sync_offset_s=round(offs[best] / self.fps, 3),
                                          sync_confidence=round(max(conf, 0.0), 4)))
        return out


ASD_BACKENDS.register("motion_corr", MotionCorrelation)
ASD_BACKENDS.register("syncnet", "perception.backends.syncnet_asd:SyncNetASD")
ASD_BACKENDS.register("light_asd", "perception.backends.light_asd:LightASDBackend")
