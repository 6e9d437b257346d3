"""Parse a candidate's text into plan / act / reflect / answer, and its answer into a letter or intervals.

Two surface forms are accepted, because the agent emits JSON and the tiny model learns lines:

    {"plan": "...", "act": [...], "reflect": "...", "answer": "B"}

    plan: ...
    act: ...
    reflect: ...
    answer: B

A bare answer ("B", "[[1.0, 2.5]]") parses too, with no sections. Anything else is unparseable
(``ok`` False). The eval engineer's task modules may later own answer parsing; this parser is
kept small and only decides what the rewards need.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

SECTIONS = ("plan", "act", "reflect", "answer")
_SECTION_RE = re.compile(r"^\s*(plan|act|reflect|answer)\s*:\s*(.*)$", re.IGNORECASE)
_LETTER_RE = re.compile(r"^\(?([A-H])\)?(?:[.):\s]|$)")
_NUM = r"-?\d+(?:\.\d+)?"
_PAIR_RE = re.compile(rf"\[\s*({_NUM})\s*,\s*({_NUM})\s*\]")


@dataclass
class Parsed:
    ok: bool
    sections: dict[str, str] = field(default_factory=dict)
    answer: str | None = None
    letter: str | None = None
    intervals: list[tuple[float, float]] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)


def _from_json(text: str) -> dict[str, str] | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        obj = json.loads(text[start : end + 1])
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict) or "answer" not in obj:
        return None
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in obj.items() if k in SECTIONS}


def _from_lines(text: str) -> dict[str, str]:
    sections: dict[str, str] = {}
    current = None
    for line in text.splitlines():
        m = _SECTION_RE.match(line)
        if m:
            current = m.group(1).lower()
            sections[current] = m.group(2).strip()
        elif current:
            sections[current] = (sections[current] + " " + line.strip()).strip()
    return sections


def parse_intervals(text: str) -> list[tuple[float, float]]:
    """All ``[start, end]`` pairs with start <= end, in order."""
    out = []
    for a, b in _PAIR_RE.findall(text or ""):
        s, e = float(a), float(b)
        if e >= s:
            out.append((s, e))
    return out


def parse(text: str) -> Parsed:
    text = (text or "").strip()
    sections = _from_json(text) or _from_lines(text)
    if "answer" not in sections:
        bare = text.splitlines()[0].strip() if text else ""
        if not (_LETTER_RE.match(bare) or parse_intervals(bare)):
            return Parsed(ok=False, sections=sections)
        sections = {"answer": bare}
    answer = sections["answer"].strip()
    if not answer:
        return Parsed(ok=False, sections=sections)
    m = _LETTER_RE.match(answer)
    tools = re.findall(r"[a-z_]+", sections.get("act", ""))
    return Parsed(
        ok=True, sections=sections, answer=answer, letter=m.group(1) if m else None,
        intervals=parse_intervals(answer), tools=tools,
    )
