"""Full ASR backend: openai-whisper, from a local checkpoint (``perception.whisper.model_path``).

The clip is transcribed once (whisper's own 30 s windowing, word timestamps by cross-attention
DTW); with turns, each word goes to the turn it overlaps most, so segments follow the
diarization exactly as the faster_whisper backend's do (``perception.asr.segments_from_words``).
"""

from __future__ import annotations

import numpy as np

from perception.asr import ASR, segments_from_words
from perception.config import PerceptionConfig
from perception.records import TranscriptSegment, Turn, Word
from perception.registry import require
from perception.weights import weights_file

DEFAULT_FILE = "whisper/small.pt"


class WhisperASR(ASR):
    """openai-whisper; the checkpoint holds ``dims`` and ``model_state_dict`` (whisper's own format)."""

    def __init__(self, cfg: PerceptionConfig):
        whisper = require("whisper", "whisper", "make full installs openai-whisper")
        import torch

        self.cfg = cfg.whisper
        path = weights_file(cfg, "whisper.model_path", self.cfg.model_path, DEFAULT_FILE)
        device = "cuda" if torch.cuda.is_available() and cfg.audio.num_gpus > 0 else "cpu"
        self._model = whisper.load_model(path, device=device)
        self._whisper = whisper
        self._fp16 = self.cfg.fp16 and device == "cuda"

    def _words(self, audio: np.ndarray) -> tuple[list[Word], list[dict]]:
        c = self.cfg
        res = self._whisper.transcribe(
            self._model, np.ascontiguousarray(audio, dtype=np.float32), language=c.language,
            temperature=tuple(c.temperatures), beam_size=c.beam_size if c.beam_size else None,
            word_timestamps=c.word_timestamps, condition_on_previous_text=c.condition_on_previous_text,
            fp16=self._fp16, verbose=None, **({'sample_len': c.sample_len} if c.sample_len else {}),
        )
        words: list[Word] = []
        for seg in res["segments"]:
            for w in seg.get("words") or []:
                text = w["word"].strip()
                if text:
                    words.append(Word(start=round(float(w["start"]), 3), end=round(float(w["end"]), 3), word=text))
        return words, res["segments"]

    def __call__(self, audio: np.ndarray, sr: int, turns: list[Turn] | None = None) -> list[TranscriptSegment]:
        if sr != 16000:
            raise ValueError(f"whisper needs 16 kHz audio, got {sr} (perception.sample_rate)")
        words, segments = self._words(audio)
        return segments_from_words(words, [(float(g["start"]), float(g["end"]), g["text"]) for g in segments],
                                   audio, sr, turns)
