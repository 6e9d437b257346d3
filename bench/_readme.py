"""Rewrite one `## <title>` section of bench/README.md, keeping every other section as it is.

Each benchmark owns one section; several run at different times, so none may rewrite the file whole.
"""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parent / "README.md"


def replace_section(title: str, section: str, path: Path = README) -> Path:
    """``section`` must start with ``## <title>``; it replaces that section or is appended."""
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    start = text.find(f"## {title}")
    if start < 0:
        text = text.rstrip() + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    path.write_text(text)
    return path
