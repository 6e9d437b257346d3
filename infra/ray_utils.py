"""Connecting to Ray the same way from `amuse <job>`, `ray job submit` and tests."""

from __future__ import annotations

import os
from dataclasses import dataclass

from infra.config import doc_field

# Environment every Ray process of ours should see: no telemetry, no hub downloads.
QUIET_ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "PYANNOTE_METRICS_ENABLED": "0",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@dataclass
class RayConfig:
    address: str | None = doc_field(
        None,
        "Ray address. None: join the cluster named by RAY_ADDRESS (set by `ray job submit`) or start a "
        "private local one; 'local': always start a private one; 'auto' or 'ray://host:port': join that cluster.",
    )
    num_cpus: int | None = doc_field(None, "CPUs for a private local cluster (None: all cores).")
    object_store_memory_mb: int | None = doc_field(
        None, "Object store size for a private local cluster, MiB (None: Ray's default)."
    )
    include_dashboard: bool = doc_field(False, "Start the dashboard with a private local cluster.")
    log_to_driver: bool = doc_field(True, "Forward worker logs to the driver.")


def init_ray(cfg: RayConfig, env: dict[str, str] | None = None):
    """ray.init per ``cfg``; returns the context. Idempotent within a process."""
    import ray

    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    if ray.is_initialized():
        return ray.get_runtime_context()
    runtime_env = {"env_vars": {**QUIET_ENV, **(env or {})}}
    address = cfg.address
    if address is None:
        address = os.environ.get("RAY_ADDRESS") or "local"
    kwargs = {"runtime_env": runtime_env, "log_to_driver": cfg.log_to_driver}
    if address == "local":
        kwargs.update(num_cpus=cfg.num_cpus, include_dashboard=cfg.include_dashboard)
        if cfg.object_store_memory_mb:
            kwargs["object_store_memory"] = cfg.object_store_memory_mb * 1024 * 1024
    return ray.init(address=address, **kwargs)
