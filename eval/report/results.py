"""From prediction rows to ``results.json``: every headline figure with a bootstrap 95% CI.

Layout: ``results[model][task][mode]`` holds the task's metrics (``Task.aggregate``), the
parse rate, tool-decision correctness (agentic), latency, and per-stratum mean scores (overlap
bucket, clip-length bucket, visible speakers). ``gaps[model][task]`` is guided minus agentic.
``margins["tool_only-random"][task][mode]`` is the baselines' paired difference with its CI; the
evaluator adds ``perception`` (``eval.metrics.perception_quality``) from the clip records.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np

from eval.metrics import text
from eval.metrics.bootstrap import bootstrap_mean, bootstrap_paired_difference
from eval.tasks import get_task
from eval.tasks.kinds import ScoringParams, references

STRATA = ("overlap_bucket", "length_bucket", "num_visible")


def _group(rows: list[dict]) -> dict[tuple[str, str, str], list[dict]]:
    g: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for r in rows:
        g[(r["model"], r["task"], r["mode"])].append(r)
    return g


def compute(rows: list[dict], samples: dict[str, dict], params: ScoringParams) -> dict[str, Any]:
    out: dict[str, Any] = {"results": {}, "gaps": {}, "strata": {}, "n_predictions": len(rows)}
    for (model, task, mode), rs in sorted(_group(rows).items()):
        metrics = {k: v.to_dict() for k, v in get_task(task).aggregate(rs, samples, params).items()}
        entry: dict[str, Any] = {
            "n": len(rs),
            "headline": get_task(task).kind.headline,
            "metrics": metrics,
            "parse_rate": float(np.mean([r["parse_ok"] for r in rs])),
            "errors": sum(1 for r in rs if r["error"]),
            "latency_p50_s": float(np.median([r["latency_s"] for r in rs])),
        }
        td = [r["tool_decision"] for r in rs if r["tool_decision"] is not None]
        if td:
            entry["tool_decision"] = bootstrap_mean(td, params.bootstrap_samples, params.seed).to_dict()
            exact = [json.loads(r["metrics"]).get("tool_decision", {}).get("exact", 0.0) for r in rs if r["tool_decision"] is not None]
            entry["tool_decision_exact"] = float(np.mean(exact))
        out["results"].setdefault(model, {}).setdefault(task, {})[mode] = entry
        strata: dict[str, dict[str, Any]] = {}
        for key in STRATA:
            by: dict[str, list[float]] = defaultdict(list)
            for r in rs:
                by[str(samples[r["sample_id"]][key])].append(r["score"])
            strata[key] = {b: bootstrap_mean(v, params.bootstrap_samples, params.seed).to_dict() for b, v in sorted(by.items())}
        out["strata"].setdefault(model, {}).setdefault(task, {})[mode] = strata
    for model, tasks in out["results"].items():
        for task, modes in tasks.items():
            if "guided" in modes and "agentic" in modes:
                h = modes["guided"]["headline"]
                out["gaps"].setdefault(model, {})[task] = modes["guided"]["metrics"][h]["value"] - modes["agentic"]["metrics"][h]["value"]
    avds = [r for r in rows if r["task"] == "AVDS" and r["parsed_answer"]]
    if avds:
        out["bleu_signature"] = text.bleu_signature([r["parsed_answer"] for r in avds], [references(samples[r["sample_id"]]) for r in avds])
    out["meteor_available"] = text.meteor_available()
    models = set(out["results"])
    if {"tool_only", "random"} <= models:
        out["margins"] = {"tool_only-random": paired_margins(rows, "tool_only", "random", params)}
    return out


def paired_margins(rows: list[dict], better: str, worse: str, params: ScoringParams) -> dict[str, dict[str, dict]]:
    """Per task and mode: mean per-sample headline of ``better`` minus ``worse`` on the samples both
    answered, with a paired bootstrap CI (the sanity check of the baselines, issue 6)."""
    scores: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for r in rows:
        if r["model"] in (better, worse):
            scores[(r["task"], r["mode"], r["sample_id"])][r["model"]] = float(r["score"])
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for (task, mode, _), s in sorted(scores.items()):
        if better in s and worse in s:
            pairs[(task, mode)].append((s[better], s[worse]))
    out: dict[str, dict[str, dict]] = {}
    for (task, mode), ps in sorted(pairs.items()):
        est = bootstrap_paired_difference([a for a, _ in ps], [b for _, b in ps], params.bootstrap_samples, params.seed)
        out.setdefault(task, {})[mode] = est.to_dict()
    return out


def headline(results: dict, model: str, task: str, mode: str) -> dict | None:
    e = results["results"].get(model, {}).get(task, {}).get(mode)
    return e["metrics"][e["headline"]] if e else None


def baseline_margins(results: dict, better: str, worse: str, tasks: list[str], modes: list[str]) -> dict[str, dict[str, dict]]:
    """Paired margins (``paired_margins``) of ``better`` over ``worse`` where ``compute`` made them,
    else the difference of the two headlines (no CI: the samples may not be the same)."""
    paired = results.get("margins", {}).get(f"{better}-{worse}", {})
    out: dict[str, dict[str, dict]] = {}
    for t in tasks:
        for m in modes:
            if m in paired.get(t, {}):
                out.setdefault(t, {})[m] = paired[t][m]
                continue
            a, b = headline(results, better, t, m), headline(results, worse, t, m)
            if a and b:
                out.setdefault(t, {})[m] = {"value": a["value"] - b["value"], "low": None, "high": None, "n": min(a["n"], b["n"])}
    return out
