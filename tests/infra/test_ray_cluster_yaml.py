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


# The distribution each perception backend imports (perception.registry.require names the package).
# A backend missing here fails the test below, naming it.
BACKEND_DISTRIBUTION = {
    "silero": "silero-vad", "webrtc": "webrtcvad-wheels", "pyannote": "pyannote.audio", "resemblyzer": "resemblyzer",
    "whisper": "openai-whisper", "faster_whisper": "faster-whisper", "pocketsphinx": "pocketsphinx",
    "insightface": "insightface", "opencv_dlib": "dlib-bin", "syncnet": "syncnet-python",
    "light_asd": "python_speech_features", "motion_corr": "opencv-python-headless",
}


def _installed_by_setup_commands() -> set[str]:
    """Distribution names that ray_cluster.yaml's setup_commands install: every requirement file they
    name (-r) plus pyproject's dependencies (the `-e .` install)."""
    import re
    import tomllib

    names = set()
    for cmd in _load()["setup_commands"]:
        for req in re.findall(r"-r (\S+)", cmd):
            for line in (REPO_ROOT / req).read_text().splitlines():
                line = line.split("#")[0].strip()
                if line:
                    names.add(re.split(r"[=<>!~\[ ]", line)[0].lower())
        if "-e '.[dev]'" in cmd:
            for dep in tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]:
                names.add(re.split(r"[=<>!~\[ ]", dep)[0].lower())
    return names


def test_cluster_installs_what_configs_cluster_selects():
    from pipelines.config import load_app_config

    p = load_app_config(REPO_ROOT / "configs" / "cluster.yaml").perception
    selected = {p.vad, p.diarization, p.asr, p.faces, p.active_speaker}
    installed = _installed_by_setup_commands()
    missing = {b: BACKEND_DISTRIBUTION.get(b, "<unknown: add it to BACKEND_DISTRIBUTION>") for b in selected
               if BACKEND_DISTRIBUTION.get(b, "?").lower() not in installed}
    assert not missing, f"configs/cluster.yaml selects backends ray_cluster.yaml does not install: {missing}"
    if p.diarization == "pyannote":  # pyannote lives in its own folder, which the config must point at
        mount = next(iter(_load()["file_mounts"]))
        assert any("--target .cache/pyannote_site" in cmd for cmd in _load()["setup_commands"])
        assert p.pyannote.site_dir == f"{mount}/.cache/pyannote_site"
