"""Full active-speaker backend: Light-ASD (Liao et al., CVPR 2023), its published state dict.

Preprocessing follows Light-ASD's ``Columbia_test.py``, on in-memory frames instead of AVI files:
- per track, the box centre and half-side (max of width and height / 2) are median-filtered over
  13 frames; the crop spans ``half * (1 + 2 * crop_scale)`` below the centre and ``half`` above,
  ``half * (1 + crop_scale)`` each side, on a frame padded with gray 110; it is resized to
  224x224, turned gray and its central 112x112 kept;
- audio: 13 MFCCs at 100 Hz (python_speech_features, 25 ms windows, 10 ms step) of the track's own
  span, on int16-scaled samples (the first coefficient is the log frame energy, so scale matters),
  4 per video frame;
- the track is cut into chunks of each of ``durations`` seconds (their set: 1..6 s), the model
  scores every chunk, and the per-frame scores are averaged over durations, then averaged over
  5 frames as their evaluation does.

Differences, both documented in the config: scores are not rounded to 0.1 (ties would make AP
depend on row order), and by default the encoders run once over the whole track (in pieces that
overlap by their temporal receptive field, so this equals one pass) and only the GRU sees each
duration's chunks; ``encode_per_chunk`` restores their per-chunk encoding (borders zero-padded).

The score is the probability of the head's 2-way softmax (what their AVA evaluation ranks). Light-ASD
does not estimate an AV offset: ``sync_offset_s`` is 0 and ``sync_confidence`` is the highest 1 s
mean of that probability over the track (a face seen speaking in sync with the audio scores high; a
face whose lips never match the audio stays near 0).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from scipy.signal import medfilt

from perception.active_speaker import ActiveSpeaker, box_at, on_grid
from perception.config import PerceptionConfig
from perception.records import ActiveSpeakerTrack, FaceTrack
from perception.registry import require
from perception.weights import weights_file

DEFAULT_FILE = "light_asd/pretrain_AVA_CVPR.model"
FPS = 25.0
MFCC_PER_FRAME = 4  # 100 Hz MFCCs against 25 fps video
RECEPTIVE = 8  # frames of context either side that make piecewise encoding equal one pass (the encoders reach 6)
ENCODE_PIECE = 100  # frames per encoder pass (bounds memory: ~10 MB of activations per frame)


def load_light_asd(path: str, key: str = "light_asd.model_path"):
    """The network with the state dict at ``path`` loaded strictly; errors name the file and the config key."""
    import torch

    from perception.backends.light_asd_model import LightASD

    net = LightASD()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: cannot read a Light-ASD state dict ({type(exc).__name__}: {exc}); "
                         f"check perception.{key}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{path}: not a state dict ({type(state).__name__}); check perception.{key}")
    want, have = set(net.state_dict()), set(state)
    if want != have:
        raise ValueError(f"{path}: not a Light-ASD state dict (missing {sorted(want - have)[:3]}, unexpected "
                         f"{sorted(have - want)[:3]}); check perception.{key}")
    wrong = [f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})" for k, v in net.state_dict().items()
             if tuple(state[k].shape) != tuple(v.shape)]
    if wrong:
        raise ValueError(f"{path}: Light-ASD state dict with other shapes: {', '.join(wrong[:3])}; check perception.{key}")
    net.load_state_dict(state, strict=True)
    return net.eval()


def face_crop(frame: np.ndarray, cx: float, cy: float, half: float, crop_scale: float) -> np.ndarray:
    """Columbia_test's crop of an RGB frame (pixels): 112x112 gray uint8, the mouth in its lower half."""
    pad = int(half * (1 + 2 * crop_scale))
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(110, 110, 110))
    my, mx = cy + pad, cx + pad
    face = padded[int(my - half) : int(my + half * (1 + 2 * crop_scale)),
                  int(mx - half * (1 + crop_scale)) : int(mx + half * (1 + crop_scale))]
    gray = cv2.cvtColor(cv2.resize(face, (224, 224)), cv2.COLOR_RGB2GRAY)
    return gray[56:168, 56:168]


def mfcc(audio: np.ndarray, sr: int, k0: int, k1: int) -> np.ndarray:
    """(4 * (k1 - k0), 13) MFCCs of video frames k0..k1-1 (audio past the end is zeros)."""
    import python_speech_features as psf

    hop = sr / FPS
    a, b = int(round(k0 * hop)), int(round(k1 * hop)) + int(0.015 * sr)  # +15 ms: the last 25 ms window fits
    seg = audio[a:b]
    seg = np.pad(seg, (0, max(0, b - a - len(seg))))
    feats = psf.mfcc(np.clip(seg, -1, 1) * 32767.0, sr, numcep=13, winlen=0.025, winstep=0.010)
    n = MFCC_PER_FRAME * (k1 - k0)
    return np.pad(feats[:n], ((0, max(0, n - len(feats))), (0, 0)), mode="edge").astype(np.float32)


def _runs(ks: list[int]) -> list[tuple[int, int]]:
    """Contiguous [start, end) runs of sorted frame indices."""
    out: list[tuple[int, int]] = []
    for k in ks:
        if out and k == out[-1][1]:
            out[-1] = (out[-1][0], k + 1)
        else:
            out.append((k, k + 1))
    return out


class LightASDBackend(ActiveSpeaker):
    fps = FPS

    def __init__(self, cfg: PerceptionConfig):
        require("python_speech_features", "light_asd", "make full installs python_speech_features")
        import torch

        self.cfg = cfg.light_asd
        self.max_gap_s = cfg.tracker.max_gap_s
        path = weights_file(cfg, "light_asd.model_path", self.cfg.model_path, DEFAULT_FILE)
        self._device = "cuda" if torch.cuda.is_available() and cfg.video.num_gpus > 0 else "cpu"
        self._net = load_light_asd(path).to(self._device)
        self._torch = torch

    def _plan(self, track: FaceTrack, width: int, height: int) -> dict[int, tuple[float, float, float]]:
        """Frame index -> (cx, cy, half side) in pixels, each median-filtered over 13 frames as Columbia_test does."""
        ts = [b["t"] for b in track["boxes"]]
        if not ts:
            return {}
        lo = max(0, int(np.floor((ts[0] - self.max_gap_s / 2) * FPS)))
        hi = int(np.ceil((ts[-1] + self.max_gap_s / 2) * FPS))
        boxes = {k: box_at(track, k / FPS, self.max_gap_s) for k in range(lo, hi + 1)}
        plan: dict[int, tuple[float, float, float]] = {}
        for a, b in _runs(sorted(k for k, v in boxes.items() if v is not None)):
            bx = np.array([boxes[k] for k in range(a, b)]) * np.array([width, height, width, height])
            cols = [(bx[:, 0] + bx[:, 2]) / 2, (bx[:, 1] + bx[:, 3]) / 2,
                    np.maximum(bx[:, 2] - bx[:, 0], bx[:, 3] - bx[:, 1]) / 2 * self.cfg.box_scale]
            n = b - a
            kern = min(13, n if n % 2 else n - 1)  # scipy's medfilt zero-pads; their edge frames see that too
            cx, cy, half = (medfilt(c, kern) if kern > 1 else c for c in cols)
            plan.update({k: (cx[i], cy[i], half[i]) for i, k in enumerate(range(a, b))})
        return plan

    def __call__(self, audio: np.ndarray, sr: int, frames: Iterable[tuple[float, np.ndarray]],
                 tracks: list[FaceTrack]) -> list[ActiveSpeakerTrack]:
        plans: list[dict] | None = None
        crops: list[dict[int, np.ndarray]] = [{} for _ in tracks]
        for k, frame in on_grid(frames, FPS):
            if plans is None:  # boxes are normalized: the first frame gives the pixel scale
                plans = [self._plan(tr, frame.shape[1], frame.shape[0]) for tr in tracks]
            for plan, out in zip(plans, crops, strict=True):
                if k in plan and plan[k][2] >= 4:
                    out[k] = face_crop(frame, *plan[k], self.cfg.crop_scale)
        return [self._track(tr, c, audio, sr) for tr, c in zip(tracks, crops, strict=True)]

    def _track(self, tr: FaceTrack, crops: dict[int, np.ndarray], audio: np.ndarray, sr: int) -> ActiveSpeakerTrack:
        c = self.cfg
        times, scores, best = [], [], 0.0
        hop = max(1, int(round(c.score_hop_s * FPS)))
        for k0, k1 in _runs(sorted(crops)):
            if k1 - k0 < c.min_frames:
                continue
            video = np.stack([crops[k] for k in range(k0, k1)]).astype(np.float32)
            logodds = self.logodds(mfcc(audio, sr, k0, k1), video)
            if c.smooth_frames > 1:  # their evaluation averages each frame with its neighbours
                logodds = np.convolve(np.pad(logodds, c.smooth_frames // 2, mode="edge"),
                                      np.ones(c.smooth_frames) / c.smooth_frames, mode="valid")[: k1 - k0]
            prob = 1.0 / (1.0 + np.exp(-logodds))
            win = min(len(prob), int(FPS))
            best = max(best, float(np.convolve(prob, np.ones(win) / win, mode="valid").max()))
            for i, k in enumerate(range(k0, k1)):
                if k % hop == 0:
                    times.append(round(k / FPS, 3))
                    scores.append(round(float(prob[i]), 4))
        return ActiveSpeakerTrack(track_id=tr["track_id"], times=times, scores=scores, sync_offset_s=0.0,
                                  sync_confidence=round(best, 4))

    def logodds(self, audio_feats: np.ndarray, video: np.ndarray) -> np.ndarray:
        """Per-frame speaking log-odds of one contiguous run, averaged over the configured durations."""
        torch, net, c = self._torch, self._net, self.cfg
        n = len(video)
        a = torch.from_numpy(audio_feats).to(self._device)
        v = torch.from_numpy(video).to(self._device)
        total = np.zeros(n)
        with torch.inference_mode():
            fused = None if c.encode_per_chunk else self._embed(a, v)
            for d in c.durations:
                size = max(1, int(round(d * FPS)))
                starts = list(range(0, n, size))
                # Equal-length chunks go in batches; a shorter last chunk runs alone (the GRU has no padding mask).
                full = [s for s in starts if s + size <= n]
                batches = [full[i : i + c.batch_size] for i in range(0, len(full), c.batch_size)]
                batches += [[s] for s in starts if s + size > n]
                for batch in batches:
                    m = min(size, n - batch[0])
                    if fused is None:
                        x = net.embed(torch.stack([a[MFCC_PER_FRAME * s : MFCC_PER_FRAME * (s + m)] for s in batch]),
                                      torch.stack([v[s : s + m] for s in batch]))
                    else:
                        x = torch.stack([fused[s : s + m] for s in batch])
                    for s, r in zip(batch, net.score(x).cpu().numpy(), strict=True):
                        total[s : s + m] += r
        return total / len(c.durations)

    def _embed(self, a, v):
        """Fused embeddings (T, 128) of a whole run, in pieces overlapping by the encoders' reach (equal to one pass)."""
        n, parts = len(v), []
        for s in range(0, n, ENCODE_PIECE):
            lo, hi = max(0, s - RECEPTIVE), min(n, s + ENCODE_PIECE + RECEPTIVE)
            x = self._net.embed(a[None, MFCC_PER_FRAME * lo : MFCC_PER_FRAME * hi], v[None, lo:hi])[0]
            parts.append(x[s - lo : s - lo + min(ENCODE_PIECE, n - s)])
        return self._torch.cat(parts)
