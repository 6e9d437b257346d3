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
