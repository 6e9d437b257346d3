"""Content-hash ids. A rerun over the same inputs yields the same ids, which is what makes resume idempotent."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def _canonical(part: Any) -> str:
    if isinstance(part, float):
        # Times are rounded to the millisecond: a clip at 12.0000001 s is the same clip as 12.0 s.
        return f"{part:.3f}"
    if isinstance(part, (dict, list, tuple)):
        return json.dumps(part, sort_keys=True, separators=(",", ":"), default=str)
    return str(part)


def content_id(*parts: Any, length: int = 16) -> str:
    """Stable hex id over the canonical form of ``parts`` (sha256, truncated)."""
    h = hashlib.sha256()
    for p in parts:
        h.update(_canonical(p).encode("utf-8"))
        h.update(b"\x1f")  # unit separator so ("ab","c") != ("a","bc")
    return h.hexdigest()[:length]


def bytes_fingerprint(head: bytes, tail: bytes, size: int) -> str:
    """Fingerprint of a media file from its size, first and last block.

    Hashing whole multi-GB videos would dominate curation time; size plus the two ends changes
    whenever a file is re-encoded, truncated or replaced, which is what ids need to notice.
    """
    h = hashlib.sha256()
    h.update(str(size).encode())
    h.update(head)
    h.update(tail)
    return h.hexdigest()[:16]
