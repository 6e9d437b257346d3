"""Perception evidence in one shape, whether it came from tool calls (agentic) or cues (guided).

The tool-only baseline reads only this: speaker turns, transcript segments, face tracks with
boxes, and per-track active-speaker scores — exactly what ``perception.tools`` returns and what
curation's guided cues are built from (``pred_*``). Nothing here looks at gold labels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Evidence:
    turns: list[dict] = field(default_factory=list)  # {start, end, speaker}
    transcript: list[dict] = field(default_factory=list)  # {start, end, text, speaker}
    tracks: list[dict] = field(default_factory=list)  # {track_id, boxes[{t, x1, y1, x2, y2}]}
    asd: list[dict] = field(default_factory=list)  # {track_id, times, scores}
    positions: dict[str, float] = field(default_factory=dict)  # track_id -> horizontal centre (guided cues)
    mean_scores: dict[str, float] = field(default_factory=dict)  # track_id -> mean ASD score (guided cues)
    clip: int = 0

    def empty(self) -> bool:
        return not (self.turns or self.transcript or self.tracks or self.asd)

    # -- derived views ----------------------------------------------------------------------------
    def speakers(self) -> list[str]:
        seen: dict[str, None] = {}
        for t in sorted(self.turns, key=lambda t: t["start"]):
            seen.setdefault(str(t["speaker"]), None)
        return list(seen)

    def speaker_at(self, t0: float, t1: float | None = None) -> str | None:
        """The speaker with the most talk inside [t0, t1] (a point when t1 is None)."""
        t1 = t0 if t1 is None else t1
        talk: dict[str, float] = defaultdict(float)
        for tr in self.turns:
            lo, hi = max(tr["start"], t0), min(tr["end"], t1)
            if t1 == t0 and tr["start"] <= t0 <= tr["end"]:
                talk[str(tr["speaker"])] += 1.0
            elif hi > lo:
                talk[str(tr["speaker"])] += hi - lo
        if not talk and t1 == t0 and self.turns:  # a point between turns: the nearest turn
            near = min(self.turns, key=lambda tr: min(abs(tr["start"] - t0), abs(tr["end"] - t0)))
            return str(near["speaker"])
        return max(talk, key=talk.get) if talk else None

    def speaker_share(self, speaker: str, t0: float, t1: float) -> float:
        """Fraction of [t0, t1] during which ``speaker`` talks."""
        if t1 <= t0:
            return 0.0
        talk = sum(max(0.0, min(t["end"], t1) - max(t["start"], t0)) for t in self.turns if str(t["speaker"]) == speaker)
        return talk / (t1 - t0)

    def track_score(self, track_id: str, t0: float, t1: float) -> float:
        """Mean ASD score of a track inside [t0, t1]; cues carry only a whole-clip mean, used as is."""
        vals = [s for r in self.asd if r["track_id"] == track_id for t, s in zip(r["times"], r["scores"], strict=False) if t0 <= t <= t1]
        if vals:
            return sum(vals) / len(vals)
        return self.mean_scores.get(track_id, float("-inf"))

    def track_ids(self) -> list[str]:
        ids = [t["track_id"] for t in self.tracks] + [r["track_id"] for r in self.asd] + list(self.positions)
        ids += list(self.mean_scores)
        return list(dict.fromkeys(ids))

    def track_x(self, track_id: str) -> float:
        """Mean horizontal centre of a track's boxes (0 = left edge); inf when unknown."""
        for t in self.tracks:
            if t["track_id"] == track_id and t.get("boxes"):
                return sum((b["x1"] + b["x2"]) / 2 for b in t["boxes"]) / len(t["boxes"])
        return self.positions.get(track_id, float("inf"))

    def active_track(self, t0: float, t1: float) -> str | None:
        scored = [(self.track_score(tid, t0, t1), tid) for tid in self.track_ids()]
        scored = [s for s in scored if s[0] > float("-inf")]
        return max(scored)[1] if scored else None

    def track_of_speaker(self, speaker: str) -> str | None:
        """The face track most active while ``speaker`` talks (diarization label -> face)."""
        turns = [t for t in self.turns if str(t["speaker"]) == speaker]
        best, best_score = None, float("-inf")
        for tid in self.track_ids():
            vals = [self.track_score(tid, t["start"], t["end"]) for t in turns]
            vals = [v for v in vals if v > float("-inf")]
            if vals and sum(vals) / len(vals) > best_score:
                best, best_score = tid, sum(vals) / len(vals)
        return best

    def speaker_of_track(self, track_id: str) -> str | None:
        best, best_score = None, float("-inf")
        for spk in self.speakers():
            turns = [t for t in self.turns if str(t["speaker"]) == spk]
            vals = [self.track_score(track_id, t["start"], t["end"]) for t in turns]
            vals = [v for v in vals if v > float("-inf")]
            if vals and sum(vals) / len(vals) > best_score:
                best, best_score = spk, sum(vals) / len(vals)
        return best


def _absorb(ev: Evidence, kind: str, result: Any) -> None:
    if not isinstance(result, dict):
        return
    if kind in ("diarize", "turns", "pred_turns"):
        ev.turns.extend(result.get("turns", []))
    elif kind in ("transcribe", "transcript", "pred_transcript"):
        ev.transcript.extend(result.get("segments", result.get("transcript", [])))
    elif kind in ("track_faces", "face_tracks", "pred_face_tracks"):
        ev.tracks.extend(t for t in result.get("tracks", result.get("face_tracks", [])) if "boxes" in t)
    elif kind in ("active_speaker", "pred_active_speaker"):
        ev.asd.extend(t for t in result.get("tracks", result.get("active_speaker", [])) if "scores" in t)


def from_trace(entries: list[dict], clip: int = 0) -> Evidence:
    """Evidence from the agent's successful tool calls on one clip."""
    ev = Evidence(clip=clip)
    for e in entries:
        if e.get("ok") and (e.get("arguments") or {}).get("clip", 0) == clip:
            _absorb(ev, e["tool"], e.get("result"))
    return ev


_POSITION_X = {"left": 0.2, "centre": 0.5, "center": 0.5, "right": 0.8}


def from_cues(cues: dict | None, clip: int = 0) -> Evidence:
    """Evidence from guided-mode cues.

    Two shapes arrive: curation's compact ``pred_*`` cues (``turns``, ``transcript``, ``faces`` with
    a position word, ``active_speaker`` with a whole-clip mean; ``scene_1``/``scene_2`` for CSNL),
    and the endpoint's tool-shaped cues (``{tool name: tool result}``, ``clip<i>_`` prefixed).
    """
    ev = Evidence(clip=clip)
    if not cues:
        return ev
    scene = cues.get(f"scene_{clip + 1}")
    if isinstance(scene, dict):
        cues = scene
    prefix = f"clip{clip}_"
    for key, val in cues.items():
        key = key[len(prefix):] if key.startswith(prefix) else key
        if key == "faces" and isinstance(val, list):
            for f in val:
                if f.get("position") in _POSITION_X:
                    ev.positions[str(f["track_id"])] = _POSITION_X[f["position"]]
        elif key == "active_speaker" and isinstance(val, list):
            for a in val:
                if a.get("scores"):
                    ev.asd.append(a)
                elif a.get("mean_score") is not None:
                    ev.mean_scores[str(a["track_id"])] = float(a["mean_score"])
        elif isinstance(val, list):
            _absorb(ev, key, {"turns": val, "segments": val, "tracks": val})
        else:
            _absorb(ev, key, val)
    return ev
