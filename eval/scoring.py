"""Per-sample scoring and per-task aggregation, shared by every task module.

Each task has an answer *kind* (choice, intervals, text); the kind picks the parser, the
per-sample metric and the headline metrics. Task modules call :func:`score_sample` and
:func:`aggregate` (or override them); the evaluator and RAFT's answer reward use the same code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from eval.metrics import classification, temporal, text
from eval.metrics.bootstrap import Estimate, bootstrap_mean, bootstrap_stat
from eval.parsing import PARSERS, Parsed

TASK_KINDS = {"AVSA": "choice", "NSP": "choice", "SRID": "choice", "CSNL": "choice", "STG": "intervals", "AVDS": "text"}

# Tools each task needs when a sample does not list its own required_tools (DESIGN §6).
DEFAULT_REQUIRED_TOOLS = {
    "AVSA": ["diarize", "track_faces", "active_speaker"],
    "NSP": ["diarize", "transcribe"],
    "SRID": ["diarize"],
    "STG": ["diarize", "active_speaker"],
    "AVDS": ["diarize", "transcribe"],
    "CSNL": ["diarize", "transcribe"],
}


@dataclass
class ScoringParams:
    iou_thresholds: Sequence[float] = (0.3, 0.5, 0.7)
    stg_tolerance_s: float = 1.0
    bootstrap_samples: int = 1000
    seed: int = 0


@dataclass
class SampleScore:
    parsed_answer: str | None
    parse_ok: bool
    score: float  # the task's per-sample headline in [0, 1]: correct, tIoU, or sentence BLEU / 100
    metrics: dict[str, Any] = field(default_factory=dict)


def gold_intervals(sample: dict) -> list[tuple[float, float]]:
    """Gold STG intervals in the time base the question uses.

    Questions speak in clip-relative seconds, so ``answer`` (clip-relative JSON) is the gold;
    ``answer_intervals`` (media-file seconds) is shifted by ``meta.clip_start_s`` only as a fallback.
    """
    try:
        return [(float(a), float(b)) for a, b in json.loads(sample["answer"])]
    except (ValueError, TypeError):
        meta = json.loads(sample.get("meta") or "{}") if isinstance(sample.get("meta"), str) else sample.get("meta") or {}
        off = float(meta.get("clip_start_s", 0.0))
        return [(float(i["start"]) - off, float(i["end"]) - off) for i in sample.get("answer_intervals") or []]


def references(sample: dict) -> list[str]:
    return list(sample.get("references") or []) or [sample["answer"]]


def _score_choice(p: Parsed, sample: dict, params: ScoringParams) -> SampleScore:
    correct = classification.choice_correct(p.value if p.ok else None, sample["answer"])
    return SampleScore(p.value if p.ok else None, p.ok, correct, {"correct": correct, "parse": p.how})


def _score_intervals(p: Parsed, sample: dict, params: ScoringParams) -> SampleScore:
    m = temporal.stg_sample_metrics(p.value if p.ok else None, gold_intervals(sample), params.iou_thresholds, params.stg_tolerance_s)
    m["parse"] = p.how
    return SampleScore(json.dumps(p.value) if p.ok else None, p.ok, m["tiou"], m)


def _score_text(p: Parsed, sample: dict, params: ScoringParams) -> SampleScore:
    refs = references(sample)
    if not p.ok:
        return SampleScore(None, False, 0.0, {"sentence_bleu": 0.0, "parse": p.how})
    b = text.sentence_bleu(p.value, refs)
    return SampleScore(p.value, True, b / 100.0, {"sentence_bleu": b, "parse": p.how})


SCORERS: dict[str, Callable[[Parsed, dict, ScoringParams], SampleScore]] = {
    "choice": _score_choice,
    "intervals": _score_intervals,
    "text": _score_text,
}


def parse_answer(task: str, raw: str | None, sample: dict) -> Parsed:
    return PARSERS[TASK_KINDS[task]](raw, sample)


def score_sample(task: str, raw: str | None, sample: dict, params: ScoringParams | None = None) -> SampleScore:
    """Parse ``raw`` for ``task`` and score it against ``sample``; unparseable scores 0 (and is logged)."""
    params = params or ScoringParams()
    return SCORERS[TASK_KINDS[task]](parse_answer(task, raw, sample), sample, params)


# --- aggregation: headline metrics with bootstrap CIs ----------------------------------------------


def _agg_choice(rows: list[dict], samples: dict[str, dict], params: ScoringParams) -> dict[str, Estimate]:
    return {"accuracy": bootstrap_mean([r["score"] for r in rows], params.bootstrap_samples, params.seed)}


def _agg_intervals(rows: list[dict], samples: dict[str, dict], params: ScoringParams) -> dict[str, Estimate]:
    ms = [json.loads(r["metrics"] or "{}") for r in rows]
    out = {"tIoU": bootstrap_mean([m.get("tiou", 0.0) for m in ms], params.bootstrap_samples, params.seed)}
    for t in params.iou_thresholds:
        out[f"R@1 IoU={t:g}"] = bootstrap_mean([m.get(f"r1@{t:g}", 0.0) for m in ms], params.bootstrap_samples, params.seed)
    out["off-by-one acc"] = bootstrap_mean([m.get("off_by_one", 0.0) for m in ms], params.bootstrap_samples, params.seed)
    return out


def _agg_text(rows: list[dict], samples: dict[str, dict], params: ScoringParams) -> dict[str, Estimate]:
    hyps = [r["parsed_answer"] or "" for r in rows]
    refs = [references(samples[r["sample_id"]]) for r in rows]
    nb = params.bootstrap_samples
    # Corpus BLEU is not a mean of sentence scores, so its CI resamples the corpus itself.
    out = {
        "BLEU-4": bootstrap_stat(
            len(rows), lambda idx: text.corpus_bleu([hyps[i] for i in idx], [refs[i] for i in idx]) / 100.0,
            n_boot=min(nb, 300), seed=params.seed,
        )
    }
    if rows:
        c, per = text.cider(hyps, refs)
        est = bootstrap_mean(per, nb, params.seed)
        out["CIDEr"] = Estimate(c, est.low, est.high, est.n)
        met = text.meteor(hyps, refs)
        if met is not None:
            m, per_m = met
            est = bootstrap_mean(per_m, nb, params.seed)
            out["METEOR"] = Estimate(m, est.low, est.high, est.n)
    judged = [json.loads(r["metrics"] or "{}").get("judge") for r in rows]
    judged = [j for j in judged if j is not None]
    if judged:
        out["LLM-judge (0-10)"] = bootstrap_mean([j / 10.0 for j in judged], nb, params.seed)
    return out


AGGREGATORS = {"choice": _agg_choice, "intervals": _agg_intervals, "text": _agg_text}
HEADLINE = {"choice": "accuracy", "intervals": "tIoU", "text": "BLEU-4"}


def aggregate(task: str, rows: list[dict], samples: dict[str, dict], params: ScoringParams | None = None) -> dict[str, Estimate]:
    """Headline metrics (with 95% bootstrap CIs) for one task's prediction rows."""
    return AGGREGATORS[TASK_KINDS[task]](rows, samples, params or ScoringParams())
