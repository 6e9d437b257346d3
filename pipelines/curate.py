"""`amuse curate` / `ray job submit --working-dir . -- python pipelines/curate.py --config ...`.

Source adapters -> Ray Data (decode, perception actor pools) -> <output>/clips/<source>/*.parquet and
quarantine.parquet -> task builders -> samples.parquet and task_counts.json. Reruns resume: clip
ids already written are skipped. Under `ray job submit` it joins the job's cluster (RAY_ADDRESS);
otherwise it starts a private local one.
"""

from __future__ import annotations

import os
import sys

if not __package__:  # run as a script (ray job submit uploads the tree without installing it)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from infra.ray_utils import init_ray  # noqa: E402
from pipelines.args import parse_job_args  # noqa: E402
from pipelines.config import AppConfig  # noqa: E402
from pipelines.curation.pipeline import curate_clips  # noqa: E402


def run(cfg: AppConfig) -> dict[str, str]:
    """Curate clips and build task samples; returns {output name: uri}."""
    init_ray(cfg.ray, env=cfg.storage.env())
    summary, outputs = curate_clips(cfg)
    print(summary.table(), flush=True)
    if cfg.curate.build_tasks:
        from pipelines.curation.samples import build_samples, show_examples

        result = build_samples(cfg)
        outputs.update(result.outputs)
        print(result.table(), flush=True)
        show_examples(result, n=3)
    return outputs


def main(argv: list[str] | None = None) -> int:
    _, cfg = parse_job_args("amuse curate", "Curate clip records and AMUSE task samples from the raw sources.", argv)
    outputs = run(cfg)
    for name, uri in outputs.items():
        print(f"   {name:<20} {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
