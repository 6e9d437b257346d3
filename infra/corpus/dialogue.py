"""Turn-taking scripts and their audio: who says what, when, and how much they overlap.

A scene is built turn by turn: the next speaker is drawn (favouring whoever has
spoken least), the line is synthesized, and it starts either after a short gap
or before the previous turn ends (overlap).  Short backchannels ("Yeah.") from a
third party land inside long turns.  The script is redrawn from the same seeded
generator until the overlap ratio falls inside the required band.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from infra.corpus import lines
from infra.corpus.identities import Identity
from infra.corpus.speech import SR, synth

OVERLAP_BAND = (0.07, 0.27)  # target; the requirement is 0.05-0.3, this leaves margin
NOISE_DB = -62.0  # room-noise floor so silence is not digital zero


@dataclass
class Turn:
    start: float
    end: float
    speaker: str  # identity id
    text: str
    backchannel: bool = False

    def to_json(self) -> dict:
        return {"start": round(self.start, 4), "end": round(self.end, 4), "speaker": self.speaker,
                "text": self.text, "backchannel": self.backchannel}


@dataclass
class SceneAudio:
    duration: float
    turns: list[Turn]
    tracks: dict[str, np.ndarray]  # identity id -> own float32 track, scene-length
    mix: np.ndarray = field(repr=False)

    @property
    def overlap_ratio(self) -> float:
        return overlap_ratio(self.turns)


def overlap_ratio(turns: list[Turn]) -> float:
    """Overlapped speech time / total speech time, from the turn intervals."""
    events = sorted([(t.start, 1) for t in turns] + [(t.end, -1) for t in turns])
    active, last, speech, overlapped = 0, 0.0, 0.0, 0.0
    for time, delta in events:
        if active >= 1:
            speech += time - last
        if active >= 2:
            overlapped += time - last
        active += delta
        last = time
    return overlapped / speech if speech > 0 else 0.0


class _LinePicker:
    """Draw lines without replacement inside one scene, refilling when a bank runs dry."""

    def __init__(self, rng: np.random.Generator, bank: list[str]):
        self.rng, self.bank, self.pool = rng, bank, []

    def take(self) -> str:
        if not self.pool:
            self.pool = list(self.rng.permutation(self.bank))
        return str(self.pool.pop())


def _script(rng, speakers: list[Identity], genre: str, target: float, max_dur: float,
            overlap: bool, principal: str | None):
    """One draw of a turn schedule: list of (start, identity, text, audio, backchannel)."""
    p_overlap = rng.uniform(0.25, 0.45) if overlap else 0.0
    p_backchannel = rng.uniform(0.3, 0.6) if overlap else 0.0
    if genre == "interview":
        asks, answers = _LinePicker(rng, lines.QUESTIONS), _LinePicker(rng, lines.ANSWERS)
    else:
        bank = _LinePicker(rng, lines.GENRES[genre])
    talk = {s.id: 0.0 for s in speakers}
    by_id = {s.id: s for s in speakers}
    placed = []
    t = float(rng.uniform(0.4, 0.9))
    last_end, prev, last_main = 0.0, None, (0.0, 0.0)
    while True:
        if genre == "interview":
            # Interviewers (everyone but the principal) ask; the principal answers at length.
            others = [s.id for s in speakers if s.id != principal]
            if prev is None or prev == principal:
                spk = min(others, key=lambda k: talk[k])  # the interviewer who has asked least
                text = asks.take()
            else:
                spk = principal
                text = answers.take()
                if rng.random() < 0.5:
                    text += " " + answers.take()
        else:
            candidates = [s.id for s in speakers if s.id != prev]
            w = np.array([1.0 / (1.0 + talk[c]) ** 2 for c in candidates])
            spk = candidates[int(rng.choice(len(candidates), p=w / w.sum()))]
            text = bank.take()
            if rng.random() < 0.3:
                text += " " + bank.take()
        audio = synth(by_id[spk].voice, text, by_id[spk].gain_db)
        dur = len(audio) / SR
        if placed and rng.random() < p_overlap:
            prev_start, prev_dur = last_main
            ov = rng.uniform(0.3, max(0.35, min(1.4, 0.45 * prev_dur, 0.45 * dur)))
            start = max(last_end - ov, prev_start + 0.3 * prev_dur)
        else:
            start = last_end + rng.uniform(0.15, 0.75) if placed else t
        start = round(start * SR) / SR
        if start + dur > max_dur:
            break
        placed.append((start, spk, text, audio, False))
        last_main = (start, dur)
        # A listener's backchannel inside a long turn.
        if dur > 2.5 and len(speakers) > 1 and rng.random() < p_backchannel:
            listener = [s.id for s in speakers if s.id != spk][int(rng.integers(len(speakers) - 1))]
            btext = lines.BACKCHANNELS[int(rng.integers(len(lines.BACKCHANNELS)))]
            baudio = synth(by_id[listener].voice, btext, by_id[listener].gain_db - 2.0)
            bstart = round((start + rng.uniform(0.35, 0.75) * dur - 0.3) * SR) / SR
            if bstart + baudio.size / SR < start + dur:
                placed.append((bstart, listener, btext, baudio, True))
                talk[listener] += baudio.size / SR
        talk[spk] += dur
        last_end = max(last_end, start + dur)
        prev = spk
        if last_end >= target:
            break
    return placed


def build_scene(rng: np.random.Generator, speakers: list[Identity], genre: str, target: float,
                max_dur: float = 39.0, overlap: bool = True, principal: str | None = None,
                attempts: int = 60) -> SceneAudio:
    """Script and mix one scene; ``target`` is the wanted length, ``max_dur`` a hard cap."""
    best, best_err = None, np.inf
    for _ in range(attempts):
        placed = _script(rng, speakers, genre, target, max_dur - 0.8, overlap, principal)
        turns = [Turn(s, s + a.size / SR, spk, text, bc) for s, spk, text, a, bc in placed]
        counts = {s.id: sum(1 for t in turns if t.speaker == s.id and not t.backchannel) for s in speakers}
        if min(counts.values()) == 0:
            continue
        if not overlap:
            best = (placed, turns)
            break
        ratio = overlap_ratio(turns)
        err = 0.0 if OVERLAP_BAND[0] <= ratio <= OVERLAP_BAND[1] else min(
            abs(ratio - OVERLAP_BAND[0]), abs(ratio - OVERLAP_BAND[1]))
        if err < best_err:
            best, best_err = (placed, turns), err
        if err == 0.0:
            break
    if best is None:
        raise RuntimeError(f"could not script a {genre} scene in which every speaker talks")
    placed, turns = best
    end = max(t.end for t in turns) + float(rng.uniform(0.4, 0.8))
    n = int(round(end * SR))
    tracks = {s.id: np.zeros(n, dtype=np.float32) for s in speakers}
    for start, spk, _text, audio, _bc in placed:
        a = int(round(start * SR))
        tracks[spk][a:a + audio.size] += audio[: n - a]
    mix = np.sum(list(tracks.values()), axis=0)
    mix += rng.standard_normal(n).astype(np.float32) * np.float32(10 ** (NOISE_DB / 20))
    mix = np.clip(mix, -0.99, 0.99).astype(np.float32)
    turns.sort(key=lambda t: (t.start, t.speaker))
    return SceneAudio(n / SR, turns, tracks, mix)
