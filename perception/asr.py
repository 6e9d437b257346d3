"""Speech recognition: audio (+ speech segments or turns) -> transcript segments with word times.

Interface: ``ASR(cfg)(audio, sr, turns=None) -> list[TranscriptSegment]``. With ``turns`` (from
diarization or VAD), each turn is decoded on its own and its segment carries the turn's speaker;
without them the whole clip is one span. Times are clip-relative seconds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from perception.config import PerceptionConfig
from perception.records import TranscriptSegment, Turn, Word
from perception.registry import Registry

ASR_BACKENDS = Registry("asr")

# Recognizer tokens that are not words: silence, fillers and sentence marks.
_NON_WORDS = {"<s>", "</s>", "<sil>", "[NOISE]", "[SPEECH]", "[LAUGH]", "[COUGH]", "[BREATH]", "[UH]", "[UM]"}


class ASR(ABC):
    @abstractmethod
    def __call__(self, audio: np.ndarray, sr: int, turns: list[Turn] | None = None) -> list[TranscriptSegment]:
        """Transcript segments of ``audio``, one per turn when turns are given."""


def spans_of(audio: np.ndarray, sr: int, turns: list[Turn] | None) -> list[tuple[float, float, str]]:
    """(start, end, speaker) spans to decode: the turns, or the whole clip as one unnamed span."""
    if turns is None:
        return [(0.0, len(audio) / sr, "")]
    return [(float(t["start"]), float(t["end"]), str(t.get("speaker", ""))) for t in turns]


class PocketsphinxASR(ASR):
    """CMU pocketsphinx with its bundled en-us acoustic model, LM and dictionary (no download)."""

    def __init__(self, cfg: PerceptionConfig):
        from pocketsphinx import Config, Decoder

        c = cfg.pocketsphinx
        self.cfg = c
        conf = Config(
            samprate=cfg.sample_rate, beam=c.beam, wbeam=c.wbeam, pbeam=c.pbeam, maxhmmpf=c.maxhmmpf,
            fwdflat=c.fwdflat, bestpath=c.bestpath, loglevel="FATAL",
        )
        self._decoder = Decoder(conf)
        self._frate = int(conf["frate"])

    def _decode(self, pcm: np.ndarray, offset: float) -> tuple[str, list[Word]]:
        d = self._decoder
        d.start_utt()
        d.process_raw((np.clip(pcm, -1, 1) * 32767).astype("<i2").tobytes(), no_search=False, full_utt=True)
        d.end_utt()
        words: list[Word] = []
        for seg in d.seg():
            w = seg.word
            if w in _NON_WORDS or w.startswith("++") or w.startswith("["):
                continue
            w = w.split("(")[0]  # alternate pronunciations: "the(2)"
            words.append(Word(start=round(offset + seg.start_frame / self._frate, 3),
                              end=round(offset + (seg.end_frame + 1) / self._frate, 3), word=w))
        return " ".join(w["word"] for w in words), words

    def __call__(self, audio: np.ndarray, sr: int, turns: list[Turn] | None = None) -> list[TranscriptSegment]:
        out: list[TranscriptSegment] = []
        step = self.cfg.max_segment_s
        for start, end, speaker in spans_of(audio, sr, turns):
            words: list[Word] = []
            t = start
            while t < end - 0.05:  # long turns decode in pieces so memory and latency stay bounded
                e = min(end, t + step)
                _, w = self._decode(audio[int(t * sr) : int(e * sr)], t)
                words.extend(w)
                t = e
            out.append(TranscriptSegment(start=round(start, 3), end=round(end, 3),
                                         text=" ".join(w["word"] for w in words), speaker=speaker, words=words))
        return out


ASR_BACKENDS.register("pocketsphinx", PocketsphinxASR)
ASR_BACKENDS.register("whisper", "perception.backends.whisper_asr:WhisperASR")
