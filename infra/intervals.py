"""Interval algebra on [start, end] seconds: the one place where intervals are merged and measured.

Task builders (STG answers, solo stretches), the STG metrics (tIoU, off-by-one) and RAFT's reward
components all read intervals through these functions, so "the union of a speaker's turns" means
the same thing when a sample is built, when it is scored and when a candidate is rewarded.
Intervals are sorted before merging; empty or reversed ones (end <= start) are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

Interval = tuple[float, float]


def merge(intervals: Iterable[Sequence[float]], gap: float = 0.0) -> list[Interval]:
    """Sorted, non-overlapping union; intervals that touch or sit at most ``gap`` seconds apart join."""
    out: list[list[float]] = []
    for s, e in sorted((float(a), float(b)) for a, b in intervals):
        if e <= s:
            continue
        if out and s <= out[-1][1] + gap:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return [(s, e) for s, e in out]


def total_length(intervals: Iterable[Sequence[float]]) -> float:
    """Seconds covered by the union of ``intervals``."""
    return sum(e - s for s, e in merge(intervals))


def intersect(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> list[Interval]:
    """The union of ``a`` intersected with the union of ``b``."""
    ma, mb = merge(a), merge(b)
    out: list[Interval] = []
    i = j = 0
    while i < len(ma) and j < len(mb):
        lo, hi = max(ma[i][0], mb[j][0]), min(ma[i][1], mb[j][1])
        if hi > lo:
            out.append((lo, hi))
        if ma[i][1] < mb[j][1]:
            i += 1
        else:
            j += 1
    return out


def intersection_length(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> float:
    return sum(e - s for s, e in intersect(a, b))


def subtract(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> list[Interval]:
    """The parts of the union of ``a`` that no interval of ``b`` covers."""
    out: list[Interval] = []
    mb = merge(b)
    for s, e in merge(a):
        cur = s
        for x, y in mb:
            if y <= cur or x >= e:
                continue
            if x > cur:
                out.append((cur, x))
            cur = max(cur, y)
        if cur < e:
            out.append((cur, e))
    return out


def tiou(pred: Iterable[Sequence[float]], gold: Iterable[Sequence[float]]) -> float:
    """Temporal IoU of two interval sets: |P ∩ G| / |P ∪ G| over their unions (0 when both are empty)."""
    pred, gold = list(pred), list(gold)
    inter = intersection_length(pred, gold)
    union = total_length(pred) + total_length(gold) - inter
    return inter / union if union > 0 else 0.0


def shift(intervals: Iterable[Sequence[float]], offset: float) -> list[Interval]:
    """Move intervals by ``offset`` seconds (clip-relative <-> media-file time)."""
    return [(float(a) + offset, float(b) + offset) for a, b in intervals]
