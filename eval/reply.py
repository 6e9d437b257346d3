"""The reply contract: every mode's answer is read by this one parser, for evaluation and for RAFT.

A reply is the model's text for one turn. Three forms are read, in this order:

    {"plan": "...", "act": [...], "reflect": "...", "answer": "B"}     (JSON, the agent protocol)

    plan: ...                                                           (lines, what RAFT trains)
    act: diarize transcribe
    reflect: ...
    answer: B

    The answer is B.                                                    (anything else: bare)

A bare reply is its own answer: external models asked zero-shot often answer in prose, and the
task's answer parser (``eval.tasks.kinds``) decides whether that prose holds a usable answer.
JSON answers keep their value (a list of intervals stays a list), so structured answers reach the
scorer and the reward as values, never as text that is parsed back.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

SECTIONS = ("plan", "act", "reflect", "answer")
# Keys models use for the final answer in a JSON reply; the first present wins.
ANSWER_KEYS = ("answer", "final_answer", "prediction", "summary", "intervals")
_LINE = re.compile(r"^\s*(plan|act|reflect|answer)\s*:\s*(.*)$", re.IGNORECASE)
_TOOL_WORD = re.compile(r"[a-z_]+")


@dataclass
class Reply:
    """One parsed reply: its sections (text), the answer as given, the form it came in and the tools
    its ``act`` section names."""

    sections: dict[str, str] = field(default_factory=dict)
    answer: Any = None  # str, or the JSON value (list / number / dict) of a JSON reply; None: no answer
    form: str = "bare"  # json | lines | bare
    tools: list[str] = field(default_factory=list)

    def section(self, name: str) -> str:
        return self.sections.get(name, "") or ""


def strip_markup(text: str) -> str:
    """Drop code fences, markdown emphasis and surrounding quotes that models wrap answers in."""
    t = re.sub(r"```(?:json|text)?", "", text or "")
    t = t.replace("**", "").replace("__", "").replace("`", "")
    return t.strip().strip("\"'").strip()


def json_candidates(text: str) -> list[Any]:
    """Every JSON value embedded in ``text`` (whole text first, then each {...} / [...] span)."""
    out: list[Any] = []
    t = strip_markup(text)
    try:
        out.append(json.loads(t))
    except (ValueError, TypeError):
        pass
    decoder = json.JSONDecoder()
    for m in re.finditer(r"[\[{]", t):
        try:
            val, _ = decoder.raw_decode(t[m.start():])
        except ValueError:
            continue
        out.append(val)
    return out


def _as_text(value: Any) -> str:
    """A section as text; an ``act`` list of tool calls reads as the tool names."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return " ".join(v if isinstance(v, str) else (v.get("name", "") if isinstance(v, dict) else json.dumps(v))
                        for v in value)
    return json.dumps(value)


def _from_json(text: str) -> Reply | None:
    for val in json_candidates(text):
        if not isinstance(val, dict):
            continue
        key = next((k for k in ANSWER_KEYS if k in val), None)
        if key is None:
            continue
        sections = {k: _as_text(val[k]) for k in SECTIONS if k in val and k != "answer"}
        answer = val[key]
        sections["answer"] = answer if isinstance(answer, str) else json.dumps(answer)
        return Reply(sections, val[key], "json")
    return None


def _from_lines(text: str) -> Reply | None:
    sections: dict[str, str] = {}
    current = None
    for line in (text or "").splitlines():
        m = _LINE.match(line)
        if m:
            current = m.group(1).lower()
            sections[current] = m.group(2).strip()
        elif current:
            sections[current] = (sections[current] + " " + line.strip()).strip()
    if "answer" not in sections:
        return None
    return Reply(sections, sections["answer"], "lines")


def parse_reply(text: str | None) -> Reply:
    """The reply's sections and answer; an empty reply has ``answer`` None."""
    raw = text or ""
    reply = _from_json(raw) or _from_lines(raw)
    if reply is None:
        bare = raw.strip()
        reply = Reply({"answer": bare} if bare else {}, bare or None, "bare")
    reply.tools = _TOOL_WORD.findall(reply.section("act").lower())
    return reply
