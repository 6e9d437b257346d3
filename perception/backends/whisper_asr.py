"""Full ASR backend: openai-whisper, from a local checkpoint (``perception.whisper.model_path``).

The clip is transcribed once (whisper's own 30 s windowing, word timestamps by cross-attention
DTW); with turns, each word goes to the turn it overlaps most, so segments follow the
diarization exactly as the embedded backend's do.
"""

from __future__ import annotations

import numpy as np

from perception.asr import ASR, spans_of
from perception.config import PerceptionConfig
from perception.records import TranscriptSegment, Turn, Word
from perception.registry import require
from perception.weights import weights_file

DEFAULT_FILE = "whisper/small.pt"


def _assign(words: list[Word], spans: list[tuple[float, float, str]]) -> list[list[Word]]:
    """Each word to the span it overlaps most (by its midpoint when it overlaps none)."""
    out: list[list[Word]] = [[] for _ in spans]
    if not spans:
        return out
    for w in words:
        ov = [min(e, w["end"]) - max(s, w["start"]) for s, e, _ in spans]
        best = int(np.argmax(ov))
        if ov[best] <= 0:
            mid = (w["start"] + w["end"]) / 2
            best = int(np.argmin([min(abs(mid - s), abs(mid - e)) for s, e, _ in spans]))
        out[best].append(w)
    return out


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
        if turns is None:
            out = []
            for seg in segments:
                s, e = float(seg["start"]), float(seg["end"])
                ws = [w for w in words if s - 0.01 <= w["start"] < e + 0.01]
                out.append(TranscriptSegment(start=round(s, 3), end=round(e, 3), text=seg["text"].strip(),
                                             speaker="", words=ws))
            return out
        spans = spans_of(audio, sr, turns)
        return [TranscriptSegment(start=round(s, 3), end=round(e, 3), text=" ".join(w["word"] for w in ws),
                                  speaker=spk, words=ws)
                for (s, e, spk), ws in zip(spans, _assign(words, spans), strict=True)]
