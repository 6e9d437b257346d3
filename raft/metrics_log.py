"""Training metrics where the run keeps its outputs: JSONL and TensorBoard under the run's storage
path (local or ``s3://``, through ``infra.storage``), and optionally MLflow or W&B through Ray
Train's own integrations (``train.tracker``).

Rank 0 writes into a local staging folder and copies each file to ``log_uri`` after every step, so
on a multi-node cluster the logs land in the run's storage, not on whichever node held rank 0.

One line per step, also across a resume: a resumed run fetches the existing ``metrics.jsonl`` and
keeps only its lines up to the checkpoint it restored (``resume_step``); later lines were written by
the run that died after that checkpoint, and the resumed run writes those steps again (TensorBoard
purges them with ``purge_step``). A fresh run (``resume_step`` 0) rewrites step 0, so it starts empty.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra import storage
from infra.config import ConfigError
from infra.storage import StorageConfig


def _mlflow(config: dict, project: str, uri: str | None) -> tuple[Callable, Callable]:
    from ray.air.integrations.mlflow import setup_mlflow

    mlflow = setup_mlflow(config, tracking_uri=uri, experiment_name=project, rank_zero_only=True)
    return (lambda step, m: mlflow.log_metrics(m, step=step)), mlflow.end_run


def _wandb(config: dict, project: str, uri: str | None) -> tuple[Callable, Callable]:
    from ray.air.integrations.wandb import setup_wandb

    run = setup_wandb(config, project=project, rank_zero_only=True, **({"base_url": uri} if uri else {}))
    return (lambda step, m: run.log(m, step=step)), run.finish


# train.tracker -> (package it needs, setup returning (log(step, metrics), close()))
TRACKERS: dict[str, tuple[str, Callable[[dict, str, str | None], tuple[Callable, Callable]]]] = {
    "mlflow": ("mlflow", _mlflow), "wandb": ("wandb", _wandb),
}


def check_tracker(name: str) -> None:
    """ConfigError naming ``train.tracker`` when the tracker is unknown or its package is missing."""
    if name == "none":
        return
    if name not in TRACKERS:
        raise ConfigError(f"train.tracker: {name!r} is not one of {['none', *TRACKERS]}")
    package = TRACKERS[name][0]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(f"train.tracker: {name!r} needs the {package} package, which is not installed "
                          f"(pip install {package}, or set train.tracker=none)")


def lines_up_to(text: str, step: int) -> str:
    """The JSONL lines whose step is at most ``step``; a torn last line (a writer killed mid-line) is dropped."""
    kept = []
    for line in text.splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line + "\n")
        except (ValueError, KeyError, TypeError):
            continue
    return "".join(kept)


class MetricsLogger:
    """JSONL (appended across resumes) and TensorBoard scalars in ``log_uri``, plus the tracker; rank 0 only."""

    def __init__(self, log_uri: str, scfg: StorageConfig | None = None, tracker: str = "none",
                 tracker_project: str = "amuse-raft", tracker_uri: str | None = None, run_config: dict | None = None,
                 resume_step: int = 0):
        from tensorboardX import SummaryWriter

        self.log_uri, self.scfg = log_uri, scfg
        self.stage = Path(tempfile.mkdtemp(prefix="amuse-logs-"))
        jsonl_uri = storage.join(log_uri, "metrics.jsonl")
        if resume_step and storage.exists(jsonl_uri, scfg):  # a resumed run continues the file
            kept = lines_up_to(storage.read_bytes(jsonl_uri, scfg).decode(), resume_step)
            (self.stage / "metrics.jsonl").write_text(kept)
        self.jsonl = open(self.stage / "metrics.jsonl", "a")  # noqa: SIM115 (closed in close())
        # event files are named by the second and host: a suffix keeps a quick resume from overwriting the last one
        self.tb = SummaryWriter(str(self.stage), filename_suffix=f".{uuid.uuid4().hex[:8]}",
                                purge_step=resume_step + 1 if resume_step else None)
        self.track: tuple[Callable, Callable] | None = None
        if tracker != "none":
            check_tracker(tracker)
            self.track = TRACKERS[tracker][1](run_config or {}, tracker_project, tracker_uri)

    def write(self, step: int, metrics: dict[str, Any]) -> None:
        self.jsonl.write(json.dumps({"step": step, **metrics}) + "\n")
        self.jsonl.flush()
        for k, v in metrics.items():
            self.tb.add_scalar(k, v, step)
        self.tb.flush()
        if self.track:
            self.track[0](step, metrics)
        self.sync()

    def sync(self) -> None:
        """Copy every staged file to ``log_uri`` (small files: metrics.jsonl and TensorBoard events)."""
        for path in self.stage.iterdir():
            if path.is_file():
                storage.write_bytes(storage.join(self.log_uri, path.name), path.read_bytes(), self.scfg)

    def close(self) -> None:
        self.jsonl.close()
        self.tb.close()
        if self.track:
            self.track[1]()
        self.sync()
        shutil.rmtree(self.stage, ignore_errors=True)

