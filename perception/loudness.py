"""Level normalisation for models that are not level-invariant (silero-vad, the d-vector encoder).

silero's speech probability falls with the input level: on the real-speech conversations its
missed speech went from 7% at -38..-20 dBFS to 21% at -55 dBFS and 52% at -65 dBFS, levels that
distant microphones give. Scaling each clip so that its loud frames sit at a fixed level removes
that dependence; the gain is capped so that a clip of faint noise is not blown up into "speech".
"""

from __future__ import annotations

import numpy as np


def frame_levels_db(audio: np.ndarray, sr: int, frame_s: float = 0.03) -> np.ndarray:
    """RMS level in dBFS of consecutive frames."""
    hop = max(1, int(sr * frame_s))
    n = len(audio) // hop
    if n == 0:
        return np.zeros(0)
    x = audio[: n * hop].reshape(n, hop).astype(np.float64)
    return 10 * np.log10(np.mean(x**2, axis=1) + 1e-12)


def normalize_level(audio: np.ndarray, sr: int, target_dbfs: float | None, percentile: float = 95.0,
                    max_gain_db: float = 40.0) -> np.ndarray:
    """``audio`` scaled so that its ``percentile`` frame level is ``target_dbfs`` (gain at most ``max_gain_db``).

    The loud frames of a clip with speech are speech, whatever the share of silence, so the
    percentile tracks the speech level rather than the average. Peaks are clipped to [-1, 1].
    None leaves the audio as it is.
    """
    if target_dbfs is None or audio.size == 0:
        return audio
    levels = frame_levels_db(audio, sr)
    if levels.size == 0:
        return audio
    gain_db = min(target_dbfs - float(np.percentile(levels, percentile)), max_gain_db)
    return np.clip(audio * np.float32(10 ** (gain_db / 20)), -1.0, 1.0).astype(np.float32)
