"""The train config the driver ships to Ray Train workers names only absolute local paths.

Workers run in the Ray session's folder (artifacts/raft), not the driver's: the shipped config's
relative ``train.model_cache_dir`` made every worker miss the tiny model the driver had built."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from pipelines.config import load_app_config
from raft.model import build_tiny

REPO = Path(__file__).resolve().parents[2]


def test_shipped_config_paths_become_absolute_for_workers(monkeypatch):
    monkeypatch.chdir(REPO)
    t = load_app_config(REPO / "configs" / "demo.yaml", ["train.samples_uri=out/s.parquet", "train.model_path=m/x",
                                                         "train.storage_path=s3://b/train"]).train
    assert not os.path.isabs(t.model_cache_dir)  # the case the workers failed on
    w = t.for_workers()
    assert w.model_cache_dir == str(REPO / t.model_cache_dir)
    assert w.samples_uri == str(REPO / "out" / "s.parquet") and w.model_path == str(REPO / "m" / "x")
    assert w.storage_path == "s3://b/train" and w.clips_uri is None  # URIs and unset paths stay as they are


def test_worker_finds_the_cache_the_driver_built(train_cfg, monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    relative = replace(train_cfg, model_cache_dir=os.path.relpath(train_cfg.model_cache_dir, REPO))
    shipped = relative.for_workers()  # what fit() sends
    built = build_tiny(shipped)  # the driver's build (cached by the session fixture)
    monkeypatch.chdir(tmp_path)  # a worker: another working folder
    assert build_tiny(shipped) == built and (built / "config.json").exists()
    assert not any(tmp_path.iterdir())  # nothing rebuilt in the worker's folder


def test_metrics_logger_resume_drops_the_steps_past_the_restored_checkpoint(tmp_path):
    """A worker died after step 5 was logged but the last checkpoint is step 3: the resumed logger
    keeps steps 0..3 (and drops a torn last line), so steps 4 and 5 appear once after the rerun."""
    import json

    from raft.metrics_log import MetricsLogger

    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "loss": s / 10}) + "\n" for s in range(6)) + '{"step": 6, "lo')
    log = MetricsLogger(str(tmp_path), resume_step=3)
    for s in (4, 5):
        log.write(s, {"loss": 1.0})
    log.close()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert [x["step"] for x in lines] == [0, 1, 2, 3, 4, 5]
    assert lines[3]["loss"] == 0.3 and lines[4]["loss"] == 1.0
    fresh = MetricsLogger(str(tmp_path))  # a run with no checkpoint starts the file again
    fresh.write(0, {"x": 1.0})
    fresh.close()
    assert [json.loads(x)["step"] for x in path.read_text().splitlines()] == [0]


def test_cluster_config_allows_several_worker_group_restarts():
    """Preemption and node loss are normal on a cluster: the shipped cluster config retries, the local default does not."""
    from pipelines.config import load_app_config
    from tests.conftest import REPO_ROOT

    assert load_app_config(REPO_ROOT / "configs" / "cluster.yaml").train.max_failures == 5
    assert load_app_config(None).train.max_failures == 1
