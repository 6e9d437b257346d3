"""Robust answer parsing: option letters, option names, JSON intervals and free text.

Models answer in every format imaginable ("**B**", "The answer is (b).", "Speaker 2",
``{"answer": "C"}``, "from 0:03.5 to 0:07"). Each parser returns a :class:`Parsed` with
``ok=False`` when nothing defensible can be read; callers score that as wrong, and the failure
is logged with the raw text so prompt or parser bugs show up in the run log.
"""

from __future__ import annotations

import json
import logging
import re
import string
from dataclasses import dataclass, field
from typing import Any

from eval.reply import ANSWER_KEYS, json_candidates, strip_markup

log = logging.getLogger("amuse.eval.parsing")

LETTERS = string.ascii_uppercase


@dataclass
class Parsed:
    ok: bool
    value: Any = None  # letter, list of (start, end), or text
    how: str = ""  # which rule matched (or why none did): kept in metrics for debugging
    extra: dict = field(default_factory=dict)


def _fail(kind: str, raw: str, why: str) -> Parsed:
    log.warning("unparseable %s answer (%s): %.200r", kind, why, raw)
    return Parsed(ok=False, value=None, how=why)


def _strip_markup(text: str) -> str:
    return strip_markup(text)


def answer_field(text: str) -> str | None:
    """The answer of a JSON reply embedded in ``text`` (as text), if a model replied in JSON."""
    for val in json_candidates(text):
        if isinstance(val, dict):
            for key in ANSWER_KEYS:
                if key in val:
                    v = val[key]
                    return v if isinstance(v, str) else json.dumps(v)
    return None


def _norm(s: str) -> str:
    s = s.lower()
    s = re.sub(r"^[a-j][\)\.:]\s+", "", s)  # "b) alice" -> "alice" (rendered options carry no letter)
    return re.sub(r"[^a-z0-9]+", " ", s).strip()


# Ordered: the first rule that yields exactly one letter wins.
_CHOICE_PATTERNS = [
    ("answer_is", re.compile(r"\b(?i:answer|choice|option|pick|select(?:ed)?)\s*(?:is|would be|:|=|-)?\s*(?:option\s*)?[\(\[]?([A-Ja-j])\b[\)\]]?(?![\w'])")),
    ("leading", re.compile(r"^[\(\[]?([A-J])(?:[\)\]\.:,]|\s*$|\s+[-–—]\s)")),
    ("option_word", re.compile(r"\boption\s+([A-Ja-j])\b", re.I)),
    ("parenthesised", re.compile(r"[\(\[]([A-J])[\)\]]")),
]


def _article(m: re.Match, t: str) -> bool:
    """'the answer is a man ...': a lower-case 'a' followed by a word is the article, not option A."""
    return m.group(1) == "a" and bool(re.match(r"\s+[A-Za-z]", t[m.end(1):]))


def parse_choice(text: Any, options: list[str]) -> Parsed:
    """An option letter from a free-form answer; ``options`` are the option texts in letter order."""
    raw = text if isinstance(text, str) or text is None else json.dumps(text)
    raw = raw or ""
    n = len(options)
    if n == 0:
        return _fail("choice", raw, "no options")
    valid = set(LETTERS[:n])
    inner = answer_field(raw)
    t = _strip_markup(inner if inner is not None else raw)
    if not t:
        return _fail("choice", raw, "empty")
    bare = t.strip().strip(".!)(][:").strip()
    if bare.upper() in valid and len(bare) == 1:
        return Parsed(True, bare.upper(), "bare_letter")
    if re.search(r"(?<![\w'])[A-J]\)?\s+(?:or|and/or)\s+\(?[A-J](?![\w'])", t):
        return _fail("choice", raw, "hedges between letters")
    for how, pat in _CHOICE_PATTERNS:
        letters = {m.group(1).upper() for m in pat.finditer(t) if not _article(m, t)} & valid
        if len(letters) == 1:
            return Parsed(True, letters.pop(), how)
        if len(letters) > 1 and how == "answer_is":
            return _fail("choice", raw, f"several letters {sorted(letters)}")
    # The option's own text ("Speaker 2", "the woman on the left"): longest unique match wins, so
    # "Speaker 12" is not read as "Speaker 1".
    nt = f" {_norm(t)} "
    hits = [(len(_norm(o)), LETTERS[i]) for i, o in enumerate(options) if _norm(o) and f" {_norm(o)} " in nt]
    if hits:
        hits.sort(reverse=True)
        best = [h for h in hits if h[0] == hits[0][0]]
        longer_contains = all(_norm(options[LETTERS.index(h[1])]) in _norm(options[LETTERS.index(hits[0][1])]) for h in hits)
        if len(best) == 1 and (len(hits) == 1 or longer_contains):
            return Parsed(True, hits[0][1], "option_text")
        return _fail("choice", raw, f"matches several options {sorted(h[1] for h in hits)}")
    # A lone capital letter in prose ("I'd go with C."), but not the article "A".
    lone = {m.group(1) for m in re.finditer(r"(?<![\w'])([A-J])(?![\w'])", t)} & valid
    if "A" in lone and re.search(r"(?<![\w'])A\s+[a-z]", t):
        lone.discard("A")
    if len(lone) == 1:
        return Parsed(True, lone.pop(), "lone_letter")
    return _fail("choice", raw, "no option letter or name")


_NUM = r"(\d+(?::\d{1,2}){0,2}(?:\.\d+)?)"
_RANGE = re.compile(
    rf"(?:from\s+)?{_NUM}\s*(?:s|sec|secs|seconds)?\s*(?:-|–|—|to|until|till|and|,)\s*{_NUM}\s*(?:s|sec|secs|seconds)?",
    re.I,
)


def _seconds(tok: str) -> float:
    """'75.5' -> 75.5, '1:15.5' -> 75.5, '0:01:15' -> 75."""
    parts = tok.split(":")
    total = 0.0
    for p in parts:
        total = total * 60 + float(p)
    return total


def _intervals_from_json(val: Any) -> list[tuple[float, float]] | None:
    if isinstance(val, dict):
        for key in ("intervals", "answer", "segments", "spans"):
            if key in val:
                return _intervals_from_json(val[key])
        if "start" in val and "end" in val:
            return _intervals_from_json([val])
        return None
    if isinstance(val, list):
        if len(val) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in val):
            return [(float(val[0]), float(val[1]))]
        out = []
        for item in val:
            if isinstance(item, dict) and "start" in item and "end" in item:
                out.append((float(item["start"]), float(item["end"])))
            elif isinstance(item, (list, tuple)) and len(item) == 2:
                out.append((float(item[0]), float(item[1])))
            else:
                return None
        return out
    if isinstance(val, str):
        return _intervals_from_text(val)
    return None


def _intervals_from_text(t: str) -> list[tuple[float, float]] | None:
    out = [(_seconds(a), _seconds(b)) for a, b in _RANGE.findall(t)]
    return out or None


def parse_intervals(text: Any) -> Parsed:
    """A list of (start, end) seconds from a JSON value, or from text holding JSON
    (``[[s, e], ...]``, ``[{"start", "end"}]``) or prose ("from 1.5 to 3 s")."""
    if isinstance(text, (list, dict)):  # a structured answer: read as a value, never re-parsed as text
        try:
            found = _intervals_from_json(text)
        except (TypeError, ValueError):
            found = None
        return _checked(found, json.dumps(text), "value") if found is not None else _fail("intervals", json.dumps(text), "no intervals")
    raw = text or ""
    if not _strip_markup(raw):
        return _fail("intervals", raw, "empty")
    found = None
    for val in json_candidates(raw):
        try:
            found = _intervals_from_json(val)
        except (TypeError, ValueError):
            found = None
        if found is not None:
            how = "json"
            break
    if found is None:
        found, how = _intervals_from_text(_strip_markup(raw)), "text"
    if found is None:
        return _fail("intervals", raw, "no intervals")
    return _checked(found, raw, how)


def _checked(found: list[tuple[float, float]], raw: str, how: str) -> Parsed:
    good = [(s, e) for s, e in found if e >= s >= 0]
    if len(good) < len(found):
        log.warning("dropped %d malformed interval(s) (end before start or negative): %.200r", len(found) - len(good), raw)
    if found and not good:
        return _fail("intervals", raw, "every interval malformed")
    return Parsed(True, sorted(good), how)


_PREFIX = re.compile(r"^\s*(?:final\s+)?(?:answer|summary|response)\s*[:\-]\s*", re.I)


def parse_text(text: Any) -> Parsed:
    """Free text (AVDS summaries): unwrap JSON and 'Summary:' prefixes; empty is unparseable."""
    raw = text if isinstance(text, str) or text is None else json.dumps(text)
    raw = raw or ""
    inner = answer_field(raw)
    t = _strip_markup(inner if inner is not None else raw)
    t = _PREFIX.sub("", t).strip()
    if not t:
        return _fail("text", raw, "empty")
    return Parsed(True, " ".join(t.split()), "json" if inner is not None else "text")
