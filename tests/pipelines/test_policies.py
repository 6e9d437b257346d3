"""``pipelines.policies``: hf models without a path get a checkpoint before eval builds them."""

from __future__ import annotations

from pathlib import Path

from eval.config import ModelSpec
from eval.models.registry import resolve_policy_path
from eval.serving.app import adapter_context
from pipelines.config import AppConfig
from pipelines.policies import resolve_policy_paths

REPO = Path(__file__).resolve().parents[2]


def app_config(tmp_path) -> AppConfig:
    cfg = AppConfig()
    cfg.run.output_dir = str(tmp_path / "out")
    cfg.train.model_cache_dir = str(REPO / ".cache" / "raft_tiny")  # the tiny model the other tests build
    cfg.eval.models = [ModelSpec("tool_only", "tool_only"), ModelSpec("policy", "hf"),
                       ModelSpec("mine", "hf", path="/models/mine")]
    return cfg


def test_without_an_export_hf_models_get_the_tiny_base_model(tmp_path):
    from raft.model import build_tiny

    cfg = app_config(tmp_path)
    resolve_policy_paths(cfg)
    assert [m.path for m in cfg.eval.models] == [None, str(build_tiny(cfg.train)), "/models/mine"]
    cfg = app_config(tmp_path)
    cfg.train.model_path = "/models/base"
    resolve_policy_paths(cfg)
    assert cfg.eval.models[1].path == "/models/base"


def test_a_trained_export_is_left_to_eval(tmp_path):
    cfg = app_config(tmp_path)
    export = Path(cfg.output_uri("train", "export"))
    export.mkdir(parents=True)
    (export / "config.json").write_text("{}")
    resolve_policy_paths(cfg)
    assert cfg.eval.models[1].path is None
    assert resolve_policy_path(cfg.eval.models[1], adapter_context(cfg)) == str(export)
