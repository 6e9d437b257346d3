"""Source adapters, one module per dataset, looked up by name (``curate.sources`` in the config).

Each adapter reads its dataset's own published format under ``<corpus_dir>/<name>/`` (or a path
given in ``curate.source_dirs``) and yields :class:`ClipRef` and :class:`Quarantined` items.
"""

from __future__ import annotations

from pipelines.sources.ami import AmiAdapter
from pipelines.sources.ava import AvaAdapter
from pipelines.sources.base import ClipCut, ClipRef, LabelError, Quarantined, SourceAdapter
from pipelines.sources.friends_mmc import FriendsMmcAdapter
from pipelines.sources.voxceleb2 import VoxCeleb2Adapter
from pipelines.sources.youtube import YoutubeAdapter

ADAPTERS: dict[str, type[SourceAdapter]] = {
    cls.name: cls for cls in (AvaAdapter, AmiAdapter, VoxCeleb2Adapter, FriendsMmcAdapter, YoutubeAdapter)
}


def get_adapter(name: str) -> type[SourceAdapter]:
    try:
        return ADAPTERS[name]
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known: {sorted(ADAPTERS)}") from None


__all__ = ["ADAPTERS", "ClipCut", "ClipRef", "LabelError", "Quarantined", "SourceAdapter", "get_adapter"]
