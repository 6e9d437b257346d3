"""Write stage: perception output + clip reference -> validated CLIP_SCHEMA rows -> Parquet part files.

Runs as a Ray Data task at the end of the pipeline. Each batch becomes one part file per source,
``<output>/clips/<source>/part-<hash of its clip ids>.parquet``, written atomically, so a
kill leaves only whole files and the rerun's skip list (``refs.done_clip_ids``) is exact. A row that
breaks the contract is quarantined (stage ``record``) with the validator's message, which names
the field. The stage returns one small stats row per clip for the driver's summary.

The source directories are plain names, not hive ``source=<x>`` ones: each file keeps its own
``source`` column, and a hive key of the same name would clash with it for any reader that does
not pass CLIP_SCHEMA (pyarrow: "Unable to merge: Field source has incompatible types").
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from typing import Any

import pandas as pd
import pyarrow as pa

from infra import storage
from infra.ids import content_id
from infra.schemas import CLIP_SCHEMA, SCHEMA_VERSION
from infra.storage import StorageConfig
from infra.validate import SchemaError, validate_row
from pipelines.curation.atomic import write_table_atomic
from pipelines.curation.quarantine import write_quarantine_part
from pipelines.sources.base import Quarantined

STATS_COLUMNS = ["clip_id", "source", "status", "duration_s", "timings_json", "failed_stages_json",
                 "actor_pid", "actor_ready_at", "actor_load_s"]
ACTOR_STAMPS = STATS_COLUMNS[-3:]  # from fused actors (``fused.py``); None in the per-stage layout


def conform(value: Any, tp: pa.DataType) -> Any:
    """A pandas/numpy/Arrow value as the plain Python the schema wants: NaN -> None, numpy -> list,
    numpy scalars -> int/float, struct keys outside the schema dropped (backend-internal extras)."""
    if value is None:
        return None
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if pa.types.is_list(tp):
        return [conform(v, tp.value_type) for v in value]
    if pa.types.is_struct(tp):
        return {tp.field(i).name: conform(value.get(tp.field(i).name), tp.field(i).type) for i in range(tp.num_fields)}
    if pa.types.is_integer(tp) and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def clip_record(row: dict) -> dict:
    """One CLIP_SCHEMA row from the pipeline row (reference JSON + decode facts + perception columns)."""
    ref = json.loads(row["ref_json"])
    rec: dict[str, Any] = {"schema_version": SCHEMA_VERSION}
    for field in CLIP_SCHEMA:
        if field.name == "schema_version":
            continue
        value = row[field.name] if field.name in row and field.name != "ref_json" else ref.get(field.name)
        if field.name.startswith("gt_") or field.name in ("quality_flags",):
            value = ref.get(field.name)  # labels come only from the adapter
        rec[field.name] = conform(value, field.type)
    rec["quality_flags"] = rec["quality_flags"] or []
    rec["errors"] = rec["errors"] or []
    return rec


def _stamp(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def write_batch(batch: pd.DataFrame, *, clips_dir: str, quarantine_dir: str, storage_cfg: dict,
                stages: list[str]) -> pd.DataFrame:
    cfg = StorageConfig(**storage_cfg)
    by_source: dict[str, list[dict]] = defaultdict(list)
    stats = []
    for i, row in enumerate(batch.to_dict("records")):
        rec = clip_record(row)
        timings = {s: float(row[f"t_{s}"]) for s in ["decode", *stages] if row.get(f"t_{s}") is not None}
        failed = sorted({e["stage"] for e in rec["errors"]})
        status = "ok"
        try:
            validate_row(rec, CLIP_SCHEMA, i)
            by_source[rec["source"]].append(rec)
        except SchemaError as err:
            status = "quarantined"
            write_quarantine_part(Quarantined(rec["source"], rec["media_uri"], "record",
                                              f"clip {rec['clip_id']}: {err}"), quarantine_dir, cfg)
        stats.append({"clip_id": rec["clip_id"], "source": rec["source"], "status": status,
                      "duration_s": rec["duration_s"], "timings_json": json.dumps(timings),
                      "failed_stages_json": json.dumps(failed), **{k: _stamp(row.get(k)) for k in ACTOR_STAMPS}})
    t0 = time.perf_counter()
    for source, recs in by_source.items():
        recs.sort(key=lambda r: r["clip_id"])
        name = content_id(*[r["clip_id"] for r in recs])
        table = pa.Table.from_pylist(recs, schema=CLIP_SCHEMA)
        write_table_atomic(table, storage.join(clips_dir, source, f"part-{name}.parquet"), cfg)
    per_clip = (time.perf_counter() - t0) / max(1, len(stats))  # one write per batch, shared by its clips
    for st in stats:
        if st["status"] == "ok":
            st["timings_json"] = json.dumps({**json.loads(st["timings_json"]), "write": per_clip})
    return pd.DataFrame(stats, columns=STATS_COLUMNS)
