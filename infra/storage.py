"""One way to reach local paths and ``s3://`` URIs.

Everything in the project goes through :func:`filesystem` (fsspec) or :func:`arrow_filesystem`
(pyarrow, for Parquet and Ray Data), so the same code runs against a laptop folder, MinIO, moto
on loopback or AWS.  Credentials and endpoint come from :class:`StorageConfig`, falling back to
the standard ``AWS_*`` environment variables so Ray workers inherit them via ``runtime_env``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import IO, Any

import fsspec
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from infra.config import doc_field
from infra.ids import bytes_fingerprint


@dataclass
class StorageConfig:
    endpoint_url: str | None = doc_field(
        None, "S3-compatible endpoint (e.g. http://127.0.0.1:9000); None uses AWS_ENDPOINT_URL or AWS itself."
    )
    region: str = doc_field("eu-west-1", "S3 region. us-east-1 breaks bucket creation on some S3 servers.")
    anon: bool = doc_field(False, "Access S3 anonymously (public buckets).")
    key: str | None = doc_field(None, "Access key id; None uses AWS_ACCESS_KEY_ID / the default chain.")
    secret: str | None = doc_field(None, "Secret access key; None uses AWS_SECRET_ACCESS_KEY / the default chain.")

    def resolved(self) -> StorageConfig:
        """Fill unset fields from the environment, so driver and workers agree."""
        return StorageConfig(
            endpoint_url=self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None,
            region=os.environ.get("AWS_DEFAULT_REGION", self.region) if self.region == "eu-west-1" else self.region,
            anon=self.anon,
            key=self.key or os.environ.get("AWS_ACCESS_KEY_ID") or None,
            secret=self.secret or os.environ.get("AWS_SECRET_ACCESS_KEY") or None,
        )

    def env(self) -> dict[str, str]:
        """Environment variables that reproduce this config in another process (Ray runtime_env)."""
        r = self.resolved()
        out = {"AWS_DEFAULT_REGION": r.region}
        if r.endpoint_url:
            out["AWS_ENDPOINT_URL"] = r.endpoint_url
        if r.key:
            out["AWS_ACCESS_KEY_ID"] = r.key
        if r.secret:
            out["AWS_SECRET_ACCESS_KEY"] = r.secret
        return out


def is_remote(uri: str) -> bool:
    return "://" in uri and not uri.startswith("file://")


def split_protocol(uri: str) -> tuple[str, str]:
    if "://" in uri:
        proto, path = uri.split("://", 1)
        return proto, path
    return "file", uri


def filesystem(uri: str, cfg: StorageConfig | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(fsspec filesystem, path inside it) for a local path or URI."""
    proto, path = split_protocol(uri)
    if proto in ("s3", "s3a"):
        r = (cfg or StorageConfig()).resolved()
        fs = fsspec.filesystem(
            "s3",
            anon=r.anon,
            key=r.key,
            secret=r.secret,
            client_kwargs={"endpoint_url": r.endpoint_url, "region_name": r.region},
            # s3fs caches listings per instance; a writer and a reader in one process must agree.
            use_listings_cache=False,
        )
        return fs, path
    if proto == "file":
        return fsspec.filesystem("file"), os.path.abspath(path)
    return fsspec.filesystem(proto), path


def arrow_filesystem(uri: str, cfg: StorageConfig | None = None) -> tuple[pafs.FileSystem, str]:
    """(pyarrow filesystem, path) for Parquet I/O and Ray Data's ``filesystem=`` argument."""
    proto, path = split_protocol(uri)
    if proto in ("s3", "s3a"):
        r = (cfg or StorageConfig()).resolved()
        kwargs: dict[str, Any] = {"region": r.region, "anonymous": r.anon}
        if r.key and r.secret:
            kwargs.update(access_key=r.key, secret_key=r.secret)
        if r.endpoint_url:
            scheme, _, host = r.endpoint_url.partition("://")
            kwargs.update(endpoint_override=host or scheme, scheme=scheme if host else "https")
        return pafs.S3FileSystem(**kwargs), path
    if proto == "file":
        return pafs.LocalFileSystem(), os.path.abspath(path)
    fs, p = filesystem(uri, cfg)
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), p


def open_uri(uri: str, mode: str = "rb", cfg: StorageConfig | None = None) -> IO[Any]:
    fs, path = filesystem(uri, cfg)
    if "w" in mode and not is_remote(uri):
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return fs.open(path, mode)


def exists(uri: str, cfg: StorageConfig | None = None) -> bool:
    fs, path = filesystem(uri, cfg)
    return fs.exists(path)


def makedirs(uri: str, cfg: StorageConfig | None = None) -> None:
    fs, path = filesystem(uri, cfg)
    fs.makedirs(path, exist_ok=True)


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


def list_files(uri: str, suffix: str = "", cfg: StorageConfig | None = None) -> list[str]:
    """All files under ``uri`` (recursive) ending with ``suffix``, as URIs in the same scheme, sorted."""
    fs, path = filesystem(uri, cfg)
    if not fs.exists(path):
        return []
    proto, _ = split_protocol(uri)
    found = sorted(p for p in fs.find(path) if p.endswith(suffix))
    return [f"{proto}://{p}" if proto != "file" else p for p in found]


def read_bytes(uri: str, cfg: StorageConfig | None = None) -> bytes:
    with open_uri(uri, "rb", cfg) as f:
        return f.read()


def write_bytes(uri: str, data: bytes, cfg: StorageConfig | None = None) -> None:
    with open_uri(uri, "wb", cfg) as f:
        f.write(data)


def fingerprint(uri: str, cfg: StorageConfig | None = None, block: int = 1 << 20) -> str:
    """Cheap content fingerprint (size + first and last MiB) used in clip ids."""
    fs, path = filesystem(uri, cfg)
    size = int(fs.size(path))
    with fs.open(path, "rb") as f:
        head = f.read(block)
        if size > block:
            f.seek(max(size - block, block))
            tail = f.read(block)
        else:
            tail = b""
    return bytes_fingerprint(head, tail, size)


def write_parquet(table: pa.Table, uri: str, cfg: StorageConfig | None = None) -> None:
    fs, path = arrow_filesystem(uri, cfg)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    pq.write_table(table, path, filesystem=fs)


def read_parquet(uri: str, cfg: StorageConfig | None = None, schema: pa.Schema | None = None) -> pa.Table:
    """Read one Parquet file or a (hive-partitioned) directory of them."""
    fs, path = arrow_filesystem(uri, cfg)
    return pq.read_table(path, filesystem=fs, schema=schema)
