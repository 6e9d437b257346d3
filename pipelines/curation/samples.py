"""Task samples from the written clip records: samples.parquet and task_counts.json.

Samples are rebuilt from every clip under <output>/clips/ on each run (cheap, and deterministic
for a given seed), so a resumed run ends with the same samples as an uninterrupted one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pyarrow.parquet as pq
from tabulate import tabulate

from eval.tasks.build import BuildResult, build_all
from infra import storage
from infra.schemas import CLIP_SCHEMA, SAMPLE_SCHEMA
from infra.validate import to_table
from pipelines.config import AppConfig
from pipelines.curation.atomic import write_table_atomic
from pipelines.curation.refs import clips_root


@dataclass
class SamplesResult:
    build: BuildResult
    outputs: dict[str, str] = field(default_factory=dict)

    def counts(self) -> dict:
        return {task: {"train": c.get("train", 0), "test": c.get("test", 0), "total": sum(c.values()),
                       "skipped": dict(self.build.skipped.get(task, {}))}
                for task, c in self.build.counts.items()}

    def table(self) -> str:
        rows = [[t, c["train"], c["test"], c["total"], ", ".join(f"{k}: {v}" for k, v in sorted(c["skipped"].items()))]
                for t, c in self.counts().items()]
        return tabulate(rows, headers=["task", "train", "test", "samples", "skipped (reason: clips)"], tablefmt="github")


def read_clips(cfg: AppConfig) -> list[dict]:
    rows: list[dict] = []
    for uri in storage.list_files(clips_root(cfg), ".parquet", cfg.storage):
        if uri.rsplit("/", 1)[-1].startswith((".", "_")):
            continue
        fs, path = storage.arrow_filesystem(uri, cfg.storage)
        rows += pq.read_table(path, filesystem=fs, schema=CLIP_SCHEMA).to_pylist()
    return rows


def build_samples(cfg: AppConfig) -> SamplesResult:
    result = SamplesResult(build_all(read_clips(cfg), cfg.curate.tasks, cfg.run.seed))
    samples_uri = cfg.output_uri("samples.parquet")
    counts_uri = cfg.output_uri("task_counts.json")
    rows = sorted(result.build.rows, key=lambda r: (r["task"], r["sample_id"]))
    write_table_atomic(to_table(rows, SAMPLE_SCHEMA), samples_uri, cfg.storage)
    storage.write_bytes(counts_uri, json.dumps(result.counts(), indent=2, sort_keys=True).encode(), cfg.storage)
    result.outputs = {"samples": samples_uri, "task counts": counts_uri}
    return result


def show_examples(result: SamplesResult, n: int = 3) -> None:
    """Print up to n sample questions, one per task first, for the demo."""
    seen, shown = set(), 0
    for row in result.build.rows:
        if row["task"] in seen or shown >= n:
            continue
        seen.add(row["task"])
        shown += 1
        print(f"\n[{row['task']} / {row['split']} / {row['source']}] {row['question']}")
        for i, opt in enumerate(row["options"] or []):
            print(f"   {'ABCDEFGHIJ'[i]}. {opt}")
        print(f"   answer: {row['answer'][:200]}")
