"""Which media the server may read: allowed roots or buckets, size and duration limits.

Local paths are resolved (symlinks and ``..`` included) before the root check, so a URI cannot
escape its root; ``s3://bucket/prefix`` roots match by bucket and key prefix. Each refusal is an
:class:`MediaRefused` carrying the HTTP status the ingress returns (400, 403, 404, 413 or 415).
"""

from __future__ import annotations

import logging
import os
import stat
from dataclasses import dataclass

from infra import storage
from infra.media import probe
from infra.storage import StorageConfig

log = logging.getLogger("amuse.serve")


def _excerpt(uri: str, limit: int = 200) -> str:
    """The client's URI as they sent it (it is theirs to see), quoted and cut short."""
    return repr(uri if len(uri) <= limit else uri[:limit] + "...")


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
        norm, size = self._locate(uri)
        info = probe(norm, self.storage_cfg)
        if not info.ok:
            # the decoder's complaint names server paths: it goes to the log, the client gets the verdict
            log.warning("media %s is not readable media: %s", norm, info.error)
            raise MediaRefused(415, f"media {_excerpt(uri)} is not readable audio/video")
        if info.duration_s is not None and info.duration_s > self.max_duration_s:
            raise MediaRefused(413, f"media {_excerpt(uri)} lasts {info.duration_s:.1f} s, over the limit of {self.max_duration_s:g} s")
        return MediaInfoLite(norm, size, info.duration_s)

    def read_bytes(self, uri: str) -> bytes:
        """The bytes of a file (an image) under the roots, within the size limit; no probe."""
        norm, _ = self._locate(uri)
        return storage.read_bytes(norm, self.storage_cfg)

    def _locate(self, uri: str) -> tuple[str, int]:
        """(normalised URI, size) of a regular file under the roots and within the size limit."""
        if "\x00" in uri:  # os.path.realpath raises ValueError on it
            raise MediaRefused(400, f"media URI {_excerpt(uri)} contains a NUL byte")
        norm = self._allowed(uri)
        if norm is None:
            raise MediaRefused(403, f"media {_excerpt(uri)} is outside the allowed roots")
        if not storage.is_remote(norm):
            # A FIFO or device under a root would block the probe forever: only regular files are opened.
            try:
                st = os.stat(norm)
            except FileNotFoundError:
                raise MediaRefused(404, f"media {_excerpt(uri)} does not exist") from None
            except OSError as exc:
                raise MediaRefused(404, f"media {_excerpt(uri)} cannot be read: {type(exc).__name__}") from None
            if not stat.S_ISREG(st.st_mode):
                raise MediaRefused(415, f"media {_excerpt(uri)} is not a regular file")
        try:
            fs, path = storage.filesystem(norm, self.storage_cfg)
            size = int(fs.size(path))
        except FileNotFoundError:
            raise MediaRefused(404, f"media {_excerpt(uri)} does not exist") from None
        except Exception as exc:
            raise MediaRefused(404, f"media {_excerpt(uri)} cannot be read: {type(exc).__name__}") from None
        if size > self.max_bytes:
            raise MediaRefused(413, f"media {_excerpt(uri)} is {size} bytes, over the limit of {self.max_bytes}")
        return norm, size
