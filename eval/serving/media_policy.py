"""Which media the server may read: allowed roots or buckets, size and duration limits.

Local paths are resolved (symlinks and ``..`` included) before the root check, so a URI cannot
escape its root; ``s3://bucket/prefix`` roots match by bucket and key prefix. Each refusal is an
:class:`MediaRefused` carrying the HTTP status the ingress returns (403, 404 or 413).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from infra import storage
from infra.media import probe
from infra.storage import StorageConfig


class MediaRefused(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class MediaInfoLite:
    uri: str
    size: int
    duration_s: float | None


class MediaPolicy:
    def __init__(self, roots: list[str], max_bytes: int, max_duration_s: float, storage_cfg: StorageConfig | None = None):
        self.storage_cfg = storage_cfg
        self.max_bytes, self.max_duration_s = max_bytes, max_duration_s
        self.local_roots = [os.path.realpath(r) for r in roots if not storage.is_remote(r)]
        self.remote_roots = [r.rstrip("/") for r in roots if storage.is_remote(r)]

    def _allowed(self, uri: str) -> str | None:
        """The normalised URI when it lies under a root, else None."""
        if storage.is_remote(uri):
            proto, path = storage.split_protocol(uri)
            if ".." in path.split("/"):
                return None
            norm = f"{proto}://{path}"
            for root in self.remote_roots:
                if norm == root or norm.startswith(root + "/"):
                    return norm
            return None
        path = os.path.realpath(uri[len("file://"):] if uri.startswith("file://") else uri)
        for root in self.local_roots:
            if path == root or path.startswith(root.rstrip("/") + "/"):
                return path
        return None

    def check(self, uri: str) -> MediaInfoLite:
        norm = self._allowed(uri)
        if norm is None:
            raise MediaRefused(403, f"media {uri!r} is outside the allowed roots")
        try:
            fs, path = storage.filesystem(norm, self.storage_cfg)
            size = int(fs.size(path))
        except FileNotFoundError:
            raise MediaRefused(404, f"media {uri!r} does not exist") from None
        except Exception as exc:
            raise MediaRefused(404, f"media {uri!r} cannot be read: {type(exc).__name__}") from None
        if size > self.max_bytes:
            raise MediaRefused(413, f"media {uri!r} is {size} bytes, over the limit of {self.max_bytes}")
        info = probe(norm, self.storage_cfg)
        if not info.ok:
            raise MediaRefused(415, f"media {uri!r} is not readable media: {info.error}")
        if info.duration_s is not None and info.duration_s > self.max_duration_s:
            raise MediaRefused(413, f"media {uri!r} lasts {info.duration_s:.1f} s, over the limit of {self.max_duration_s:g} s")
        return MediaInfoLite(norm, size, info.duration_s)
