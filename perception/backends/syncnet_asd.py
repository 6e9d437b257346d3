"""Full active-speaker / AV-sync backend: SyncNet (syncnet-python's model), weights from a state dict.

Same computation as ``SyncNetInstance.evaluate``, on in-memory frames instead of a folder of JPEGs:
the lip tower embeds 5-frame windows of 224x224 face crops at 25 fps, the audio tower embeds the
matching 20 MFCC frames (0.2 s), and distances are compared over audio shifts of -N..+N frames.
Per track: the best shift (``sync_offset_s``, positive when the audio lags the video), its
confidence (median distance minus the minimum, SyncNet's), and a speaking score per time: the
frame-wise confidence at the best shift, median-filtered over 9 frames, through a sigmoid.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np
from scipy.signal import medfilt

from perception.active_speaker import ActiveSpeaker, box_at
from perception.config import PerceptionConfig
from perception.records import ActiveSpeakerTrack, FaceTrack
from perception.registry import require
from perception.weights import weights_file

DEFAULT_FILE = "syncnet/syncnet_v2.model"
FPS = 25.0
CROP = 224  # the lip tower's fully connected layer fixes the input size


def _crop(frame: np.ndarray, box: np.ndarray, scale: float) -> np.ndarray | None:
    """Square BGR crop around a normalized box, enlarged by ``scale``, resized to 224x224."""
    h, w = frame.shape[:2]
    x1, y1, x2, y2 = box * np.array([w, h, w, h])
    cx, cy, side = (x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, y2 - y1) * scale
    if side < 8:
        return None
    pad = int(side)
    padded = cv2.copyMakeBorder(frame, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(110, 110, 110))
    xa, ya = int(cx - side / 2) + pad, int(cy - side / 2) + pad
    sub = padded[ya : ya + int(side), xa : xa + int(side)]
    return cv2.resize(sub[:, :, ::-1], (CROP, CROP), interpolation=cv2.INTER_AREA)


class SyncNetASD(ActiveSpeaker):
    fps = FPS

    def __init__(self, cfg: PerceptionConfig):
        require("python_speech_features", "syncnet", "make full installs python_speech_features")
        model_mod = require("syncnet_python.SyncNetModel", "syncnet", "make full installs syncnet-python --no-deps")
        import torch

        self.cfg = cfg.syncnet
        self.max_gap_s = cfg.tracker.max_gap_s
        path = weights_file(cfg, "syncnet.model_path", self.cfg.model_path, DEFAULT_FILE)
        self._device = "cuda" if torch.cuda.is_available() and cfg.video.num_gpus > 0 else "cpu"
        net = model_mod.S(num_layers_in_fc_layers=1024)
        state = torch.load(path, map_location="cpu", weights_only=True)
        missing = set(net.state_dict()) - set(state)
        if missing:
            raise ValueError(f"{path}: not a SyncNet state dict (missing {sorted(missing)[:3]}...); "
                             "check perception.syncnet.model_path")
        net.load_state_dict(state, strict=True)
        self._net = net.to(self._device).eval()
        self._torch = torch

    def _audio_feats(self, audio: np.ndarray, sr: int, n_windows: int) -> np.ndarray:
        import python_speech_features as psf

        pcm = np.clip(audio, -1, 1) * 32767.0  # SyncNet computed MFCCs on int16-scaled wav samples
        mfcc = psf.mfcc(pcm, sr).T.astype(np.float32)  # (13, T) at 100 Hz: 4 per video frame
        n_windows = min(n_windows, max(0, (mfcc.shape[1] - 20) // 4 + 1))  # whole 0.2 s windows only
        x = [mfcc[:, v * 4 : v * 4 + 20] for v in range(n_windows)]
        out = []
        with self._torch.inference_mode():
            for i in range(0, len(x), self.cfg.batch_size):
                b = self._torch.from_numpy(np.stack(x[i : i + self.cfg.batch_size])[:, None]).to(self._device)
                out.append(self._net.forward_aud(b).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1024), np.float32)

    def _lip_feats(self, crops: dict[int, np.ndarray], n_windows: int) -> dict[int, np.ndarray]:
        starts = [v for v in range(n_windows) if all(v + k in crops for k in range(5))]
        feats: dict[int, np.ndarray] = {}
        with self._torch.inference_mode():
            for i in range(0, len(starts), self.cfg.batch_size):
                batch = starts[i : i + self.cfg.batch_size]
                # (B, 3, 5, 224, 224) float, raw 0..255 BGR as SyncNet was trained
                x = np.stack([np.stack([crops[v + k] for k in range(5)]) for v in batch])  # (B, 5, 224, 224, 3)
                x = self._torch.from_numpy(x.transpose(0, 4, 1, 2, 3).astype(np.float32)).to(self._device)
                for v, f in zip(batch, self._net.forward_lip(x).cpu().numpy(), strict=True):
                    feats[v] = f
        return feats

    def __call__(self, audio: np.ndarray, sr: int, frames: Iterable[tuple[float, np.ndarray]],
                 tracks: list[FaceTrack]) -> list[ActiveSpeakerTrack]:
        crops: list[dict[int, np.ndarray]] = [{} for _ in tracks]
        n = 0
        for t, frame in frames:
            k = int(round(t * FPS))
            n = max(n, k + 1)
            for i, tr in enumerate(tracks):
                box = box_at(tr, t, self.max_gap_s)
                c = None if box is None else _crop(frame, box, self.cfg.crop_scale)
                if c is not None:
                    crops[i][k] = c
        n_windows = max(0, n - 4)
        aud = self._audio_feats(audio, sr, n_windows)
        return [self._track(tr, self._lip_feats(c, len(aud)), aud) for tr, c in zip(tracks, crops, strict=True)]

    def _track(self, tr: FaceTrack, lip: dict[int, np.ndarray], aud: np.ndarray) -> ActiveSpeakerTrack:
        c = self.cfg
        offs = np.arange(-c.max_offset_frames, c.max_offset_frames + 1)
        vs = sorted(lip)
        if not vs or len(aud) == 0:
            return ActiveSpeakerTrack(track_id=tr["track_id"], times=[], scores=[], sync_offset_s=0.0, sync_confidence=0.0)
        d = np.full((len(vs), len(offs)), np.nan)
        for r, v in enumerate(vs):
            idx = v + offs
            ok = (idx >= 0) & (idx < len(aud))
            d[r, ok] = np.linalg.norm(aud[idx[ok]] - lip[v], axis=1)
        mdist = np.nanmean(d, axis=0)
        best = int(np.nanargmin(mdist))
        med = float(np.nanmedian(mdist))
        fdist = d[:, best]
        fdist = np.where(np.isnan(fdist), med, fdist)
        fconf = medfilt(med - fdist, kernel_size=9 if len(fdist) >= 9 else 1)
        scores = 1.0 / (1.0 + np.exp(-fconf / c.score_scale))
        hop = max(1, int(round(c.score_hop_s * FPS)))
        times, out = [], []
        for r, v in enumerate(vs):
            if v % hop == 0:
                times.append(round((v + 2) / FPS, 3))  # centre of the 5-frame window
                out.append(round(float(scores[r]), 4))
        return ActiveSpeakerTrack(track_id=tr["track_id"], times=times, scores=out,
                                  sync_offset_s=round(float(offs[best]) / FPS, 3),
                                  sync_confidence=round(max(med - float(mdist[best]), 0.0), 4))
