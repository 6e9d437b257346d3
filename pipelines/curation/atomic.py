"""All-or-nothing Parquet writes, so a run killed mid-write leaves nothing a rerun would trust.

Locally the table goes to a dot-named temporary file beside the target (readers skip dot files)
and is renamed into place; on s3:// an object only appears when its upload completes.
"""

from __future__ import annotations

import os
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from infra import storage
from infra.storage import StorageConfig


def write_table_atomic(table: pa.Table, uri: str, cfg: StorageConfig | None = None) -> None:
    if storage.is_remote(uri):
        storage.write_parquet(table, uri, cfg)
        return
    path = os.path.abspath(uri)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".tmp-{uuid.uuid4().hex}.parquet")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
