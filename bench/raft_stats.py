"""Statistics of the RAFT learnability study (bench/raft_learn.py): paired hierarchical bootstrap,
drawdown and collapse of validation curves."""

from __future__ import annotations

import numpy as np


def paired_hierarchical_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 2000, seed: int = 0,
                                  level: float = 0.95) -> dict[str, float]:
    """Mean of a - b and its percentile interval, resampling seeds, then prompts within each seed.

    ``a``, ``b``: (seeds, prompts) per-prompt held-out scores of two arms; row s of both comes from
    seed s and column j from the same prompt, so the difference is paired on (seed, prompt). Each
    bootstrap draw picks S seeds with replacement and, for each picked seed, P prompts with
    replacement (the two levels of variation: training randomness, and which prompts were held out).
    """
    d = np.asarray(a, float) - np.asarray(b, float)
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"paired_hierarchical_bootstrap: need (seeds, prompts) arrays of one shape, got {d.shape}")
    s, p = d.shape
    rng = np.random.default_rng(seed)
    seeds = rng.integers(0, s, (n_boot, s))
    prompts = rng.integers(0, p, (n_boot, s, p))
    means = d[seeds[..., None], prompts].mean(axis=(1, 2))
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return {"mean": float(d.mean()), "lo": float(lo), "hi": float(hi), "seeds": s, "prompts": p}


def verdict(ci: dict[str, float]) -> str:
    """'better' / 'worse' when the interval excludes zero on that side, else 'no difference shown'."""
    if ci["lo"] > 0:
        return "better"
    if ci["hi"] < 0:
        return "worse"
    return "no difference shown"


def max_drawdown(curve: list[float]) -> float:
    """Largest drop from a running maximum of the curve (0 for a curve that never falls)."""
    peak, worst = -np.inf, 0.0
    for v in curve:
        peak = max(peak, v)
        worst = max(worst, peak - v)
    return float(worst)


def collapsed(curve: list[float], format_rates: list[float], warm: float, drop: float = 0.1,
              min_format: float = 0.5) -> bool:
    """Validation fell below the warm start by more than ``drop``, or the format rate under ``min_format``,
    at the end of training."""
    return bool(curve[-1] < warm - drop or format_rates[-1] < min_format)
