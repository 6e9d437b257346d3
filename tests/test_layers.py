"""The package stack, checked on the source: infra; perception; omni; eval; raft; pipelines.

A package imports only packages below it (raft may import eval's task contract and omni). The
scan reads every module's ``import`` statements, at any depth (function-local imports count), so
a lazy import cannot hide an upward dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# package -> the project packages it must never import
FORBIDDEN = {
    "infra": {"perception", "omni", "eval", "raft", "pipelines", "bench", "tests"},
    "perception": {"omni", "eval", "raft", "pipelines", "bench", "tests"},
    "omni": {"eval", "raft", "pipelines", "bench", "tests"},
    "eval": {"raft", "pipelines", "bench", "tests"},
    "raft": {"pipelines", "bench", "tests"},
}


def imported_packages(source: str, filename: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name.split(".")[0]) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(root: Path, package: str) -> list[str]:
    out = []
    for path in sorted((root / package).rglob("*.py")):
        for line, top in imported_packages(path.read_text(), str(path)):
            if top in FORBIDDEN[package]:
                out.append(f"{path.relative_to(root)}:{line} imports {top}")
    return out


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_imports_only_layers_below(package):
    assert (REPO / package).is_dir(), f"{package}/ is missing from {REPO}"
    bad = violations(REPO, package)
    assert not bad, f"{package}/ imports a package above it:\n" + "\n".join(bad)


def test_scan_sees_lazy_imports(tmp_path):
    # the old eval/models/hf.py imported raft inside a method; the scan must see that form
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "m.py").write_text("def f():\n    from raft.model import OmniPolicy\n    import raft.data\n")
    assert violations(tmp_path, "eval") == ["eval/m.py:2 imports raft", "eval/m.py:3 imports raft"]
