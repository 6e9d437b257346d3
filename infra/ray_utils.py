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
    ctx = ray.init(address=address, **kwargs)
    if address == "local":  # this driver owns that Ray: nothing of it may outlive the driver, even a SIGKILLed one
        from infra import ray_reaper

        ray_reaper.start(ray._private.worker._global_node.get_session_dir_path())
    return ctx


def head_processes(temp_dir: str, gcs_port: int | None = None) -> list:
    """The live processes of one Ray cluster (psutil.Process), found by its temp dir or GCS port.

    Every process of a head names its temp dir (or its GCS port) on its command line, except those that
    rewrite it: the raylet's ``ray::DashboardAgent`` and ``ray::RuntimeEnvAgent`` (and workers) show only
    their title, so they are found as descendants of the head's processes, or, once orphaned, by the log
    files they hold open under the temp dir."""
    import psutil

    def named(p: psutil.Process) -> bool:
        args = p.info["cmdline"] or []
        return any(temp_dir + "/" in a or a.endswith(temp_dir)
                   or (gcs_port is not None and (f"127.0.0.1:{gcs_port}" in a or f"port={gcs_port}" in a))
                   for a in args)

    def holds_files(p: psutil.Process) -> bool:
        return p.info["name"].startswith("ray::") and any(f.path.startswith(temp_dir + "/") for f in p.open_files())

    found: dict[int, psutil.Process] = {}
    for p in psutil.process_iter(["cmdline", "name"]):
        try:
            if p.pid != os.getpid() and (named(p) or holds_files(p)):
                found[p.pid] = p
                found.update({c.pid: c for c in p.children(recursive=True)})
        except psutil.Error:
            pass
    found.pop(os.getpid(), None)
    return list(found.values())


def stop_head(temp_dir: str, gcs_port: int | None = None, timeout_s: float = 15.0, worker_grace_s: float = 2.0
              ) -> list[int]:
    """Stop one `ray start --head` by its own processes (:func:`head_processes`); returns the pids stopped.

    `ray stop` has no address option and stops every Ray process on the machine, other users'
    included. Orphaned agents matter: when their raylet dies they log "Raylet is dead! Exiting" and
    then hang in interpreter exit for about a minute, ignoring SIGTERM (Ray 2.60: after SIGKILLing a
    ray.init driver, both agents lived on under PID 1 for 70-80 s, twice, with SIGTERM caught but never
    handled), so what is still alive after ``timeout_s`` is killed. Processes named ``ray::...`` (those
    agents, and workers) get only ``worker_grace_s``: waiting the full timeout for agents known to
    ignore SIGTERM cost every stop about 15 s.
    """
    import psutil

    procs = head_processes(temp_dir, gcs_port)
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=min(worker_grace_s, timeout_s))
    core = [p for p in alive if not _ray_worker_like(p)]
    _, core_alive = psutil.wait_procs(core, timeout=max(0.0, timeout_s - worker_grace_s))
    alive = core_alive + [p for p in alive if p not in core]
    for p in alive + head_processes(temp_dir, gcs_port):
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=10)
    return [p.pid for p in procs]


def _ray_worker_like(p) -> bool:
    """A raylet's agent or worker: they rename themselves ``ray::<what>``."""
    import psutil

    try:
        return p.name().startswith("ray::")
    except psutil.Error:
        return False


if __name__ == "__main__":  # `python -m infra.ray_utils stop-head TEMP_DIR` (used by `make demo`)
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "stop-head":
        raise SystemExit("usage: python -m infra.ray_utils stop-head TEMP_DIR")
    print(f"stopped {len(stop_head(sys.argv[2]))} Ray processes under {sys.argv[2]}")
