"""What a ``results.json`` was computed from, so a figure can be traced and reproduced: the
resolved config (secrets redacted), the git commit of the code, key package versions, each
model's identity (``eval.models.registry.model_identity``: checkpoint hash, or endpoint and remote
model id) and the hash of the evaluated sample set.
"""

from __future__ import annotations

import importlib.metadata
import subprocess
from pathlib import Path
from typing import Any

from infra.config import to_dict
from infra.ids import content_id

KEY_PACKAGES = ("torch", "transformers", "ray", "deepspeed", "numpy", "pyarrow", "openai", "fastapi",
                "pyannote.audio", "faster-whisper", "insightface", "av")
SECRET_KEYS = {"api_key", "secret", "key", "token", "password"}  # config fields whose values are never written out
REPO = Path(__file__).resolve().parents[2]


def git_commit(repo: Path = REPO) -> dict[str, Any]:
    """HEAD's commit and whether the tree has uncommitted changes; ``unknown`` outside a checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return {"commit": "unknown", "dirty": None}
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                               capture_output=True, text=True, timeout=10)
        return {"commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}


def package_versions(names: tuple[str, ...] = KEY_PACKAGES) -> dict[str, str | None]:
    """Installed version of each package (None: not installed)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def redact(value: Any) -> Any:
    """The config as plain values with every secret-named field that is set replaced by ``<redacted>``."""
    if isinstance(value, dict):
        return {k: ("<redacted>" if k in SECRET_KEYS and v else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def sample_set_hash(samples: list[dict]) -> str:
    """Content id of the evaluated samples (every field, in sample-id order)."""
    return content_id(sorted(samples, key=lambda s: s["sample_id"]))


def provenance(cfg: Any, samples: list[dict], model_identities: dict[str, str]) -> dict[str, Any]:
    return {
        "config": redact(to_dict(cfg)),
        "git": git_commit(),
        "packages": package_versions(),
        "models": {m.name: {"kind": m.kind, "identity": model_identities.get(m.name),
                            **({"base_url": m.base_url, "remote_model": m.remote_model or m.name} if m.kind == "openai" else {}),
                            **({"path": m.path} if m.kind == "hf" else {})}
                   for m in cfg.eval.models},
        "samples": {"n": len(samples), "hash": sample_set_hash(samples)},
    }
