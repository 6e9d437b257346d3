"""ray_cluster.yaml is checked by Ray's own launcher code, the same path `ray up` takes."""

import copy

import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from pipelines.config import REPO_ROOT


def _load():
    return yaml.safe_load((REPO_ROOT / "ray_cluster.yaml").read_text())


def test_cluster_yaml_passes_ray_validation():
    config = prepare_config(_load())
    validate_config(config)
    types = config["available_node_types"]
    assert types["gpu_workers"]["resources"]["GPU"] >= 1
    assert "GPU" not in types["cpu_workers"]["resources"]
    assert config["head_node_type"] == "head"
    assert any("requirements/constraints.txt" in c for c in config["setup_commands"])
    assert config["file_mounts"]["/home/ray/amuse-raft"] == "."


def test_ray_validation_rejects_a_broken_config():
    broken = copy.deepcopy(_load())
    broken["available_node_types"]["gpu_workers"]["bogus_field"] = 1
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(broken))
