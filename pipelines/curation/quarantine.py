"""The quarantine table: one row per file or label line the run could not use, with the reason.

Workers write one small Parquet file per quarantined item, named by its quarantine id, under
``<output>/quarantine_parts/``; a rerun overwrites the same name, so nothing duplicates. At the end
the driver merges those and the adapters' rows into ``<output>/quarantine.parquet``.
"""

from __future__ import annotations

from infra import storage
from infra.schemas import QUARANTINE_SCHEMA
from infra.storage import StorageConfig
from infra.validate import to_table
from pipelines.curation.atomic import write_table_atomic
from pipelines.sources.base import Quarantined


def write_quarantine_part(item: Quarantined, parts_dir: str, cfg: StorageConfig | None) -> None:
    table = to_table([item.to_row()], QUARANTINE_SCHEMA)
    write_table_atomic(table, storage.join(parts_dir, f"{item.quarantine_id}.parquet"), cfg)


def read_parts(parts_dir: str, cfg: StorageConfig | None) -> list[dict]:
    rows = []
    for uri in storage.list_files(parts_dir, ".parquet", cfg):
        if uri.rsplit("/", 1)[-1].startswith((".", "_")):
            continue
        rows += storage.read_parquet(uri, cfg).to_pylist()
    return rows


def write_quarantine_table(items: list[Quarantined], parts_dir: str, out_uri: str, cfg: StorageConfig | None) -> list[dict]:
    """Merge adapter items and worker parts (deduplicated by id, stable order) into one Parquet table."""
    by_id: dict[str, dict] = {}
    for row in [i.to_row() for i in items] + read_parts(parts_dir, cfg):
        row = {k: v for k, v in row.items() if k != "schema_version"}
        by_id.setdefault(row["quarantine_id"], row)
    rows = sorted(by_id.values(), key=lambda r: (r["source"], r["uri"], r["line"] or 0, r["stage"]))
    write_table_atomic(to_table(rows, QUARANTINE_SCHEMA), out_uri, cfg)
    return rows
