import dataclasses

import pytest

from infra.config import ConfigError, describe, load_config
from pipelines.config import DEFAULT_CONFIG, REPO_ROOT, AppConfig, load_app_config


def test_every_shipped_config_loads():
    for path in sorted((REPO_ROOT / "configs").glob("*.yaml")):
        cfg = load_app_config(path)
        assert isinstance(cfg, AppConfig), path


def test_demo_config_values():
    cfg = load_app_config(DEFAULT_CONFIG)
    assert cfg.perception.profile == "accurate" and cfg.perception.backend("asr") == "faster_whisper"
    assert cfg.perception.audio.num_cpus == 0.5
    assert cfg.run.corpus_dir == "data/corpus"


def test_overrides_apply_with_types():
    cfg = load_app_config(
        DEFAULT_CONFIG,
        ["perception.asr=whisper", "perception.fps_sample=2", "perception.num_speakers=3", "run.seed=7",
         "ray.address=null", "perception.video.concurrency=2"],
    )
    assert cfg.perception.asr == "whisper" and cfg.perception.backend("asr") == "whisper"
    assert cfg.perception.fps_sample == 2.0 and isinstance(cfg.perception.fps_sample, float)
    assert cfg.perception.num_speakers == 3
    assert cfg.run.seed == 7
    assert cfg.ray.address is None
    assert cfg.perception.video.concurrency == 2


def test_unknown_key_is_rejected_by_name(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("perception:\n  asrr: whisper\n")
    with pytest.raises(ConfigError, match=r"perception\.asrr"):
        load_app_config(bad)
    with pytest.raises(ConfigError, match=r"run\.nmae"):
        load_app_config(DEFAULT_CONFIG, ["run.nmae=x"])
    with pytest.raises(ConfigError, match=r"unknown config key 'bogus'"):
        load_app_config(None, ["bogus=1"])


def test_wrong_type_is_rejected_by_name(tmp_path):
    with pytest.raises(ConfigError, match=r"run\.seed: expected int"):
        load_app_config(DEFAULT_CONFIG, ["run.seed=abc"])
    with pytest.raises(ConfigError, match=r"perception\.audio\.num_cpus: expected float"):
        load_app_config(DEFAULT_CONFIG, ["perception.audio.num_cpus=[1]"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("perception: 3\n")
    with pytest.raises(ConfigError, match=r"perception: expected a mapping"):
        load_app_config(bad)


def test_validate_hook_reports_key():
    with pytest.raises(ConfigError, match=r"perception\.fps_sample"):
        load_app_config(DEFAULT_CONFIG, ["perception.fps_sample=0"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="nope.yaml"):
        load_config(AppConfig, tmp_path / "nope.yaml")


def test_every_field_is_documented():
    rows = describe(AppConfig)
    assert len(rows) > 20
    undocumented = [key for key, _, _, doc in rows if not doc.strip()]
    assert undocumented == []


def test_defaults_are_not_shared_between_instances():
    a, b = AppConfig(), AppConfig()
    a.perception.audio.concurrency = 5
    assert b.perception.audio.concurrency == 1
    assert dataclasses.is_dataclass(a.run)
