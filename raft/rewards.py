"""Perceptual rewards: one plugin per component c (DESIGN §7), combined over the components that apply.

Every component maps (item, parsed candidate, clips) to a score in [0, 1] or None:
- None means "not applicable" (the candidate makes no claim the component can check, e.g. it
  names no face track). Such a component is left out of the total, which is the weighted mean over
  the applicable components, rescaled to the full weight sum W = sum_c lambda_c:

      r = W * sum_{c applicable} lambda_c s_c / sum_{c applicable} lambda_c

  So a claim that checks out poorly lowers r instead of only adding to it, and silence neither
  earns nor loses (r keeps the range [0, W] it had as a plain sum, so train.beta keeps its scale).
- An unparseable candidate gets the minimum of every component (0, so r = 0) and is logged.

What each component trusts, so that it cannot be gamed by claiming more:
- sync / face read only the tracks the *answer* attributes (the chosen option's text or the place
  in the frame it describes, or the answer's own text), never plan or reflect; a claim naming several tracks is as good as its
  weakest one, so naming every track scores no better than the worst of them.
- diarization scores the claimed intervals against one predicted speaker: the asked one where
  the question anchors them (a quote of their line, found in pred_transcript; or "the person
  speaking at T s"), else the best-matching one; by temporal IoU inside the clip span, so a tiny
  interval and an interval padded to the whole clip both score low.
- speech: precision of the candidate's content words against the ASR, times the share of its words
  *not* copied verbatim (in a run of COPY_NGRAM words) from the transcript: the guided prompt
  shows the transcript, and a copy of it is not a summary.

Perceptual components read only ``pred_*`` columns (what perception saw); ``answer`` reads the
sample's label. With ``train.verify`` those columns are first replaced by a fresh perception run on
the clip span (``raft.verify``), the expensive path the reward actor pool exists for. All times are
seconds of the media file, as in ``infra.schemas``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from eval.reply import SECTIONS
from eval.tasks import get_task
from eval.tasks.contract import Answer
from eval.tasks.tool_policy import option_for_x, option_place
from infra import intervals as iv

log = logging.getLogger(__name__)

KNOWN_TOOLS = {"diarize", "transcribe", "detect_faces", "track_faces", "sync_check", "active_speaker"}
COPY_NGRAM = 4  # words in a row, copied verbatim from the transcript, that count as copying
_QUOTE = re.compile(r'"([^"]+)"')
_SPEAKING_AT = re.compile(r"speaking at (\d+(?:\.\d+)?) s")
_STOP = set("the and for are was were that this with from what when who which have has had not you they "
            "she his her him its our use ok answer plan act reflect".split())


@dataclass
class RewardItem:
    """One candidate to score: the sample fields the components read, and the candidate text."""

    sample_id: str
    task: str
    clip_ids: list[str]
    text: str
    options: list[str] = field(default_factory=list)
    answer: str = ""
    answer_intervals: list[tuple[float, float]] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    sample: dict = field(default_factory=dict)  # the sample row: the task contract scores the answer against it
    question: str = ""  # the diarization component finds the asked speaker in it


@dataclass
class Parsed:
    """A candidate as the components read it: the task contract's parse of the reply, with claimed
    intervals moved onto the media file's timeline (where labels and ``pred_*`` live)."""

    ok: bool
    sections: dict[str, str]
    answer: str
    letter: str | None
    intervals: list[tuple[float, float]]
    tools: list[str]
    contract: Answer | None = None  # what the task's scorer reads (clip-relative values)


@dataclass
class RewardOptions:
    """Tunables every component receives (from TrainConfig)."""

    sync_offset_tol_s: float = 0.2


RewardFn = Callable[[RewardItem, Parsed, list[dict], RewardOptions], "float | None"]
REWARDS: dict[str, RewardFn] = {}
RANGES: dict[str, tuple[float, float]] = {}


def register(name: str, lo: float = 0.0, hi: float = 1.0):
    """Add a component to the registry under ``name`` with its documented range [lo, hi]."""

    def deco(fn: RewardFn) -> RewardFn:
        REWARDS[name] = fn
        RANGES[name] = (lo, hi)
        return fn

    return deco


# -- helpers -------------------------------------------------------------------------------------
def _union_len(ivs: list[tuple[float, float]]) -> float:
    return iv.total_length(ivs)


def _intersect_len(a: list[tuple[float, float]], b: list[tuple[float, float]]) -> float:
    return iv.intersection_length(a, b)


tiou = iv.tiou


def _words(text: str) -> list[str]:
    return [w for w in re.findall(r"[a-z']+", text.lower()) if len(w) >= 3 and w not in _STOP]


def _attributed_tracks(item: RewardItem, parsed: Parsed, clips: list[dict]) -> list[str]:
    """Face tracks the answer attributes: track ids named in the chosen option or in the answer itself,
    and, where the options describe people by their place in the frame ("the person on the left", as
    AVSA's do), the tracks whose mean position the chosen option describes (``option_for_x``, the rule
    the tool-only baseline answers by).

    Plan and reflect are not read: naming a well-synced track there is not a claim about who spoke."""
    tracks = [t for c in clips for t in (c.get("pred_face_tracks") or [])]
    text = parsed.answer or ""
    placed: set[str] = set()
    if parsed.letter and item.options:
        idx = ord(parsed.letter) - ord("A")
        if idx < len(item.options):
            text += " " + item.options[idx]
            if option_place(item.options[idx]):
                placed = {t["track_id"] for t in tracks if t.get("boxes")
                          and option_for_x(item.options, _mean_x(t["boxes"])) == idx}
    named = {t["track_id"] for t in tracks if re.search(rf"(?<![\w-]){re.escape(t['track_id'])}(?![\w-])", text)}
    return sorted(named | placed)


def _mean_x(boxes: list[dict]) -> float:
    """A track's mean horizontal centre (0 = the frame's left edge)."""
    return sum((float(b["x1"]) + float(b["x2"])) / 2 for b in boxes) / len(boxes)


def _active(clips: list[dict], track: str) -> dict | None:
    return next((a for c in clips for a in (c.get("pred_active_speaker") or []) if a["track_id"] == track), None)


def _claimed_span(parsed: Parsed, clips: list[dict]) -> list[tuple[float, float]]:
    return parsed.intervals or _clip_span(clips)


def _clip_span(clips: list[dict]) -> list[tuple[float, float]]:
    return [(float(c["start_s"]), float(c["end_s"])) for c in clips]


def _within(ivs: list[tuple[float, float]], span: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of ``ivs`` inside ``span``."""
    pieces = [(max(s1, s2), min(e1, e2)) for s1, e1 in ivs for s2, e2 in span]
    return [(s, e) for s, e in pieces if e > s]


def _turns_by_speaker(clips: list[dict]) -> dict[str, list[tuple[float, float]]]:
    by_spk: dict[str, list[tuple[float, float]]] = {}
    for c in clips:
        for t in c.get("pred_turns") or []:
            by_spk.setdefault(str(t["speaker"]), []).append((float(t["start"]), float(t["end"])))
    return by_spk


def _speaker_at(by_spk: dict[str, list[tuple[float, float]]], s: float, e: float) -> str | None:
    """The predicted speaker who talks most in [s, e]; for an instant (s == e), the one whose turn is nearest."""
    if e > s:
        best = max(by_spk, key=lambda k: _intersect_len(by_spk[k], [(s, e)]), default=None)
        if best is not None and _intersect_len(by_spk[best], [(s, e)]) > 0:
            return best
    dist = {k: min(max(a - s, s - b, 0.0) for a, b in ivs) for k, ivs in by_spk.items() if ivs}
    return min(dist, key=lambda k: dist[k]) if dist else None


def _asked_speaker(item: RewardItem, clips: list[dict], by_spk: dict[str, list[tuple[float, float]]]) -> str | None:
    """The predicted speaker the question asks about, where it anchors one (as eval/tasks/stg.py names
    them): 'the person who says "<quote>"' -> the pred_transcript segment sharing most words with the
    quote, and its speaker; 'the person speaking at T s' (clip seconds) -> the pred speaker at T."""
    quoted = _QUOTE.search(item.question)
    if quoted:
        want = set(_words(quoted.group(1)))
        segs = [(len(want & set(_words(seg.get("text") or ""))), seg)
                for c in clips for seg in (c.get("pred_transcript") or [])]
        n, seg = max(segs, key=lambda x: x[0], default=(0, None))
        if n and seg is not None:
            # ASR segments may carry no speaker (''): the diarization's speaker of that stretch then
            return str(seg.get("speaker") or "") or _speaker_at(by_spk, float(seg["start"]), float(seg["end"]))
    moment = _SPEAKING_AT.search(item.question)
    if moment and clips:
        t = float(moment.group(1)) + float(clips[0]["start_s"])
        return _speaker_at(by_spk, t, t)
    return None


def _copied_share(text: str, clips: list[dict]) -> float:
    """Share of the text's words that sit in a run of COPY_NGRAM words found verbatim in one transcript segment."""
    toks = re.findall(r"[a-z']+", text.lower())
    grams = set()
    for c in clips:
        for seg in c.get("pred_transcript") or []:
            st = re.findall(r"[a-z']+", (seg.get("text") or "").lower())
            grams |= {tuple(st[i : i + COPY_NGRAM]) for i in range(len(st) - COPY_NGRAM + 1)}
    copied = [False] * len(toks)
    for i in range(len(toks) - COPY_NGRAM + 1):
        if tuple(toks[i : i + COPY_NGRAM]) in grams:
            copied[i : i + COPY_NGRAM] = [True] * COPY_NGRAM
    return sum(copied) / len(toks) if toks else 0.0


# -- components ----------------------------------------------------------------------------------
@register("format")
def format_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float:
    """Fraction of plan/act/reflect/answer present and non-empty; act must name known tools only."""
    present = [bool(parsed.sections.get(s, "").strip()) for s in SECTIONS]
    if parsed.sections.get("act") and not set(parsed.tools) <= KNOWN_TOOLS | {"none"}:
        present[1] = False
    return sum(present) / len(SECTIONS)


@register("answer")
def answer_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float | None:
    """The evaluator's per-sample score of the same parsed answer (``Task.reward``: accuracy, tIoU or
    sentence BLEU / 100); None when the item carries no labelled sample (unlabelled prompts)."""
    if not item.sample or parsed.contract is None:
        return None
    return get_task(item.task).reward(parsed.contract, item.sample)


@register("sync")
def sync_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float | None:
    """Attributed tracks' AV sync: confidence in [0, 1], scaled by tol/|offset| beyond the tolerance; the
    weakest attributed track counts (naming more tracks cannot raise it)."""
    scores = []
    for track in _attributed_tracks(item, parsed, clips):
        a = _active(clips, track)
        if a is None:
            continue
        conf = min(max(float(a["sync_confidence"] or 0.0), 0.0), 1.0)
        off, tol_s = abs(float(a["sync_offset_s"] or 0.0)), opts.sync_offset_tol_s
        scores.append(conf * (1.0 if off <= tol_s else tol_s / off))
    return min(scores) if scores else None


@register("face")
def face_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float | None:
    """Attributed tracks are visible (have boxes) and active (mean ASD score) in the claimed span; the
    weakest attributed track counts."""
    tracks = _attributed_tracks(item, parsed, clips)
    if not tracks:
        return None
    span = _claimed_span(parsed, clips)
    inside = lambda t: any(s <= t <= e for s, e in span)  # noqa: E731
    scores = []
    for track in tracks:
        boxes = [b for c in clips for tr in (c.get("pred_face_tracks") or []) if tr["track_id"] == track
                 for b in tr["boxes"] if inside(b["t"])]
        a = _active(clips, track)
        act = [s for t, s in zip(a["times"], a["scores"], strict=False) if inside(t)] if a else []
        scores.append(min(max(sum(act) / len(act), 0.0), 1.0) if boxes and act else 0.0)
    return min(scores)


@register("speech")
def speech_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float | None:
    """Precision of the candidate's content words (answer + reflect) against the ASR transcript, times
    the share of its words not copied verbatim from it (a copy of the prompt's cues scores near 0)."""
    text = f"{parsed.answer or ''} {parsed.sections.get('reflect', '')}"
    words = _words(text)
    if len(words) < 2:
        return None
    heard = {w for c in clips for seg in (c.get("pred_transcript") or []) for w in _words(seg["text"])}
    return sum(w in heard for w in words) / len(words) * (1.0 - _copied_share(text, clips))


@register("diarization")
def diarization_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float | None:
    """Temporal IoU, inside the clip span, of the claimed intervals with one predicted speaker's turns:
    the speaker the question asks about where it anchors one, else the best-matching speaker."""
    if not parsed.intervals:
        return None
    span = _clip_span(clips)
    claimed = _within(parsed.intervals, span) if span else parsed.intervals
    by_spk = {k: _within(v, span) for k, v in _turns_by_speaker(clips).items()}
    asked = _asked_speaker(item, clips, by_spk)
    if asked is not None:
        return tiou(claimed, by_spk.get(asked, []))
    return max((tiou(claimed, ivs) for ivs in by_spk.values()), default=0.0)


def parse_candidate(item: RewardItem, clips: list[dict]) -> Parsed:
    """The task contract's parse of the candidate (the evaluator's parser). Prompts ask for times from
    the clip's start (as eval scores them); labels and pred_* are on the media file's timeline, so
    claimed intervals are moved there once, for every perceptual component."""
    sample = item.sample or {"task": item.task, "options": item.options, "answer": item.answer}
    ans = get_task(item.task).parse(item.text, sample)
    off = float(clips[0]["start_s"]) if clips else 0.0
    return Parsed(ans.ok and bool(ans.answer.strip()), ans.sections, ans.answer, ans.letter,
                  iv.shift(ans.intervals, off), ans.tools, ans)


@dataclass
class RewardResult:
    total: float
    components: dict[str, float | None]
    parse_ok: bool


def score_item(item: RewardItem, clips: list[dict], weights: dict[str, float],
               opts: RewardOptions | None = None) -> RewardResult:
    """r = W * (weighted mean of the applicable components), W the sum of the non-zero weights (module
    docstring); unparseable -> every component at its minimum and r = 0."""
    parsed = parse_candidate(item, clips)
    active = {k: w for k, w in weights.items() if w}
    if not parsed.ok:
        log.info("unparseable candidate for %s: %.80r", item.sample_id, item.text)
        return RewardResult(0.0, {k: RANGES[k][0] for k in active}, False)
    opts = opts or RewardOptions()
    comps = {name: REWARDS[name](item, parsed, clips, opts) for name in active}
    applicable = {k: v for k, v in comps.items() if v is not None}
    w_app = sum(active[k] for k in applicable)
    total = sum(active.values()) * sum(active[k] * v for k, v in applicable.items()) / w_app if w_app else 0.0
    return RewardResult(float(total), comps, True)
