"""`amuse train` / `ray job submit ... python pipelines/train.py --config configs/<name>.yaml`: RAFT alignment.

Reads curation's samples.parquet and clip records (clips/) (``train.samples_uri`` / ``train.clips_uri``,
default ``<output_dir>/<run>/``), trains with Ray Train + DeepSpeed (``raft.trainer``), and returns
the URIs of the checkpoint, metrics and the exported HF-format aligned model.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from infra import storage
from infra.config import to_dict
from infra.ray_utils import init_ray
from pipelines.args import parse_job_args
from pipelines.config import AppConfig


def _worker_env(cfg: AppConfig) -> dict[str, str]:
    env = dict(cfg.storage.env())
    env["DS_ACCELERATOR"] = os.environ.get("DS_ACCELERATOR", "cuda" if cfg.train.use_gpu else "cpu")
    # one cacheable place for DeepSpeed's C++ builds (the shm comm op compiles on first use)
    env["TORCH_EXTENSIONS_DIR"] = os.environ.get("TORCH_EXTENSIONS_DIR", str(Path(".cache/torch_extensions").resolve()))
    return env


def run(cfg: AppConfig) -> dict[str, str]:
    from raft.trainer import fit

    env = _worker_env(cfg)
    os.environ.update(env)
    init_ray(cfg.ray, env=env)
    t = cfg.train
    samples = t.samples_uri or cfg.output_uri("samples.parquet")
    clips = t.clips_uri or cfg.output_uri("clips")
    for uri in (samples, clips):
        if not storage.exists(uri, cfg.storage):
            raise SystemExit(f"train: {uri} not found; run curation first or set train.samples_uri/clips_uri")
    storage_path = t.storage_path or cfg.output_uri("train")
    # JSONL and TensorBoard go beside the checkpoints, in the run's storage (local or s3://), never a worker's disk
    log_uri = storage.join(storage_path, t.experiment_name, "logs")
    return fit(t, samples, clips, storage_path, log_uri, cfg.storage, perception=to_dict(cfg.perception))


def main(argv: list[str] | None = None) -> int:
    _, cfg = parse_job_args("amuse train", "RAFT alignment on curated AMUSE samples (Ray Train + DeepSpeed).", argv)
    for name, uri in run(cfg).items():
        print(f"{name:<20} {uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
