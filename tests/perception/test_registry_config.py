import pytest

from infra.config import ConfigError, describe, from_dict
from perception.active_speaker import ASD_BACKENDS
from perception.actors import STAGES, resources
from perception.asr import ASR_BACKENDS
from perception.config import PerceptionConfig
from perception.diarization import DIARIZATION_BACKENDS
from perception.faces import FACE_BACKENDS
from perception.vad import VAD_BACKENDS


def test_every_field_documented_and_defaults_resolve():
    rows = describe(PerceptionConfig)
    assert all(doc for _, _, _, doc in rows)
    c = PerceptionConfig()
    assert c.vad in VAD_BACKENDS.names() and c.diarization in DIARIZATION_BACKENDS.names()
    assert c.backend("asr") in ASR_BACKENDS.names() and c.faces in FACE_BACKENDS.names()
    assert c.active_speaker in ASD_BACKENDS.names()


def test_unknown_backend_names_the_key():
    with pytest.raises(ConfigError, match=r"perception\.asr: unknown backend 'nope'.*pocketsphinx"):
        ASR_BACKENDS.get("nope")


def test_bad_values_rejected_with_key():
    with pytest.raises(ConfigError, match=r"perception\.opencv_dlib\.detector"):
        from_dict(PerceptionConfig, {"opencv_dlib": {"detector": "cnn"}})
    with pytest.raises(ConfigError, match=r"resemblyzer\.max_speakers"):
        from_dict(PerceptionConfig, {"resemblyzer": {"max_speakers": "x"}}, prefix="perception")


def test_stage_order_and_resources():
    assert list(STAGES) == ["vad", "diarization", "asr", "faces", "active_speaker"]
    cfg = {"audio": {"num_cpus": 0.5, "concurrency": 2, "batch_size": 4}, "video": {"num_gpus": 0.25}}
    assert resources(cfg, "asr") == {"num_cpus": 0.5, "num_gpus": 0.0, "concurrency": 2, "batch_size": 4}
    assert resources(cfg, "faces")["num_gpus"] == 0.25
    with pytest.raises(KeyError, match="unknown perception stage"):
        resources(cfg, "lipread")
