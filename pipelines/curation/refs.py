"""Driver side of curation: run the source adapters, and decide which clips this run still has to do.

Adapters only read label files and probe media headers, so they run in the driver; the heavy work
(decode, perception) is what Ray Data parallelizes. A clip reference travels through Ray Data as a
few flat columns the perception actors read plus ``ref_json``, the whole reference: nested label
lists stay out of Arrow's schema inference, whose per-block guesses (e.g. an all-null ``text``)
would not unify across blocks.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow.parquet as pq

from infra import storage
from pipelines.config import AppConfig
from pipelines.sources import ClipCut, ClipRef, Quarantined, get_adapter
from pipelines.sources.base import TurnsLeftOut


@dataclass
class Scan:
    refs: list[ClipRef] = field(default_factory=list)
    quarantined: list[Quarantined] = field(default_factory=list)
    per_source: Counter = field(default_factory=Counter)
    left_out: dict[str, TurnsLeftOut] = field(default_factory=dict)  # labelled turns no clip holds, per source
    seconds: float = 0.0


def source_root(cfg: AppConfig, name: str) -> str:
    return cfg.curate.source_dirs.get(name) or storage.join(cfg.run.corpus_dir, name)


def scan_sources(cfg: AppConfig) -> Scan:
    """Every clip reference of the configured sources, in a stable order, plus what was quarantined."""
    t0 = time.perf_counter()
    out = Scan()
    cut = ClipCut(cfg.curate.min_clip_s, cfg.curate.max_clip_s)
    options = {"media_dir": cfg.output_uri("media"), "frame_size": list(cfg.curate.friends_frame_size),
               "ava_merge_gap_s": cfg.curate.ava_merge_gap_s}
    for name in cfg.curate.sources:
        adapter = get_adapter(name)(source_root(cfg, name), cut, cfg.storage, options)
        kept = 0
        for item in adapter.scan():
            if isinstance(item, Quarantined):
                out.quarantined.append(item)
                continue
            if cfg.curate.max_clips_per_source is not None and kept >= cfg.curate.max_clips_per_source:
                continue
            out.refs.append(item)
            kept += 1
        out.per_source[name] = kept
        out.left_out[name] = adapter.left_out
    out.seconds = time.perf_counter() - t0
    return out


def ref_row(ref: ClipRef) -> dict:
    """The Ray Data row of one reference: what the actors read, plus the reference as JSON."""
    row = ref.to_row()
    return {
        "clip_id": row["clip_id"], "source": row["source"], "media_uri": row["media_uri"],
        "audio_uri": row["audio_uri"], "start_s": row["start_s"], "end_s": row["end_s"],
        "ref_json": json.dumps(row, sort_keys=True),
    }


def clips_root(cfg: AppConfig) -> str:
    return cfg.output_uri("clips")


def done_clip_ids(cfg: AppConfig) -> set[str]:
    """Clip ids in complete part files under <output>/clips/ (temporary names are never read)."""
    root = clips_root(cfg)
    ids: set[str] = set()
    for uri in storage.list_files(root, ".parquet", cfg.storage):
        name = uri.rsplit("/", 1)[-1]
        if name.startswith((".", "_")):
            continue
        fs, path = storage.arrow_filesystem(uri, cfg.storage)
        ids.update(pq.read_table(path, filesystem=fs, columns=["clip_id"]).column("clip_id").to_pylist())
    return ids
