"""Run the task builders over clip records: samples, their train/test split, and skip counts.

Pure functions over CLIP_SCHEMA rows (dicts); reading and writing tables is the caller's job
(``pipelines.curation.samples``). The split is by source video: every clip of an episode, meeting
or video lands on the same side, so no scene, speaker turn or CSNL pair leaks across.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from eval.tasks.base import Sample, Skip
from eval.tasks.config import TasksConfig
from eval.tasks.registry import get_task
from infra.ids import content_id


def assign_splits(videos: set[tuple[str, str]], test_fraction: float, seed: int) -> dict[tuple[str, str], str]:
    """(source, source_video_id) -> train | test. Per source, a seeded ranking puts the first
    round(test_fraction * n) videos in test (at least one when the source has two or more)."""
    by_source: dict[str, list[str]] = defaultdict(list)
    for source, vid in videos:
        by_source[source].append(vid)
    out = {}
    for source, vids in by_source.items():
        ranked = sorted(vids, key=lambda v: content_id("split", seed, source, v))
        n_test = round(test_fraction * len(ranked))
        if test_fraction > 0 and len(ranked) >= 2:
            n_test = min(max(n_test, 1), len(ranked) - 1)
        for i, v in enumerate(ranked):
            out[(source, v)] = "test" if i < n_test else "train"
    return out


@dataclass
class BuildResult:
    rows: list[dict] = field(default_factory=list)  # SAMPLE_SCHEMA rows (without schema_version)
    counts: dict[str, Counter] = field(default_factory=dict)  # task -> {train: n, test: n}
    skipped: dict[str, Counter] = field(default_factory=dict)  # task -> {reason: n}


def build_all(clips: list[dict], cfg: TasksConfig, seed: int) -> BuildResult:
    clips = sorted(clips, key=lambda c: c["clip_id"])  # a stable order makes the letters and draws reproducible
    splits = assign_splits({(c["source"], c["source_video_id"]) for c in clips}, cfg.test_fraction, seed)
    by_video: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for c in clips:
        by_video[(c["source"], c["source_video_id"])].append(c)
    res = BuildResult()
    for task in cfg.tasks:
        builder = get_task(task)(cfg, seed)
        samples: list[Sample] = []
        skipped: Counter = Counter()
        units = sorted(by_video.items()) if builder.multi_clip else [((c["source"], c["clip_id"]), [c]) for c in clips]
        for key, group in units:
            try:
                if builder.multi_clip:
                    samples += builder.build_video(group, builder.rng_for(*key))
                else:
                    samples += builder.build_clip(group[0], builder.rng_for(group[0]["clip_id"]))
            except Skip as s:
                skipped[s.reason] += 1
        counts: Counter = Counter()
        seen = set()
        for s in samples:
            if s.sample_id in seen:  # two draws that landed on the same question are one sample
                skipped["duplicate question"] += 1
                continue
            seen.add(s.sample_id)
            split = splits[(s.source, s.source_video_id)]
            row = s.to_row(split)
            builder.gold(row)  # the task must read its own reference (GoldError names the sample)
            res.rows.append(row)
            counts[split] += 1
        res.counts[task] = counts
        res.skipped[task] = skipped
    return res
