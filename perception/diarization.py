"""Speaker diarization: audio -> turns (start, end, speaker), overlap allowed, count estimated if not given.

Interface: ``Diarizer(cfg)(audio, sr, speech=None, num_speakers=None) -> list[Turn]`` where
``speech`` are VAD segments (the diarizer runs its own VAD when they are not given). Turns of
different speakers may overlap; ``text`` is filled by the ASR stage, empty here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from scipy.ndimage import median_filter

from perception.clustering import (
    closest_centroids,
    cluster_embeddings,
    cluster_with_pitch,
    merge_small,
    pitch_explained,
    refine,
)
from perception.config import PerceptionConfig
from perception.loudness import normalize_level
from perception.records import Segment, Turn
from perception.registry import Registry
from perception.vad import VAD_BACKENDS

DIARIZATION_BACKENDS = Registry("diarization")


class Diarizer(ABC):
    @abstractmethod
    def __call__(
        self, audio: np.ndarray, sr: int, speech: list[Segment] | None = None, num_speakers: int | None = None
    ) -> list[Turn]:
        """Speaker turns of ``audio`` in clip-relative seconds, sorted by start."""


def overlap_ratio(turns: list[Turn]) -> float:
    """Fraction of speech time where two or more turns overlap."""
    if not turns:
        return 0.0
    edges = sorted({t["start"] for t in turns} | {t["end"] for t in turns})
    speech = both = 0.0
    for a, b in zip(edges[:-1], edges[1:], strict=False):
        mid = (a + b) / 2
        n = sum(1 for t in turns if t["start"] <= mid < t["end"])
        if n >= 1:
            speech += b - a
        if n >= 2:
            both += b - a
    return both / speech if speech > 0 else 0.0


def runs(values: np.ndarray) -> list[tuple[int, int, Any]]:
    """Maximal runs of equal values as (start, end exclusive, value)."""
    v = np.asarray(values)
    if len(v) == 0:
        return []
    bounds = np.concatenate([[0], np.flatnonzero(v[1:] != v[:-1]) + 1, [len(v)]])
    return [(int(a), int(b), v[a]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def labels_to_turns(labels: np.ndarray, frame_s: float, names: list[str]) -> list[Turn]:
    """Runs of equal non-negative labels -> turns; ``labels[i]`` covers [i*frame_s, (i+1)*frame_s)."""
    return [Turn(start=round(a * frame_s, 3), end=round(b * frame_s, 3), speaker=names[v], text="")
            for a, b, v in runs(labels) if v >= 0]


def absorb_short_runs(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Relabel speech runs shorter than ``min_frames`` with the label of their longer neighbour."""
    lab = labels.copy()
    changed = True
    while changed:
        changed = False
        rs = runs(lab)
        for r, (a, b, v) in enumerate(rs):
            if v < 0 or b - a >= min_frames:
                continue
            left = rs[r - 1] if r > 0 and rs[r - 1][2] >= 0 else None
            right = rs[r + 1] if r + 1 < len(rs) and rs[r + 1][2] >= 0 else None
            pick = max((x for x in (left, right) if x is not None), key=lambda x: x[1] - x[0], default=None)
            if pick is not None and pick[2] != v:
                lab[a:b] = pick[2]
                changed = True
                break
    return lab


def yin_pitch(audio: np.ndarray, sr: int, fmin: float = 60.0, fmax: float = 400.0, threshold: float = 0.2,
              work_sr: int = 8000) -> tuple[np.ndarray, np.ndarray]:
    """(f0 in Hz, voiced) per 10 ms frame, by YIN (de Cheveigne & Kawahara 2002) on 40 ms frames.

    Runs at 8 kHz, enough for voice pitch, so it costs about 0.3% of real time here.
    """
    from scipy.signal import resample_poly

    x = resample_poly(audio.astype(np.float32), work_sr, sr) if sr != work_sr else audio.astype(np.float32)
    frame, hop = int(0.04 * work_sr), int(0.01 * work_sr)
    n = int(np.ceil(len(audio) / sr * 100))
    fr = np.lib.stride_tricks.sliding_window_view(np.pad(x, (0, frame + n * hop)), frame)[::hop][:n]
    fr = fr.astype(np.float64) - fr.mean(1, keepdims=True)
    tmax, tmin = min(int(np.ceil(work_sr / fmin)), frame // 2), int(work_sr / fmax)
    w = frame - tmax
    nfft = 1 << int(np.ceil(np.log2(frame + w)))
    r = np.fft.irfft(np.fft.rfft(fr, nfft) * np.conj(np.fft.rfft(fr[:, :w], nfft)), nfft)[:, : tmax + 1]
    e = np.cumsum(np.pad(fr**2, ((0, 0), (1, 0))), axis=1)
    diff = e[:, w : w + 1] + (e[:, w : w + tmax + 1] - e[:, : tmax + 1]) - 2 * r
    cmnd = (diff[:, 1:] / np.maximum(np.cumsum(diff[:, 1:], axis=1) / np.arange(1, tmax + 1), 1e-12))[:, tmin - 1 :]
    below = cmnd < threshold
    k = np.where(below.any(1), below.argmax(1), cmnd.argmin(1))
    rows = np.arange(n)
    for _ in range(8):  # from the first dip below the threshold down to its local minimum
        nxt = np.minimum(k + 1, cmnd.shape[1] - 1)
        k = np.where(cmnd[rows, nxt] < cmnd[rows, k], nxt, k)
    return work_sr / (k + tmin), cmnd[rows, k] < threshold


def window_pitch(f0: np.ndarray, voiced: np.ndarray, starts: np.ndarray, width: int, min_voiced: int = 20) -> np.ndarray:
    """Median pitch in semitones above 100 Hz of the voiced 10 ms frames of each window; NaN if too few."""
    semi = 12 * np.log2(np.maximum(f0, 1.0) / 100.0)
    out = np.full(len(starts), np.nan)
    for j, s in enumerate(starts):
        v = semi[s : s + width][voiced[s : s + width]]
        if len(v) >= min_voiced:
            out[j] = np.median(v)
    return out


def pause_mask(audio: np.ndarray, sr: int, speech10: np.ndarray, level: float, min_frames: int) -> np.ndarray:
    """10 ms frames inside pauses of at least ``min_frames``: energy below ``level`` of the way from the
    clip's floor (5th percentile) to its median speech energy, so it adapts to the noise floor."""
    hop = sr // 100
    n = min(len(speech10), len(audio) // hop)
    e = 10 * np.log10(np.mean(audio[: n * hop].reshape(n, hop).astype(np.float64) ** 2, axis=1) + 1e-10)
    if n == 0 or not speech10[:n].any():
        return np.zeros(len(speech10), dtype=bool)
    floor = np.percentile(e, 5)
    low = e < floor + level * (np.median(e[speech10[:n] > 0]) - floor)
    out = np.zeros(len(speech10), dtype=bool)
    for a, b, is_low in runs(low):
        if is_low and b - a >= min_frames:
            out[a:b] = True
    return out


def extend_at_changes(turns: list[Turn], pauses: np.ndarray, span_s: float, search_s: float) -> list[Turn]:
    """Let consecutive turns of different speakers overlap by ``span_s`` on each side of their shared
    boundary when no pause lies within ``search_s`` of it.

    Speakers seldom hand over in exact succession: there is a gap or an overlap. Frame labels put
    the boundary inside an overlap, so where no gap exists both speakers are likely talking there.
    """
    out = [dict(t) for t in turns]
    for a, b in zip(out[:-1], out[1:], strict=False):
        if a["speaker"] == b["speaker"] or abs(a["end"] - b["start"]) > 1e-6:
            continue
        c = b["start"]
        lo, hi = max(0, int((c - search_s) * 100)), int((c + search_s) * 100)
        if pauses[lo:hi].any():
            continue
        a["end"] = round(min(c + span_s, b["end"]), 3)
        b["start"] = round(max(c - span_s, a["start"]), 3)
    return out


class ResemblyzerDiarizer(Diarizer):
    """VAD -> resemblyzer d-vectors and median pitch on sliding 1.6 s windows -> clustering -> frames.

    Clustering is NME-SC on the d-vectors, or Ward on d-vectors plus pitch where pitch separates
    the voices found (see ``perception.clustering``); a Viterbi pass with a switch penalty then
    re-labels the windows. Each speech frame takes the majority label of the windows covering it,
    a median filter and a minimum turn length clean the labelling, and speaker changes with no
    pause around them are widened into short overlaps.
    """

    WINDOW_FRAMES = 160  # 1.6 s windows: resemblyzer's partial utterance (160 mel frames of 10 ms)

    def __init__(self, cfg: PerceptionConfig):
        from perception.speaker_embedding import make_speaker_embedder

        self.cfg = cfg.resemblyzer
        self._level = (cfg.normalize_dbfs, cfg.max_gain_db)
        self._vad = VAD_BACKENDS.create(cfg.vad, cfg)
        self._embedder = make_speaker_embedder(cfg.speaker_embedding)

    def _windows(self, audio: np.ndarray, speech10: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start of each kept window in 10 ms frames, unit embeddings); only windows that are mostly speech."""
        w = self.WINDOW_FRAMES
        hop = max(1, int(round(100 / self.cfg.embeddings_per_s)))
        n10 = len(speech10)
        cover = np.convolve(speech10, np.ones(w), mode="full")[w - 1 : n10 + w - 1] / w  # speech share of [s, s+w)
        starts = np.array([s for s in range(0, max(1, n10 - w + 1), hop) if cover[s] >= self.cfg.min_window_coverage])
        if len(starts) == 0 or n10 < w:
            return np.zeros(0, dtype=int), np.zeros((0, self._embedder.dim), dtype=np.float32)
        return starts, self._embedder.embed_windows(audio, 16000, starts / 100.0, w / 100.0)

    def __call__(
        self, audio: np.ndarray, sr: int, speech: list[Segment] | None = None, num_speakers: int | None = None
    ) -> list[Turn]:
        c = self.cfg
        if speech is None:
            speech = self._vad(audio, sr)
        audio = normalize_level(audio, sr, self._level[0], max_gain_db=self._level[1])
        n10 = int(np.ceil(len(audio) / sr * 100))
        mask = np.zeros(n10, dtype=float)
        for seg in speech:
            mask[int(seg["start"] * 100) : int(np.ceil(seg["end"] * 100))] = 1.0
        starts, emb = self._windows(audio, mask)
        if len(starts) == 0:
            # Too little speech to embed: one speaker for whatever speech there is.
            return [Turn(start=s["start"], end=s["end"], speaker="SPEAKER_00", text="") for s in speech]
        f0, voiced = yin_pitch(audio, sr)
        pitch = window_pitch(f0, voiced[:n10] & (mask[: len(voiced)] > 0), starts, self.WINDOW_FRAMES)
        labels = cluster_embeddings(emb, num_speakers, c.max_speakers, c.single_speaker_threshold, c.min_silhouette)
        use_pitch = (c.pitch_weight > 0 and len(np.unique(labels)) > 1 and pitch_explained(labels, pitch) >= c.pitch_gate
                     and closest_centroids(labels, emb) >= c.pitch_min_centroid_cos)
        if use_pitch:
            labels = cluster_with_pitch(emb, pitch, num_speakers, c.pitch_weight, c.ward_threshold)
        hop = max(1, int(round(100 / c.embeddings_per_s)))
        labels = merge_small(labels, emb, int(np.ceil(c.min_cluster_s * 100 / hop)))
        labels = refine(labels, emb, pitch if use_pitch else None, starts, hop, c.switch_penalty,
                        c.refine_pitch_weight, c.pitch_cap_st)
        turns = self._frame_turns(audio, sr, speech, starts, labels)
        if c.overlap_s > 0:
            pauses = pause_mask(audio, sr, mask, c.pause_level, max(1, int(round(c.min_pause_s * 100))))
            turns = extend_at_changes(turns, pauses, c.overlap_s, c.pause_search_s)
        return turns

    def _frame_turns(self, audio, sr, speech, starts, labels) -> list[Turn]:
        c = self.cfg
        fs = c.frame_s
        n = int(np.ceil(len(audio) / sr / fs))
        k = int(labels.max()) + 1
        votes = np.zeros((n, k))
        for s, lab in zip(starts, labels, strict=True):
            votes[int(s / 100 / fs) : int((s + self.WINDOW_FRAMES) / 100 / fs), lab] += 1
        speech_f = np.zeros(n, dtype=bool)
        for seg in speech:
            speech_f[int(seg["start"] / fs) : int(np.ceil(seg["end"] / fs))] = True
        covered = votes.sum(1) > 0
        lab = np.where(covered, votes.argmax(1), -1)
        # Speech frames no window covers (short segments) take the nearest covered frame's label.
        idx = np.where(covered)[0]
        for i in np.where(speech_f & ~covered)[0]:
            lab[i] = lab[idx[np.argmin(np.abs(idx - i))]]
        width = max(1, int(round(c.smoothing_s / fs)) | 1)
        smoothed = median_filter(np.where(lab < 0, k, lab), size=width, mode="nearest")
        lab = np.where(speech_f, np.where(smoothed == k, lab, smoothed), -1)
        lab = absorb_short_runs(lab, max(1, int(round(c.min_turn_s / fs))))
        return labels_to_turns(lab, fs, [f"SPEAKER_{i:02d}" for i in range(k)])


DIARIZATION_BACKENDS.register("resemblyzer", ResemblyzerDiarizer)
DIARIZATION_BACKENDS.register("pyannote", "perception.backends.pyannote_diarization:PyannoteDiarizer")
