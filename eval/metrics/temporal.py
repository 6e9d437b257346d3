"""Speaker temporal grounding (STG) metrics on sets of [start, end] intervals.

A speaker usually talks in several turns, so prediction and truth are *sets* of intervals.
tIoU is |P ∩ G| / |P ∪ G| over the unions (overlapping intervals merged first), which reduces to
the usual single-moment tIoU for one interval each. R@1 at θ counts the (single, top-1) predicted
set whose tIoU ≥ θ. Off-by-one accuracy asks for the same number of merged intervals with both
boundaries of each (in time order) within ``tolerance_s`` — the paper's ±1 s by default.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Interval = tuple[float, float]


def merge(intervals: Iterable[Sequence[float]]) -> list[Interval]:
    """Sorted, non-overlapping union of ``intervals`` (touching ones are joined; empty ones dropped)."""
    out: list[list[float]] = []
    for s, e in sorted((float(a), float(b)) for a, b in intervals):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def total_length(intervals: Iterable[Sequence[float]]) -> float:
    return sum(e - s for s, e in merge(intervals))


def intersection_length(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> float:
    ma, mb = merge(a), merge(b)
    i = j = 0
    inter = 0.0
    while i < len(ma) and j < len(mb):
        lo, hi = max(ma[i][0], mb[j][0]), min(ma[i][1], mb[j][1])
        inter += max(0.0, hi - lo)
        if ma[i][1] < mb[j][1]:
            i += 1
        else:
            j += 1
    return inter


def tiou(pred: Iterable[Sequence[float]], gold: Iterable[Sequence[float]]) -> float:
    pred, gold = list(pred), list(gold)
    inter = intersection_length(pred, gold)
    union = total_length(pred) + total_length(gold) - inter
    return inter / union if union > 0 else 0.0


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
