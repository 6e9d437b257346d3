"""Prompt rendering for the three modes (DESIGN §6), shared by every task.

- zero_shot: the question (and options) with the answer format, nothing else;
- guided: plus the perception cues (from ``pred_*`` only) and step-by-step instructions to use them;
- agentic: no cues, no hints; the tool list and the JSON protocol of the loop instead.

Task modules supply only what differs per task (answer format, guided steps) through
:data:`ANSWER_FORMATS` and :data:`GUIDED_STEPS`; they may override these when rendering.
"""

from __future__ import annotations

import json
import string

from eval.agent.tools import TOOLS

SYSTEM = (
    "You watch and listen to a multi-speaker audio-visual clip and answer questions about who "
    "speaks when, to whom, and about what."
)

ANSWER_FORMATS = {
    "choice": "Answer with the letter of one option only.",
    "intervals": 'Answer with JSON only: a list of [start, end] pairs in seconds, e.g. [[1.0, 2.5], [4.0, 6.0]].',
    "text": "Answer with a short summary that says which speaker said what.",
}

GUIDED_STEPS = {
    "AVSA": ["Find the speaker turns that overlap the span in question.", "Find the face track whose active-speaker score is highest there.", "Pick the option naming that person."],
    "NSP": ["Read the turns in order up to the cut-off time.", "Note who speaks after whom and who was addressed last.", "Pick the most likely next speaker."],
    "SRID": ["Find the speaker label of the reference segment in the turns.", "Find the candidate segment with the same speaker label.", "Pick that option."],
    "STG": ["Find the speaker label of the target person.", "Collect every turn of that label.", "Answer with those turns' [start, end] pairs."],
    "AVDS": ["Read the transcript with its speaker labels.", "Summarize the main points, naming who said each."],
    "CSNL": ["Compare the speakers and topics of the two scenes.", "Decide order, shared speakers and continuation.", "Pick the option that fits."],
}

PROTOCOL = (
    "You may call tools before answering. Reply with JSON only, one object per turn:\n"
    '- to call tools: {"plan": "<what you need and why>", "tool_calls": [{"name": "<tool>", "arguments": {"clip": 0, "start_s": null, "end_s": null}}]}\n'
    '- to answer: {"reflect": "<what the tool results show>", "answer": "<your answer>"}\n'
    "Tools:\n"
)


def options_block(options: list[str]) -> str:
    return "\n".join(f"{string.ascii_uppercase[i]}. {o}" for i, o in enumerate(options))


def question_block(question: str, options: list[str], answer_kind: str, spans: list[tuple[float, float]]) -> str:
    parts = []
    if spans:
        # Questions, answers and tools all count seconds from each clip's start.
        clips = "; ".join(f"clip {i}: {e - s:.1f} s long" for i, (s, e) in enumerate(spans))
        parts.append(f"Clips ({clips}; times are seconds from the clip start).")
    parts.append(f"Question: {question}")
    if options:
        parts.append("Options:\n" + options_block(options))
    parts.append(ANSWER_FORMATS[answer_kind])
    return "\n".join(parts)


def cues_block(cues: dict | None, task: str) -> str:
    text = json.dumps(cues or {}, separators=(",", ":"), default=str)
    steps = "\n".join(f"{i + 1}. {s}" for i, s in enumerate(GUIDED_STEPS.get(task, [])))
    return f"Perception cues (automatic, may contain errors):\n{text}\nUse them step by step:\n{steps}"


def tools_block() -> str:
    return PROTOCOL + "\n".join(f"- {t.name}: {t.description}" for t in TOOLS.values())


def render(
    task: str,
    mode: str,
    question: str,
    options: list[str],
    answer_kind: str,
    spans: list[tuple[float, float]] | None = None,
    cues: dict | None = None,
) -> list[dict[str, str]]:
    """Chat messages for one sample in one mode."""
    spans = spans or []
    user = question_block(question, options, answer_kind, spans)
    if mode == "guided":
        user = cues_block(cues, task) + "\n\n" + user
    system = SYSTEM
    if mode == "agentic":
        system = SYSTEM + "\n\n" + tools_block()
    elif mode not in ("zero_shot", "guided"):
        raise ValueError(f"mode: {mode!r} is not one of zero_shot, guided, agentic")
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
# Cached eval predictions are keyed by PROMPT_VERSION (eval.runner.prediction_id), so answers to an
# old prompt are never reused for a new one. The templates and the tool list are hashed, so editing
# them cannot be forgotten; bump RENDER_REVISION when the rendering *code* above changes a prompt.
RENDER_REVISION = 1


def _prompt_version() -> str:
    from infra.ids import content_id

    return content_id(RENDER_REVISION, SYSTEM, ANSWER_FORMATS, GUIDED_STEPS, tools_block())


PROMPT_VERSION = _prompt_version()
