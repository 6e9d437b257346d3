"""The real-recording development set: real speech, real talking faces and real weights, read from
``../shared/data/real`` (never part of this repository) and composed into scenes with exact references.

Nothing derived from those files is committed: builders write into ``.cache/realdev`` (ignored), and
tests and benches that need the folder skip with a message naming it when it is absent (a user's
fresh clone has no ``../shared``). ``AMUSE_REAL_DATA`` points elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "real"


def real_data_root() -> Path | None:
    """The real-data folder (``$AMUSE_REAL_DATA`` or ``../shared/data/real``), or None when it is absent."""
    root = Path(os.environ.get("AMUSE_REAL_DATA") or DEFAULT_ROOT).expanduser()
    return root if (root / "README.md").is_file() else None


def missing_message() -> str:
    where = os.environ.get("AMUSE_REAL_DATA") or str(DEFAULT_ROOT)
    return f"real development data not found at {where} (set AMUSE_REAL_DATA or provide ../shared/data/real)"


def require_root() -> Path:
    """The real-data folder, or FileNotFoundError naming where it was looked for."""
    root = real_data_root()
    if root is None:
        raise FileNotFoundError(missing_message())
    return root


def cache_dir(*parts: str) -> Path:
    """A folder under ``.cache/realdev`` (ignored by git) for mixtures and scenes built from the real data."""
    d = Path(os.environ.get("AMUSE_REALDEV_CACHE") or REPO / ".cache" / "realdev").joinpath(*parts)
    d.mkdir(parents=True, exist_ok=True)
    return d
