"""Where full-backend weights come from: a configured local path or URI, read through ``infra.storage``.

Each backend names its files with its own config key (``perception.whisper.model_path`` ...). A key
that is unset falls back to a conventional file under ``perception.weights_dir``; a relative value
resolves under ``weights_dir``. Remote URIs (``s3://``) are copied once into
``perception.weights_cache`` so that torch / onnxruntime can open a local file. When nothing is
configured, or the file is absent, :class:`~perception.registry.BackendUnavailable` names the
expected file and the config key to set.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from infra import storage
from perception.config import PerceptionConfig
from perception.registry import BackendUnavailable


def weights_uri(cfg: PerceptionConfig, key: str, value: str | None, default_rel: str) -> str:
    """The URI (or local path) that config key ``perception.<key>`` designates; raises if nothing is configured."""
    root = cfg.weights_dir
    if value:
        if storage.is_remote(value) or os.path.isabs(os.path.expanduser(value)) or not root:
            return os.path.expanduser(value) if not storage.is_remote(value) else value
        return storage.join(root, value)
    if not root:
        raise BackendUnavailable(
            f"no weights configured for perception.{key}: set perception.{key} to the file, or perception.weights_dir "
            f"to a folder that holds {default_rel}"
        )
    return storage.join(os.path.expanduser(root) if not storage.is_remote(root) else root, default_rel)


def _missing(uri: str, key: str, default_rel: str) -> BackendUnavailable:
    return BackendUnavailable(
        f"weights not found: {uri} (set perception.{key}, or perception.weights_dir to a folder holding {default_rel})"
    )


def _cached(cfg: PerceptionConfig, uri: str) -> Path:
    digest = hashlib.sha1(uri.encode()).hexdigest()[:16]
    return Path(os.path.expanduser(cfg.weights_cache)) / digest / uri.rstrip("/").rsplit("/", 1)[-1]


def _fetch(uri: str, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".part{os.getpid()}")
    with storage.open_uri(uri, "rb") as src, open(tmp, "wb") as out:
        while chunk := src.read(1 << 22):
            out.write(chunk)
    os.replace(tmp, dest)  # atomic: a concurrent actor never sees half a file


def weights_file(cfg: PerceptionConfig, key: str, value: str | None, default_rel: str) -> str:
    """Local path of the weights file for ``perception.<key>`` (copied from a URI on first use)."""
    uri = weights_uri(cfg, key, value, default_rel)
    if not storage.is_remote(uri):
        if not os.path.isfile(uri):
            raise _missing(uri, key, default_rel)
        return uri
    dest = _cached(cfg, uri)
    if not dest.is_file():
        if not storage.exists(uri):
            raise _missing(uri, key, default_rel)
        _fetch(uri, dest)
    return str(dest)


def weights_folder(cfg: PerceptionConfig, key: str, value: str | None, default_rel: str, files: tuple[str, ...]) -> str:
    """Local folder holding ``files`` for ``perception.<key>`` (each copied from a URI on first use)."""
    uri = weights_uri(cfg, key, value, default_rel)
    if not storage.is_remote(uri):
        for name in files:
            if not os.path.isfile(os.path.join(uri, name)):
                raise _missing(os.path.join(uri, name), key, f"{default_rel}/{name}")
        return uri
    dest = _cached(cfg, uri)
    for name in files:
        target = dest / name
        if not target.is_file():
            src = storage.join(uri, name)
            if not storage.exists(src):
                raise _missing(src, key, f"{default_rel}/{name}")
            _fetch(src, target)
    return str(dest)
