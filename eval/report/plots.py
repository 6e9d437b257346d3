"""Matplotlib figures for the report (PNG files; the Agg backend, no display needed)."""

from __future__ import annotations

import io
from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from eval.tasks import task_names  # noqa: E402
from infra.schemas import MODES  # noqa: E402

MODE_COLORS = {"zero_shot": "#9aa5b1", "guided": "#3e7cb1", "agentic": "#e07a1f"}


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _bars(ax, groups: list[str], series: dict[str, list[tuple[float, float, float] | None]], colors: dict[str, str] | None = None):
    """Grouped bars with CI whiskers; series[name][i] = (value, low, high) or None (not measured)."""
    n = max(1, len(series))
    width = 0.8 / n
    x = np.arange(len(groups))
    for k, (name, vals) in enumerate(series.items()):
        v = [s[0] * 100 if s else np.nan for s in vals]
        lo = [(s[0] - s[1]) * 100 if s else 0 for s in vals]
        hi = [(s[2] - s[0]) * 100 if s else 0 for s in vals]
        ax.bar(x + (k - (n - 1) / 2) * width, v, width, yerr=[lo, hi], capsize=2, label=name,
               color=(colors or {}).get(name))
    ax.set_xticks(x, groups)
    ax.legend(fontsize=7)


def _est(e: dict | None):
    return (e["value"], e["low"], e["high"]) if e and e.get("n") else None


def task_by_mode(results: dict, model: str) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    tasks = [t for t in task_names() if t in results["results"].get(model, {})]
    series = {}
    for mode in MODES:
        vals = []
        for t in tasks:
            e = results["results"][model][t].get(mode)
            vals.append(_est(e["metrics"][e["headline"]]) if e else None)
        series[mode] = vals
    _bars(ax, tasks, series, MODE_COLORS)
    ax.set_ylabel("headline score x100")
    ax.set_title(f"{model}: score per task by mode (95% CI)")
    return _png(fig)


def by_stratum(results: dict, key: str, title: str, order: Callable[[str], object] = str) -> bytes:
    """Mean per-sample score per stratum, pooled over tasks, one bar series per model x mode."""
    pooled: dict[str, dict[str, list[float]]] = {}
    for model, tasks in results["strata"].items():
        for _task, modes in tasks.items():
            for mode, strata in modes.items():
                for bucket, e in strata[key].items():
                    pooled.setdefault(f"{model}/{mode}", {}).setdefault(bucket, []).append((e["value"], e["n"]))
    buckets = sorted({b for s in pooled.values() for b in s}, key=order)
    series = {}
    for name, per in pooled.items():
        vals = []
        for b in buckets:
            pairs = per.get(b)
            if not pairs:
                vals.append(None)
                continue
            n = sum(w for _, w in pairs)
            m = sum(v * w for v, w in pairs) / n
            vals.append((m, m, m))
        series[name] = vals
    fig, ax = plt.subplots(figsize=(7, 3.2))
    _bars(ax, buckets, series)
    ax.set_ylabel("mean per-sample score x100")
    ax.set_title(title)
    return _png(fig)


def tool_decision(results: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    models = list(results["results"])
    tasks = [t for t in task_names() if any(t in results["results"][m] for m in models)]
    series = {m: [_est(results["results"][m].get(t, {}).get("agentic", {}).get("tool_decision")) for t in tasks] for m in models}
    _bars(ax, tasks, series)
    ax.set_ylabel("tool-decision correctness x100")
    ax.set_title("Agentic mode: tools called vs tools required (Jaccard, 95% CI)")
    return _png(fig)


def guided_agentic_gap(results: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    models = list(results["gaps"])
    tasks = [t for t in task_names() if any(t in results["gaps"][m] for m in models)]
    series = {m: [(results["gaps"][m][t],) * 3 if t in results["gaps"][m] else None for t in tasks] for m in models}
    _bars(ax, tasks, series)
    ax.axhline(0, color="black", linewidth=0.6)
    ax.set_ylabel("guided - agentic (x100)")
    ax.set_title("Guided-to-agentic gap per task")
    return _png(fig)
