"""Voice activity detection: audio -> speech segments (clip-relative seconds).

Interface: ``VAD(cfg)(audio, sr) -> list[Segment]``. Backends register in ``VAD_BACKENDS``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from perception.config import PerceptionConfig
from perception.loudness import normalize_level
from perception.records import Segment
from perception.registry import Registry

VAD_BACKENDS = Registry("vad")


class VAD(ABC):
    """Speech segments of a mono float32 signal."""

    @abstractmethod
    def __call__(self, audio: np.ndarray, sr: int) -> list[Segment]:
        """Speech segments of ``audio`` (sample rate ``sr``), clip-relative seconds, sorted."""


class SileroVAD(VAD):
    """silero-vad on onnxruntime; the ONNX model ships inside the pip package (no download)."""

    def __init__(self, cfg: PerceptionConfig):
        from silero_vad import get_speech_timestamps, load_silero_vad

        self.cfg = cfg.silero
        self._level = (cfg.normalize_dbfs, cfg.max_gain_db)
        self._model = load_silero_vad(onnx=True)
        self._get = get_speech_timestamps

    def __call__(self, audio: np.ndarray, sr: int) -> list[Segment]:
        import torch

        if audio.size < sr // 10:
            return []
        self._model.reset_states()
        c = self.cfg
        audio = normalize_level(audio, sr, self._level[0], max_gain_db=self._level[1])
        stamps = self._get(
            torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32)),
            self._model,
            sampling_rate=sr,
            threshold=c.threshold,
            min_speech_duration_ms=int(c.min_speech_s * 1000),
            min_silence_duration_ms=int(c.min_silence_s * 1000),
            speech_pad_ms=int(c.speech_pad_s * 1000),
        )
        return [Segment(start=s["start"] / sr, end=s["end"] / sr) for s in stamps]


VAD_BACKENDS.register("silero", SileroVAD)
VAD_BACKENDS.register("pyannote", "perception.backends.pyannote_diarization:PyannoteVAD")
