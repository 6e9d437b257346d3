"""A real Serve app on 127.0.0.1 for endpoint tests: private Ray, fake-backend tools, tiny media."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

API_KEY = "test-key-123"


def write_wav(path: Path, seconds: float, sr: int = 16000) -> str:
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sr, subtype="PCM_16")
    return str(path)


def media_dir(root: Path) -> dict[str, str]:
    allowed = root / "allowed"
    allowed.mkdir()
    (root / "outside").mkdir()
    return {
        "root": str(allowed),
        "ok": write_wav(allowed / "clip.wav", 2.0),
        "slow": write_wav(allowed / "slow_clip.wav", 2.0),
        "broken": write_wav(allowed / "broken_clip.wav", 2.0),
        "big": write_wav(allowed / "big.wav", 6.0),  # 192 kB > the 150 kB limit
        "long": write_wav(allowed / "long.wav", 4.5, sr=8000),  # 72 kB but 4.5 s > 4 s
        "outside": write_wav(root / "outside" / "clip.wav", 1.0),
    }


def tiny_policy_path() -> str:
    """The tiny random thinker (built once, cached under .cache/raft_tiny) as an hf checkpoint folder."""
    from raft.config import TrainConfig
    from raft.model import build_tiny

    return str(build_tiny(TrainConfig(model_cache_dir=str(Path(__file__).resolve().parents[2] / ".cache" / "raft_tiny"))))


def serve_config(media: dict[str, str], port: int, models: str | None = None, **serve_overrides):
    from pipelines.config import load_app_config

    overrides = [
        "serve.host=127.0.0.1",
        f"serve.port={port}",
        f"serve.api_key={API_KEY}",
        "serve.tools_module=fake_tools",
        f"serve.allowed_media_roots=[{media['root']}]",
        "serve.max_media_bytes=150000",
        "serve.max_media_duration_s=4.0",
        "serve.max_body_bytes=1048576",
        "serve.tool_timeout_s=0.5",
        "serve.request_timeout_s=20",
        f"eval.models={models or '[{name: tool_only, kind: tool_only}, {name: random, kind: random}]'}",
        *[f"serve.{k}={v}" for k, v in serve_overrides.items()],
    ]
    return load_app_config(None, overrides)


def start_ray():
    import ray

    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.environ.get("PYTHONPATH", ""), "RAY_USAGE_STATS_ENABLED": "0"}})
