"""Percentile bootstrap confidence intervals over samples.

Every headline number in a report is a statistic of per-sample values (a mean) or of the whole
sample set (corpus BLEU); both are resampled by sample index, so the interval reflects which
samples the benchmark happened to contain.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass
class Estimate:
    value: float
    low: float
    high: float
    n: int

    def to_dict(self) -> dict:
        return asdict(self)

    def fmt(self, scale: float = 1.0, digits: int = 1) -> str:
        if self.n == 0:
            return "–"
        return f"{self.value * scale:.{digits}f} [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}]"


def bootstrap_indices(n: int, n_boot: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def bootstrap_stat(
    n: int, stat: Callable[[np.ndarray], float], n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> Estimate:
    """``stat(indices)`` on all samples, with a percentile CI from ``n_boot`` resamples of the indices."""
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    value = float(stat(np.arange(n)))
    if n == 1:
        return Estimate(value, value, value, 1)
    boots = np.array([stat(idx) for idx in bootstrap_indices(n, n_boot, seed)], dtype=float)
    if np.isnan(boots).all():
        return Estimate(value, float("nan"), float("nan"), n)
    # nan: a resample on which the statistic is undefined (e.g. AP without a positive); it is skipped.
    low, high = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2])
    return Estimate(value, float(low), float(high), n)


def bootstrap_mean(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> Estimate:
    """Mean with a 95% percentile CI (vectorised: one matrix of resampled indices)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0)
    if v.size == 1:
        return Estimate(float(v[0]), float(v[0]), float(v[0]), 1)
    means = v[bootstrap_indices(v.size, n_boot, seed)].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    return Estimate(float(v.mean()), float(low), float(high), int(v.size))


def bootstrap_paired_difference(a: Sequence[float], b: Sequence[float], n_boot: int = 1000, seed: int = 0) -> Estimate:
    """mean(a - b) over the same samples, with a percentile CI from resampling the samples.

    Pairing matters: two systems scored on one sample set share the easy and the hard samples,
    so the CI of the difference is much tighter than the two separate CIs would suggest.
    """
    if len(a) != len(b):
        raise ValueError(f"paired difference needs equal lengths, got {len(a)} and {len(b)}")
    return bootstrap_mean(np.asarray(a, dtype=float) - np.asarray(b, dtype=float), n_boot, seed)
