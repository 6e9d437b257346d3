"""Name -> backend class registries, one per capability; config picks a backend by name.

Entries may be classes or ``"module:Class"`` strings. Strings keep full backends (whisper,
insightface, syncnet, pyannote) lazy: their heavy packages are imported only when that backend is
chosen, so the core install never needs them.
"""

from __future__ import annotations

import importlib
from typing import Any

from infra.config import ConfigError


class BackendUnavailable(RuntimeError):
    """A backend that is registered but cannot run here: its optional package or weights are missing.

    The message names the missing package, or the expected file and the config key to set.
    """


class Registry:
    def __init__(self, capability: str):
        self.capability = capability
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: Any) -> None:
        if name in self._entries:
            raise ValueError(f"{self.capability}: backend {name!r} registered twice")
        self._entries[name] = target

    def names(self) -> list[str]:
        return sorted(self._entries)

    def get(self, name: str) -> type:
        if name not in self._entries:
            raise ConfigError(
                f"perception.{self.capability}: unknown backend {name!r} (known: {', '.join(self.names())})"
            )
        target = self._entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module), attr)
            self._entries[name] = target
        return target

    def create(self, name: str, cfg: Any) -> Any:
        """Instantiate backend ``name`` with the whole PerceptionConfig (it reads its own sub-section)."""
        return self.get(name)(cfg)


def require(package: str, backend: str, extra: str = "make full") -> Any:
    """Import an optional package or raise BackendUnavailable naming it and how to install it."""
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise BackendUnavailable(
            f"backend {backend!r} needs the optional package {package!r}, which is not installed ({extra}): {exc}"
        ) from exc
