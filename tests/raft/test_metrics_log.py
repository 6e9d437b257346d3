"""Training logs go to the run's storage (here a real S3 server on loopback), and resume appends."""

from __future__ import annotations

import json

import pytest

from infra import storage


def test_logs_land_in_s3_and_a_resume_appends(s3_bucket):
    from raft.metrics_log import MetricsLogger

    uri = f"{s3_bucket}/train/exp/logs"
    first = MetricsLogger(uri)
    first.write(1, {"loss": 1.0})
    # visible in storage after each step, before close (a killed rank 0 loses nothing already reported)
    assert [json.loads(x)["step"] for x in storage.read_bytes(f"{uri}/metrics.jsonl").decode().splitlines()] == [1]
    first.close()
    again = MetricsLogger(uri, resume_step=1)  # resumed from the step-1 checkpoint
    again.write(2, {"loss": 0.5})
    again.close()
    lines = [json.loads(x) for x in storage.read_bytes(f"{uri}/metrics.jsonl").decode().splitlines()]
    assert lines == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]
    events = [f for f in storage.list_files(uri) if "events.out.tfevents" in f]
    assert len(events) == 2 and all(storage.read_bytes(f) for f in events)


def test_tracker_without_its_package_is_a_config_error():
    import importlib.util

    from infra.config import ConfigError
    from pipelines.config import load_app_config

    if importlib.util.find_spec("mlflow") is not None:
        pytest.skip("mlflow is installed here: the missing-package error cannot be shown")
    with pytest.raises(ConfigError, match=r"train.tracker: 'mlflow' needs the mlflow package"):
        load_app_config(None, ["train.tracker=mlflow"])
    with pytest.raises(ConfigError, match=r"train.tracker: 'neptune' is not one of"):
        load_app_config(None, ["train.tracker=neptune"])
    assert load_app_config(None, []).train.tracker == "none"
