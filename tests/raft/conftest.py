"""RAFT fixtures: the tiny model config (built once, cached under .cache/), a synthetic dataset, Ray."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from raft_synth import build_dataset

REPO_ROOT = Path(__file__).resolve().parents[2]

os.environ.setdefault("DS_ACCELERATOR", "cpu")
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(REPO_ROOT / ".cache" / "torch_extensions"))
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def train_cfg():
    from raft.config import TrainConfig
    from raft.model import build_tiny

    cfg = TrainConfig(model_cache_dir=str(REPO_ROOT / ".cache" / "raft_tiny"), k=3, batch_size=2,
                      max_new_tokens=16, steps=3, checkpoint_every=1, reward_actors=0)
    build_tiny(cfg)
    return cfg


@pytest.fixture(scope="session")
def policy(train_cfg):
    from raft.model import OmniPolicy

    return OmniPolicy.build(train_cfg)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    return build_dataset(tmp_path_factory.mktemp("raftdata"))


@pytest.fixture
def ray_local():
    import ray

    from infra.ray_utils import QUIET_ENV

    ray.init(address="local", num_cpus=2, include_dashboard=False, runtime_env={"env_vars": dict(QUIET_ENV)})
    yield ray
    ray.shutdown()
