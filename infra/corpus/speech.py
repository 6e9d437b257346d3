"""Speech synthesis with Debian's flite, and the per-speaker loudness envelope.

flite is deterministic for a given voice, settings and text, so caching by those
keys is safe; utterances are trimmed to their audible extent so that turn
boundaries written to RTTM/CSV are tight.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from infra.corpus.identities import Voice

SR = 16000
TARGET_RMS_DB = -23.0  # loudness of every utterance before the identity's gain offset


class FliteMissing(RuntimeError):
    pass


def flite_binary() -> str:
    exe = shutil.which("flite")
    if exe is None:
        raise FliteMissing("flite is not installed; `apt-get install flite` (Debian) or run `make corpus`")
    return exe


def _read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path), "rb") as w:
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768.0
    if sr != SR:  # kal is an 8 kHz voice
        x = resample_poly(x, SR, sr).astype(np.float32)
    return x


def trim(x: np.ndarray, threshold_db: float = -45.0, frame: int = 160) -> np.ndarray:
    """Cut leading/trailing silence: keep from the first to the last 10 ms frame above threshold."""
    n = len(x) // frame
    if n == 0:
        return x
    rms = np.sqrt(np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(20 * np.log10(rms) > threshold_db)
    if loud.size == 0:
        return x[:0]
    return x[loud[0] * frame:(loud[-1] + 1) * frame]


@functools.lru_cache(maxsize=4096)
def _synth_cached(voice: Voice, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory(prefix="flite_") as tmp:
        out = Path(tmp) / "u.wav"
        subprocess.run([flite_binary(), *voice.flite_args(), "-t", text, "-o", str(out)],
                       check=True, capture_output=True)
        x = trim(_read_wav(out))
    rms = float(np.sqrt(np.mean(x ** 2))) if x.size else 1.0
    x = x * (10 ** (TARGET_RMS_DB / 20) / max(rms, 1e-6))
    x.setflags(write=False)
    return x


def synth(voice: Voice, text: str, gain_db: float = 0.0) -> np.ndarray:
    """float32 mono speech at 16 kHz, trimmed, at TARGET_RMS_DB + gain_db."""
    x = _synth_cached(voice, text)
    return (x * 10 ** (gain_db / 20)).astype(np.float32)


def frame_envelope(track: np.ndarray, n_frames: int, fps: float, sr: int = SR) -> np.ndarray:
    """Smoothed RMS of one speaker's own track at each video frame time, scaled to [0, 1].

    The 40 ms window matches one frame at 25 fps; a 3-frame smoothing keeps the mouth
    from flickering while still following syllables.
    """
    hop = sr / fps
    win = int(round(hop))
    env = np.zeros(n_frames, dtype=np.float64)
    for i in range(n_frames):
        a = int(round(i * hop))
        seg = track[a:a + win]
        if seg.size:
            env[i] = np.sqrt(np.mean(seg.astype(np.float64) ** 2))
    env = np.convolve(env, np.array([0.25, 0.5, 0.25]), mode="same")
    active = env[env > 1e-4]
    ref = np.percentile(active, 90) if active.size else 1.0
    out = np.clip(env / max(ref, 1e-6), 0.0, 1.0)
    out[out < 0.12] = 0.0  # pauses inside a turn close the mouth
    return out
