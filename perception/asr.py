"""Speech recognition: audio (+ speech segments or turns) -> transcript segments with word times.

Interface: ``ASR(cfg)(audio, sr, turns=None) -> list[TranscriptSegment]``. With ``turns`` (from
diarization or VAD) there is one segment per turn, carrying the turn's speaker; pocketsphinx
decodes each turn on its own (audio where turns overlap once, see ``decode_spans``), the Whisper
backends decode longer stretches and give each word to the turn it overlaps most
(``assign_words``). Without turns the whole clip is one span. Times are clip-relative seconds.

Backends: ``faster_whisper`` (Whisper base, embedded through two pinned pip packages; the
``accurate`` profile's choice and so the default), ``pocketsphinx`` (the ``fast`` profile's) and
``whisper`` (openai-whisper from a local checkpoint). See ``perception.config.PROFILES``.
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


def decode_spans(spans: list[tuple[float, float, str]]) -> list[tuple[float, float]]:
    """The part of each span to decode so that overlapped audio is decoded once.

    Where two turns overlap, each keeps its side of the overlap's midpoint; a turn lying wholly
    inside an earlier one (a backchannel) gets an empty span, its words being in the longer turn.
    """
    out = []
    for i, (s, e, _) in enumerate(spans):
        lo, hi = s, e
        for j, (s2, e2, _) in enumerate(spans):
            if j == i or e2 <= s or s2 >= e:
                continue
            earlier = (s2, j) < (s, i)
            if earlier and e2 >= e:
                lo = hi = s  # nested in an earlier turn
                break
            if earlier:
                lo = max(lo, (s + e2) / 2)
            elif e2 > e:
                hi = min(hi, (s2 + e) / 2)
        out.append((lo, max(lo, hi)))
    return out


def assign_words(words: list[Word], spans: list[tuple[float, float, str]]) -> list[list[Word]]:
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


def segments_from_words(words: list[Word], segments: list[tuple[float, float, str]], audio: np.ndarray, sr: int,
                        turns: list[Turn] | None) -> list[TranscriptSegment]:
    """Transcript segments of a whole-clip decode: the decoder's own ``(start, end, text)`` segments
    without turns, else one per turn holding the words ``assign_words`` gives it."""
    if turns is None:
        out = []
        for s, e, text in segments:
            ws = [w for w in words if s - 0.01 <= w["start"] < e + 0.01]
            out.append(TranscriptSegment(start=round(s, 3), end=round(e, 3), text=text.strip(), speaker="", words=ws))
        return out
    spans = spans_of(audio, sr, turns)
    return [TranscriptSegment(start=round(s, 3), end=round(e, 3), text=" ".join(w["word"] for w in ws),
                              speaker=spk, words=ws)
            for (s, e, spk), ws in zip(spans, assign_words(words, spans), strict=True)]


class PocketsphinxASR(ASR):
    """CMU pocketsphinx with its bundled en-us acoustic model, LM and dictionary (no download)."""

    def __init__(self, cfg: PerceptionConfig):
        from pocketsphinx import Config, Decoder

        c = cfg.pocketsphinx
        self.cfg = c
        conf = Config(
            samprate=cfg.sample_rate, beam=c.beam, wbeam=c.wbeam, pbeam=c.pbeam, maxhmmpf=c.maxhmmpf,
            fwdflat=c.fwdflat, bestpath=c.bestpath, ds=c.ds, topn=c.topn, maxwpf=c.maxwpf, pl_window=c.pl_window,
            loglevel="FATAL",
        )
        self._decoder = Decoder(conf)
        self._frate = int(conf["frate"])
        self._used = False

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
        # The decoder carries state from one utterance to the next that start_utt does not reset:
        # the live cepstral mean and the acoustic model's per-codebook top-N Gaussian lists (reused
        # as the next frame's shortlist). So the same clip decoded after other audio could read
        # differently ("unrefined" vs "unrequited"); set_cmn alone does not fix it. reinit()
        # rebuilds the decoder from its config (about 0.5 s here, on a loaded 2-core machine), so
        # every call starts from the state of a fresh process.
        if self._used:
            self._decoder.reinit()
        self._used = True
        out: list[TranscriptSegment] = []
        step = self.cfg.max_segment_s
        spans = spans_of(audio, sr, turns)
        for (start, end, speaker), (lo, hi) in zip(spans, decode_spans(spans), strict=True):
            words: list[Word] = []
            t = lo
            while t < hi - 0.05:  # long turns decode in pieces so memory and latency stay bounded
                e = min(hi, t + step)
                _, w = self._decode(audio[int(t * sr) : int(e * sr)], t)
                words.extend(w)
                t = e
            out.append(TranscriptSegment(start=round(start, 3), end=round(end, 3),
                                         text=" ".join(w["word"] for w in words), speaker=speaker, words=words))
        return out


ASR_BACKENDS.register("pocketsphinx", PocketsphinxASR)
ASR_BACKENDS.register("whisper", "perception.backends.whisper_asr:WhisperASR")
ASR_BACKENDS.register("faster_whisper", "perception.backends.faster_whisper_asr:FasterWhisperASR")
