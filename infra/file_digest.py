"""Content digests of files and folders, remembered per (path, mtime, size) so a rerun reads nothing.

The eval cache keys a local checkpoint by the bytes of its files (``eval.models.registry``): a
retrained policy saved under the same folder must not reuse the old policy's predictions, and a
name or a path cannot tell the two apart. Hashing a multi-GB checkpoint takes tens of seconds, so
each file's digest is stored in a small JSON file (``$AMUSE_CACHE_DIR``, default ``~/.cache/amuse``)
under its absolute path, modification time and size; a file that was rewritten has a new mtime and
is hashed again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger("amuse.file_digest")

CHUNK = 1 << 20


def cache_path() -> Path:
    return Path(os.environ.get("AMUSE_CACHE_DIR") or "~/.cache/amuse").expanduser() / "file_digests.json"


def _load(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # absent or cut short: digests are simply recomputed
        return {}


def _store(path: Path, table: dict[str, str]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".digests-")
        with os.fdopen(fd, "w") as f:
            json.dump(table, f)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old table or the new one
    except OSError as exc:  # a read-only home only costs the next run a re-hash
        log.warning("could not save file digests to %s: %s", path, exc)


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def folder_digest(folder: str | os.PathLike) -> str:
    """sha256 over every file under ``folder`` (relative path + content digest), hidden entries skipped."""
    root = Path(folder).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder, nothing to hash")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    if not files:
        raise FileNotFoundError(f"{root}: no files to hash")
    store = cache_path()
    table = _load(store)
    changed = False
    h = hashlib.sha256()
    for p in files:
        st = p.stat()
        key = f"{p}|{st.st_mtime_ns}|{st.st_size}"
        digest = table.get(key)
        if digest is None:
            for old in [k for k in table if k.startswith(f"{p}|")]:  # the file's earlier versions
                del table[old]
            digest = table[key] = _sha256(str(p))
            changed = True
        h.update(f"{p.relative_to(root).as_posix()}\x1f{digest}\x1e".encode())
    if changed:
        _store(store, table)
    return h.hexdigest()[:16]
