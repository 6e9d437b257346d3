"""`amuse` console script: one subcommand per job, each a thin shim over ``pipelines/<job>.py``.

The job modules also run directly (``python pipelines/curate.py``), which is what ``ray job
submit`` executes; both paths call the module's ``main(argv)``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys

JOBS = {
    "curate": "pipelines.curate",
    "train": "pipelines.train",
    "evaluate": "pipelines.evaluate",
    "serve": "pipelines.serve",
    "demo": "pipelines.demo",
    "export": "pipelines.export",
}


def job_available(name: str) -> bool:
    return importlib.util.find_spec(JOBS[name]) is not None


def _config_command(argv: list[str]) -> int:
    from infra.config import describe, to_dict
    from pipelines.args import load_or_exit
    from pipelines.config import AppConfig

    p = argparse.ArgumentParser(prog="amuse config", description="Show the resolved config or document every field.")
    p.add_argument("--config", default=None)
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--describe", action="store_true", help="list every field with its type, default and meaning")
    args = p.parse_args(argv)
    if args.describe:
        from tabulate import tabulate

        print(tabulate(describe(AppConfig), headers=["key", "type", "default", "meaning"]))
        return 0
    import yaml

    print(yaml.safe_dump(to_dict(load_or_exit(p, args.config, args.overrides)), sort_keys=False))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = [*JOBS, "config"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in names:
        print("usage: amuse {" + ",".join(names) + "} [--config FILE] [--set key.path=value ...]")
        for name in JOBS:
            state = "" if job_available(name) else "   (not built yet)"
            print(f"  {name}{state}")
        print("  config   show the resolved config (--describe documents every field)")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    cmd, rest = argv[0], argv[1:]
    if cmd == "config":
        return _config_command(rest)
    if not job_available(cmd):
        print(f"amuse {cmd}: this job is not built yet; see the open issues.", file=sys.stderr)
        return 3
    from infra.config import ConfigError

    try:
        return int(importlib.import_module(JOBS[cmd]).main(rest) or 0)
    except ConfigError as exc:  # a check a job makes after loading (e.g. a section's validate on use)
        print(f"amuse {cmd}: config error: {exc.one_line()}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
