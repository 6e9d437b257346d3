"""Speaker temporal grounding (STG) metrics on sets of [start, end] intervals.

A speaker usually talks in several turns, so prediction and truth are *sets* of intervals.
tIoU is |P ∩ G| / |P ∪ G| over the unions (overlapping intervals merged first), which reduces to
the usual single-moment tIoU for one interval each. R@1 at θ counts the (single, top-1) predicted
set whose tIoU ≥ θ. Off-by-one accuracy asks for the same number of merged intervals with both
boundaries of each (in time order) within ``tolerance_s`` — the paper's ±1 s by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from infra.intervals import Interval, merge, tiou  # noqa: F401  (the one interval algebra)


def recall_at_1(tiou_value: float, threshold: float) -> float:
    return float(tiou_value >= threshold)


def off_by_one(pred: Iterable[Sequence[float]], gold: Iterable[Sequence[float]], tolerance_s: float = 1.0) -> float:
    mp, mg = merge(pred), merge(gold)
    if not mg or len(mp) != len(mg):
        return 0.0
    # A hair of slack so 1.0 s of error on a float boundary still counts as "within 1 s".
    tol = tolerance_s + 1e-9
    return float(all(abs(p[0] - g[0]) <= tol and abs(p[1] - g[1]) <= tol for p, g in zip(mp, mg, strict=True)))


def stg_sample_metrics(
    pred: Iterable[Sequence[float]] | None, gold: Iterable[Sequence[float]], thresholds: Sequence[float], tolerance_s: float
) -> dict[str, float]:
    """Per-sample STG metrics; an unparsed prediction (None) scores 0 on all of them."""
    gold = list(gold)
    if pred is None:
        out = {"tiou": 0.0, "off_by_one": 0.0}
        out.update({f"r1@{t:g}": 0.0 for t in thresholds})
        return out
    pred = list(pred)
    v = tiou(pred, gold)
    out = {"tiou": v, "off_by_one": off_by_one(pred, gold, tolerance_s)}
    out.update({f"r1@{t:g}": recall_at_1(v, t) for t in thresholds})
    return out
