"""Default ASR backend: Whisper on CTranslate2 (faster-whisper), the embedded Whisper base unless
``perception.faster_whisper.model_dir`` names another converted model.

Whisper's encoder always reads a 30 s window, so decoding each turn on its own would pay a full
window per turn. The clip is transcribed once in Whisper's own 30 s windows and, with turns, each
word goes to the turn it overlaps most, as in the openai-whisper backend. With
``speech_only`` the speech spans (the turns, or VAD segments) are padded, merged where they
touch and joined end to end before decoding, and word times are mapped back to the clip with
faster-whisper's own chunk helpers (``collect_chunks`` and ``restore_speech_timestamps``, what its
``vad_filter`` uses): less audio on clips with long silences, at a small WER cost on dense
dialogue (see the config doc).
"""

from __future__ import annotations

import numpy as np

from perception.asr import ASR, segments_from_words, spans_of
from perception.config import PerceptionConfig
from perception.embedded_whisper import FILES, whisper_base_dir
from perception.records import TranscriptSegment, Turn, Word
from perception.registry import require
from perception.weights import weights_folder


def speech_chunks(spans: list[tuple[float, float, str]], sr: int, n_samples: int, pad_s: float) -> list[dict]:
    """Sample ranges ``{start, end}`` covering ``spans`` padded by ``pad_s``, sorted and merged where they meet."""
    ranges = sorted((max(0, int((s - pad_s) * sr)), min(n_samples, int(np.ceil((e + pad_s) * sr))))
                    for s, e, _ in spans if e > s)
    out: list[dict] = []
    for lo, hi in ranges:
        if hi <= lo:
            continue
        if out and lo <= out[-1]["end"]:
            out[-1]["end"] = max(out[-1]["end"], hi)
        else:
            out.append({"start": lo, "end": hi})
    return out


class FasterWhisperASR(ASR):
    """faster-whisper ``WhisperModel`` on a CTranslate2 folder; CPU threads from ``perception.torch_threads``."""

    def __init__(self, cfg: PerceptionConfig):
        fw = require("faster_whisper", "faster_whisper", "faster-whisper==1.2.1 is a core dependency: make venv")
        import ctranslate2

        self.cfg = c = cfg.faster_whisper
        if c.model_dir is None:
            folder = whisper_base_dir(cfg.weights_cache)
        else:
            folder = weights_folder(cfg, "faster_whisper.model_dir", c.model_dir, "faster-whisper", FILES)
        gpu = cfg.audio.num_gpus > 0 and ctranslate2.get_cuda_device_count() > 0
        self._model = fw.WhisperModel(folder, device="cuda" if gpu else "cpu", compute_type=c.compute_type,
                                      cpu_threads=int(cfg.torch_threads), num_workers=1, local_files_only=True)
        from faster_whisper.transcribe import restore_speech_timestamps
        from faster_whisper.vad import collect_chunks

        self._collect, self._restore = collect_chunks, restore_speech_timestamps

    def _transcribe(self, audio: np.ndarray, chunks: list[dict] | None, sr: int) -> tuple[list[Word], list]:
        c = self.cfg
        if chunks is not None:
            audio = np.concatenate(self._collect(audio, chunks, sampling_rate=sr)[0])
        segments, _ = self._model.transcribe(
            np.ascontiguousarray(audio, dtype=np.float32), language=c.language, beam_size=c.beam_size,
            temperature=list(c.temperatures), word_timestamps=c.word_timestamps,
            condition_on_previous_text=c.condition_on_previous_text, vad_filter=False,
        )
        if chunks is not None:
            segments = self._restore(segments, chunks, sr)
        segments = list(segments)  # the generator decodes as it is consumed
        words = [Word(start=round(float(w.start), 3), end=round(float(w.end), 3), word=w.word.strip())
                 for seg in segments for w in (seg.words or []) if w.word.strip()]
        return words, [(float(s.start), float(s.end), s.text) for s in segments]

    def __call__(self, audio: np.ndarray, sr: int, turns: list[Turn] | None = None) -> list[TranscriptSegment]:
        if sr != 16000:
            raise ValueError(f"faster_whisper needs 16 kHz audio, got {sr} (perception.sample_rate)")
        if turns is not None and not turns:
            return []  # no speech found: nothing to decode
        chunks = None
        if turns is not None and self.cfg.speech_only:
            chunks = speech_chunks(spans_of(audio, sr, turns), sr, len(audio), self.cfg.span_pad_s)
            if not chunks:  # only empty turns
                return segments_from_words([], [], audio, sr, turns)
        words, segments = self._transcribe(audio, chunks, sr)
        return segments_from_words(words, segments, audio, sr, turns)
