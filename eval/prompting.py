"""Prompt rendering for the three modes (DESIGN §6): the one renderer evaluation and RAFT share.

- zero_shot: the question (and options) with the reply format, nothing else;
- guided: plus the perception cues (from ``pred_*`` only) and the task's steps for using them;
- agentic: no cues, no hints; the tool list and the JSON protocol of the loop instead.

What differs per task (its answer kind's format line, its guided steps) comes from the task
class (``eval.tasks``); nothing here is keyed by task name. Cues are rendered as compact lines,
one fact per line, capped at :data:`MAX_CUE_LINES` per cue kind, so that a small policy can be
trained on exactly the prompt it is evaluated on. :func:`transcript_lines` returns the
transcript lines as they appear in the prompt with their times, for RAFT's f_t(t).
"""

from __future__ import annotations

import json
import string
from typing import Any

from eval.agent.tools import TOOLS

SYSTEM = (
    "You watch and listen to a multi-speaker audio-visual clip and answer questions about who "
    "speaks when, to whom, and about what."
)

REPLY_FORMAT = (
    'Reply with four lines: "plan:" what you will check, "act:" the tools or cues you use (or none), '
    '"reflect:" what they show, and "answer:" your answer.'
)

PROTOCOL = (
    "You may call tools before answering. Reply with JSON only, one object per turn:\n"
    '- to call tools: {"plan": "<what you need and why>", "tool_calls": [{"name": "<tool>", "arguments": {"clip": 0, "start_s": null, "end_s": null}}]}\n'
    '- to answer: {"reflect": "<what the tool results show>", "answer": <your answer>}\n'
    'Or, in one turn, four lines: "plan: ...", "act: <tool names>", "reflect: ...", "answer: ..." '
    "(the named tools run on the whole clip, and the answer line is final).\n"
    "Tools:\n"
)

MAX_CUE_LINES = 24  # per cue kind: transcript lines, turns, faces, tracks


def options_block(options: list[str]) -> str:
    return "\n".join(f"{string.ascii_uppercase[i]}. {o}" for i, o in enumerate(options))


def question_block(question: str, options: list[str], answer_format: str, spans: list[tuple[float, float]],
                   mode: str) -> str:
    parts = []
    if spans:
        # Questions, answers and tools all count seconds from each clip's start.
        clips = "; ".join(f"clip {i}: {e - s:.1f} s long" for i, (s, e) in enumerate(spans))
        parts.append(f"Clips ({clips}; times are seconds from the clip start).")
    parts.append(f"Question: {question}")
    if options:
        parts.append("Options:\n" + options_block(options))
    parts.append(answer_format if mode == "agentic" else f"{REPLY_FORMAT} {answer_format}")
    return "\n".join(parts)


def _t(x: Any) -> str:
    return f"{float(x):.1f}" if isinstance(x, (int, float)) else "?"


def transcript_line(seg: dict) -> str:
    return f"[{_t(seg.get('start'))}-{_t(seg.get('end'))}] {seg.get('speaker') or '?'}: {seg.get('text', '').strip()}"


def _cue_lines(key: str, value: Any) -> list[str]:
    """One cue kind as lines; an unknown kind is shown as compact JSON (never dropped)."""
    if key == "turns":
        return [f"[{_t(t.get('start'))}-{_t(t.get('end'))}] {t.get('speaker')}" for t in value]
    if key == "transcript":
        return [transcript_line(s) for s in value]
    if key == "faces":
        return [f"track {f.get('track_id')}: visible {_t(f.get('from'))}-{_t(f.get('to'))} s, {f.get('position')}"
                for f in value]
    if key == "active_speaker":
        out = []
        for a in value:
            line = f"track {a.get('track_id')}: mean score {a.get('mean_score')}"
            if a.get("span_mean_score") is not None or a.get("scores"):
                line += f", in the asked span {a.get('span_mean_score')}"
            if a.get("position"):
                line += f", {a['position']} (x {a.get('x_center')})"
            line += f", sync offset {a.get('sync_offset_s')} s, confidence {a.get('sync_confidence')}"
            out.append(line)
        return out
    return [json.dumps(value, separators=(",", ":"), default=str)]


def _clip_cues(cues: dict) -> list[tuple[str | None, dict]]:
    """[(label, cues of one clip)]: multi-clip cues (CSNL) hold one dict per scene, keyed by its label."""
    if cues and all(isinstance(v, dict) for v in cues.values()):
        return list(cues.items())
    return [(None, cues)]


def cues_block(cues: dict | None, steps: tuple[str, ...] | list[str]) -> str:
    lines = ["Perception cues (automatic, may contain errors):"]
    for label, clip_cues in _clip_cues(cues or {}):
        if label:
            lines.append(f"{label}:")
        for key, value in clip_cues.items():
            if not isinstance(value, list):
                value = [value]
            shown = _cue_lines(key, value)
            lines.append(f"{key}:")
            lines += shown[:MAX_CUE_LINES]
            if len(shown) > MAX_CUE_LINES:
                lines.append(f"(+{len(shown) - MAX_CUE_LINES} more)")
    if steps:
        lines.append("Use them step by step:")
        lines += [f"{i + 1}. {s}" for i, s in enumerate(steps)]
    return "\n".join(lines)


def transcript_lines(cues: dict | None) -> list[tuple[str, float, float]]:
    """(line, start, end) of the first clip's transcript cue lines as the prompt shows them."""
    clips = _clip_cues(cues or {})
    segs = (clips[0][1].get("transcript") or []) if clips else []
    return [(transcript_line(s), float(s["start"]), float(s["end"])) for s in segs[:MAX_CUE_LINES]
            if isinstance(s, dict) and isinstance(s.get("start"), (int, float)) and isinstance(s.get("end"), (int, float))]


def tools_block() -> str:
    return PROTOCOL + "\n".join(f"- {t.name}: {t.description}" for t in TOOLS.values())


MODES_RENDERED = ("zero_shot", "guided", "agentic")


def render(
    task: Any,
    mode: str,
    question: str,
    options: list[str],
    spans: list[tuple[float, float]] | None = None,
    cues: dict | None = None,
) -> list[dict[str, str]]:
    """Chat messages for one sample in one mode; ``task`` is the task class (its kind and steps)."""
    if mode not in MODES_RENDERED:
        raise ValueError(f"mode: {mode!r} is not one of {', '.join(MODES_RENDERED)}")
    user = question_block(question, options, task.kind.answer_format, spans or [], mode)
    if mode == "guided":
        user = cues_block(cues, task.guided_steps) + "\n\n" + user
    system = SYSTEM + "\n\n" + tools_block() if mode == "agentic" else SYSTEM
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def tool_results_message(entries: list[dict], last_turn: bool) -> dict[str, str]:
    """What the agent sees after its tool calls (errors included, so it can recover)."""
    shown = [
        {k: e[k] for k in ("tool", "arguments", "result", "error") if k in e}
        for e in entries
    ]
    tail = "No more tool calls are allowed; answer now." if last_turn else "Call more tools or answer."
    return {"role": "user", "content": "Tool results:\n" + json.dumps(shown, default=str)[:20000] + "\n" + tail}


# --- prompt version -----------------------------------------------------------------------------
# Cached eval predictions are keyed by the prompt version (eval.runner.prediction_id), so answers to
# an old prompt are never reused for a new one. It hashes this module's source (templates and
# rendering code), the tool list and every registered task's format line and guided steps, so no
# edit to a prompt can be forgotten.


def prompt_version() -> str:
    from eval.tasks import get_task, task_names
    from infra.ids import content_id

    with open(__file__, "rb") as f:
        source = f.read().decode()
    tasks = [(t, get_task(t).kind.answer_format, list(get_task(t).guided_steps)) for t in task_names()]
    return content_id(source, tools_block(), tasks)
