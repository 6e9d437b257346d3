"""Helpers of the tool-only policies (``Task.tool_only_answer``): read questions and options, and map
perception evidence (turns, transcript, face tracks, active-speaker scores) onto options.

Times are clip-relative seconds, as questions and tool outputs are.
"""

from __future__ import annotations

import re
import string

from eval.models.evidence import Evidence
from eval.parsing import parse_intervals
from eval.tasks.common import horizontal

TIME = re.compile(r"(\d+(?:\.\d+)?)\s*(?:s\b|sec\b|seconds)")
FIRST_HEARD = re.compile(r"first heard at (\d+(?:\.\d+)?) s")
SPEAKING_AT = re.compile(r"speaking at (\d+(?:\.\d+)?) s")
QUOTE = re.compile(r'"([^"]+)"')


def question_times(question: str) -> list[float]:
    return [float(x) for x in TIME.findall(question)]


def question_span(text: str) -> tuple[float, float] | None:
    p = parse_intervals(text)
    if p.ok and p.value:
        return p.value[0]
    return None


def letter(i: int) -> str:
    return string.ascii_uppercase[i]


def choice_letter(i: int | None) -> str:
    return letter(i if i is not None else 0)


_PLACE = re.compile(r"\b(?:on|in|at)\s+the\s+(left|right|centre|center|middle)\b")
_PLACE_X = {"left": 0.2, "centre": 0.5, "center": 0.5, "middle": 0.5, "right": 0.8}


def option_place(option: str) -> str | None:
    """left | centre | right as an option describes a person ("the person in the centre of the frame")."""
    m = _PLACE.search(option.lower())
    if not m:
        return None
    return {"center": "centre", "middle": "centre"}.get(m.group(1), m.group(1))


def option_for_x(options: list[str], x: float) -> int | None:
    """The option whose described place matches horizontal position ``x`` (0 = left edge): the same
    word when an option has it, else the option whose place is nearest."""
    places = [option_place(o) for o in options]
    want = horizontal(x)
    exact = [i for i, p in enumerate(places) if p == want]
    if exact:
        return exact[0]
    near = [(abs(_PLACE_X[p] - x), i) for i, p in enumerate(places) if p]
    return min(near)[1] if near else None


def option_for_track(ev: Evidence, options: list[str], track_id: str) -> int | None:
    """The option describing a face track by its place in the frame ("the person on the left")."""
    x = ev.track_x(track_id)
    if x == float("inf"):
        rec = next((r for r in ev.asd if r.get("track_id") == track_id), None)
        x = _record_x(rec, None) if rec else None
        if x is None:
            return None
    return option_for_x(options, x)


def _record_x(rec: dict, t: float | None) -> float | None:
    """Horizontal centre of an active-speaker record's face at time t (nearest box), else its mean
    centre or position word; None when the record says nothing about where the face is."""
    boxes = rec.get("boxes") or []
    if boxes and t is not None:
        b = min(boxes, key=lambda b: abs(float(b["t"]) - t))
        return (float(b["x1"]) + float(b["x2"])) / 2
    if rec.get("x_center") is not None:
        return float(rec["x_center"])
    if boxes:
        return sum((float(b["x1"]) + float(b["x2"])) / 2 for b in boxes) / len(boxes)
    return _PLACE_X.get(str(rec.get("position")))


def speaking_track_in_span(ev: Evidence, t0: float, t1: float) -> tuple[str, float, float] | None:
    """(track_id, mean score inside [t0, t1], x at the span's middle) of the face track with the highest
    active-speaker score in the span; ties go to the lower track id. Position comes from the record's
    own boxes (active_speaker returns them), else from track_faces / the face cues for that id."""
    mid = (t0 + t1) / 2
    best = None
    for rec in ev.asd:
        vals = [float(s) for t, s in zip(rec.get("times") or [], rec.get("scores") or [], strict=False) if t0 <= t <= t1]
        if not vals:
            continue
        tid = str(rec["track_id"])
        x = _record_x(rec, mid)
        if x is None and ev.track_x(tid) != float("inf"):
            x = ev.track_x(tid)
        if x is None:
            continue
        key = (sum(vals) / len(vals), tid)
        if best is None or key[0] > best[1] or (key[0] == best[1] and tid < best[0]):
            best = (tid, key[0], x)
    return best


def option_for_speaker(ev: Evidence, options: list[str], speaker: str) -> int | None:
    """The option naming a diarized speaker.

    Options like "Speaker 2 (first heard at 7.0 s)" are matched by who the diarization hears in the
    second after that moment (its own onsets drift and it may merge two people); among several
    matches the one whose onset is closest to this speaker's first turn wins. Otherwise: by face.
    """
    onsets = [t["start"] for t in ev.turns if str(t["speaker"]) == speaker]
    timed = [(float(m.group(1)), i) for i, o in enumerate(options) if (m := FIRST_HEARD.search(o))]
    if onsets and timed:
        first = min(onsets)
        hits = [(abs(x - first), i) for x, i in timed if ev.speaker_at(x, x + 1.0) == speaker]
        if hits:
            return min(hits)[1]
        d, i = min((abs(x - first), i) for x, i in timed)
        if d <= 1.5:
            return i
    tid = ev.track_of_speaker(speaker)
    return option_for_track(ev, options, tid) if tid is not None else None


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


