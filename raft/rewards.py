"""Perceptual rewards: r = sum_c lambda_c * s_c(y, clip), one plugin per component c (DESIGN §7).

Every component maps (item, parsed candidate, clips) to a score in [0, 1] or None:
- None means "not applicable" (the candidate makes no claim the component can check, e.g. it
  names no face track); it contributes 0, so evidence-backed claims earn reward and silence earns none.
- An unparseable candidate gets the minimum of every component (0, so r = 0) and is logged.

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
from infra import intervals as iv

log = logging.getLogger(__name__)

KNOWN_TOOLS = {"diarize", "transcribe", "detect_faces", "track_faces", "sync_check", "active_speaker"}
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
    """Face tracks the candidate attributes: track ids named in its chosen option or in its own text."""
    ids = {t["track_id"] for c in clips for t in (c.get("pred_face_tracks") or [])}
    text = parsed.answer or ""
    if parsed.letter and item.options:
        idx = ord(parsed.letter) - ord("A")
        if idx < len(item.options):
            text += " " + item.options[idx]
    text += " " + parsed.sections.get("reflect", "")
    return sorted(t for t in ids if re.search(rf"(?<![\w-]){re.escape(t)}(?![\w-])", text))


def _active(clips: list[dict], track: str) -> dict | None:
    return next((a for c in clips for a in (c.get("pred_active_speaker") or []) if a["track_id"] == track), None)


def _claimed_span(parsed: Parsed, clips: list[dict]) -> list[tuple[float, float]]:
    return parsed.intervals or [(c["start_s"], c["end_s"]) for c in clips]


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
    """Attributed tracks' AV sync: confidence in [0, 1], scaled by tol/|offset| beyond the tolerance."""
    scores = []
    for track in _attributed_tracks(item, parsed, clips):
        a = _active(clips, track)
        if a is None:
            continue
        conf = min(max(float(a["sync_confidence"] or 0.0), 0.0), 1.0)
        off, tol_s = abs(float(a["sync_offset_s"] or 0.0)), opts.sync_offset_tol_s
        scores.append(conf * (1.0 if off <= tol_s else tol_s / off))
    return sum(scores) / len(scores) if scores else None


@register("face")
def face_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float | None:
    """Attributed tracks are visible (have boxes) and active (mean ASD score) in the claimed span."""
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
    return sum(scores) / len(scores)


@register("speech")
def speech_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float | None:
    """Precision of the candidate's content words (answer + reflect) against the ASR transcript."""
    words = _words(f"{parsed.answer or ''} {parsed.sections.get('reflect', '')}")
    if len(words) < 2:
        return None
    heard = {w for c in clips for seg in (c.get("pred_transcript") or []) for w in _words(seg["text"])}
    return sum(w in heard for w in words) / len(words)


@register("diarization")
def diarization_reward(item: RewardItem, parsed: Parsed, clips: list[dict], opts: RewardOptions) -> float | None:
    """Claimed intervals covered by one predicted speaker: max over speakers of covered / claimed."""
    if not parsed.intervals:
        return None
    claimed = _union_len(parsed.intervals)
    if claimed <= 0:
        return 0.0
    by_spk: dict[str, list[tuple[float, float]]] = {}
    for c in clips:
        for t in c.get("pred_turns") or []:
            by_spk.setdefault(t["speaker"], []).append((t["start"], t["end"]))
    best = max((_intersect_len(parsed.intervals, ivs) for ivs in by_spk.values()), default=0.0)
    return min(best / claimed, 1.0)


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
    """r = sum_c w_c s_c over components with a non-zero weight; unparseable -> every component 0."""
    parsed = parse_candidate(item, clips)
    active = {k: w for k, w in weights.items() if w}
    if not parsed.ok:
        log.info("unparseable candidate for %s: %.80r", item.sample_id, item.text)
        return RewardResult(0.0, {k: RANGES[k][0] for k in active}, False)
    opts = opts or RewardOptions()
    comps = {name: REWARDS[name](item, parsed, clips, opts) for name in active}
    total = sum(active[k] * v for k, v in comps.items() if v is not None)
    return RewardResult(float(total), comps, True)
