"""Speaker diarization: audio -> turns (start, end, speaker), overlap allowed, count estimated if not given.

Interface: ``Diarizer(cfg)(audio, sr, speech=None, num_speakers=None) -> list[Turn]`` where
``speech`` are VAD segments (the diarizer runs its own VAD when they are not given). Turns of
different speakers may overlap; ``text`` is filled by the ASR stage, empty here.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
from scipy.ndimage import median_filter

from perception.clustering import cluster_embeddings
from perception.config import PerceptionConfig
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


def labels_to_turns(labels: np.ndarray, frame_s: float, names: list[str]) -> list[Turn]:
    """Runs of equal non-negative labels -> turns; ``labels[i]`` covers [i*frame_s, (i+1)*frame_s)."""
    turns: list[Turn] = []
    start = None
    for i in range(len(labels) + 1):
        cur = labels[i] if i < len(labels) else -1
        prev = labels[i - 1] if i > 0 else -1
        if cur != prev:
            if prev >= 0 and start is not None:
                turns.append(Turn(start=round(start * frame_s, 3), end=round(i * frame_s, 3), speaker=names[prev], text=""))
            start = i if cur >= 0 else None
    return turns


def absorb_short_runs(labels: np.ndarray, min_frames: int) -> np.ndarray:
    """Relabel speech runs shorter than ``min_frames`` with the label of their longer neighbour."""
    lab = labels.copy()
    changed = True
    while changed:
        changed = False
        runs = []
        i = 0
        while i < len(lab):
            j = i
            while j < len(lab) and lab[j] == lab[i]:
                j += 1
            runs.append((i, j, lab[i]))
            i = j
        for r, (a, b, v) in enumerate(runs):
            if v < 0 or b - a >= min_frames:
                continue
            left = runs[r - 1] if r > 0 and runs[r - 1][2] >= 0 else None
            right = runs[r + 1] if r + 1 < len(runs) and runs[r + 1][2] >= 0 else None
            pick = max((x for x in (left, right) if x is not None), key=lambda x: x[1] - x[0], default=None)
            if pick is not None and pick[2] != v:
                lab[a:b] = pick[2]
                changed = True
                break
    return lab


class ResemblyzerDiarizer(Diarizer):
    """VAD -> resemblyzer d-vectors on sliding 1.6 s windows -> spectral clustering -> frame labels.

    Each speech frame takes the majority cluster of the windows covering it, then a median
    filter and a minimum turn length clean the labelling. Overlap (optional) is marked where a
    frame's windows are about as close to a second speaker's centroid as to the first.
    """

    WINDOW_FRAMES = 160  # resemblyzer's partial utterance: 160 mel frames of 10 ms

    def __init__(self, cfg: PerceptionConfig):
        import torch
        from resemblyzer import VoiceEncoder

        self.cfg = cfg.resemblyzer
        self._vad = VAD_BACKENDS.create(cfg.vad, cfg)
        self._encoder = VoiceEncoder(device="cpu", verbose=False)
        self._torch = torch

    def _windows(self, audio: np.ndarray, sr: int, speech_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start frame of each kept window in 10 ms units, embeddings)."""
        from resemblyzer.audio import wav_to_mel_spectrogram

        mel = wav_to_mel_spectrogram(audio)  # (frames, 40) at 10 ms
        hop = max(1, int(round(100 / self.cfg.embeddings_per_s)))
        w = self.WINDOW_FRAMES
        starts = []
        for s in range(0, max(1, len(mel) - w + 1), hop):
            cov = speech_mask[s : s + w].mean() if s < len(speech_mask) else 0.0
            if cov >= self.cfg.min_window_coverage:
                starts.append(s)
        if not starts or len(mel) < w:
            return np.zeros(0, dtype=int), np.zeros((0, 256), dtype=np.float32)
        batch = np.stack([mel[s : s + w] for s in starts])
        with self._torch.inference_mode():
            emb = self._encoder(self._torch.from_numpy(batch)).numpy()
        return np.asarray(starts), emb

    def __call__(
        self, audio: np.ndarray, sr: int, speech: list[Segment] | None = None, num_speakers: int | None = None
    ) -> list[Turn]:
        c = self.cfg
        if speech is None:
            speech = self._vad(audio, sr)
        n10 = int(np.ceil(len(audio) / sr * 100))
        mask = np.zeros(n10, dtype=float)
        for seg in speech:
            mask[int(seg["start"] * 100) : int(np.ceil(seg["end"] * 100))] = 1.0
        starts, emb = self._windows(audio, sr, mask)
        if len(starts) == 0:
            # Too little speech to embed: one speaker for whatever speech there is.
            return [Turn(start=s["start"], end=s["end"], speaker="SPEAKER_00", text="") for s in speech]
        labels = cluster_embeddings(emb, num_speakers, c.max_speakers, c.single_speaker_threshold, c.min_silhouette)
        labels = self._merge_small(labels, emb)
        labels = self._merge_similar(labels, emb)
        return self._frame_turns(audio, sr, speech, starts, emb, labels)

    def _merge_small(self, labels: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """Fold clusters with less than min_cluster_s of windows into the nearest larger cluster."""
        hop_s = 1.0 / self.cfg.embeddings_per_s
        x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        while True:
            ids, counts = np.unique(labels, return_counts=True)
            small = [i for i, n in zip(ids, counts, strict=True) if n * hop_s < self.cfg.min_cluster_s]
            if not small or len(ids) == 1:
                break
            s = min(small, key=lambda i: counts[list(ids).index(i)])
            cents = {i: x[labels == i].mean(0) for i in ids if i != s}
            target = max(cents, key=lambda i: float(cents[i] @ x[labels == s].mean(0)))
            labels = np.where(labels == s, target, labels)
        _, labels = np.unique(labels, return_inverse=True)
        return labels

    def _merge_similar(self, labels: np.ndarray, emb: np.ndarray) -> np.ndarray:
        """Merge the two clusters with the most similar centroids while their cosine exceeds merge_threshold."""
        x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        while len(np.unique(labels)) > 1:
            ids = np.unique(labels)
            cents = np.stack([x[labels == i].mean(0) for i in ids])
            cents /= np.linalg.norm(cents, axis=1, keepdims=True)
            sim = cents @ cents.T
            np.fill_diagonal(sim, -1.0)
            a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
            if sim[a, b] < self.cfg.merge_threshold:
                break
            labels = np.where(labels == ids[b], ids[a], labels)
        _, labels = np.unique(labels, return_inverse=True)
        return labels

    def _frame_turns(self, audio, sr, speech, starts, emb, labels) -> list[Turn]:
        c = self.cfg
        fs = c.frame_s
        n = int(np.ceil(len(audio) / sr / fs))
        k = int(labels.max()) + 1
        votes = np.zeros((n, k))
        x = emb / np.linalg.norm(emb, axis=1, keepdims=True)
        cents = np.stack([x[labels == i].mean(0) for i in range(k)])
        cents /= np.linalg.norm(cents, axis=1, keepdims=True)
        sims = x @ cents.T  # (windows, k)
        simsum = np.zeros((n, k))
        for s, lab, sim in zip(starts, labels, sims, strict=True):
            a, b = int(s / 100 / fs), int((s + self.WINDOW_FRAMES) / 100 / fs)
            votes[a:b, lab] += 1
            simsum[a:b] += sim
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
        names = [f"SPEAKER_{i:02d}" for i in range(k)]
        turns = labels_to_turns(lab, fs, names)
        if c.overlap_margin > 0 and k > 1:
            turns += self._overlap_turns(lab, simsum, votes, speech_f, names)
        return sorted(turns, key=lambda t: (t["start"], t["speaker"]))

    def _overlap_turns(self, lab, simsum, votes, speech_f, names) -> list[Turn]:
        """Second-speaker turns where the covering windows are nearly as close to another centroid."""
        cov = np.maximum(votes.sum(1, keepdims=True), 1)
        mean_sim = simsum / cov
        order = np.argsort(-mean_sim, axis=1)
        second = order[:, 1]
        first_sim = np.take_along_axis(mean_sim, lab.clip(0)[:, None], 1)[:, 0]
        close = (mean_sim[np.arange(len(lab)), second] >= first_sim - self.cfg.overlap_margin) & speech_f & (second != lab)
        ov = np.where(close, second, -1)
        ov = absorb_short_runs(ov, max(1, int(round(self.cfg.min_turn_s / self.cfg.frame_s))))
        return labels_to_turns(ov, self.cfg.frame_s, names)


DIARIZATION_BACKENDS.register("resemblyzer", ResemblyzerDiarizer)
DIARIZATION_BACKENDS.register("pyannote", "perception.backends.pyannote_diarization:PyannoteDiarizer")
