"""The shared argument surface of every job: ``--config FILE`` and repeated ``--set key.path=value``."""

from __future__ import annotations

import argparse

from infra.config import ConfigError
from pipelines.config import DEFAULT_CONFIG, AppConfig, load_app_config


def job_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="YAML config (default: configs/demo.yaml)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override any config field, e.g. --set perception.asr=whisper (repeatable)",
    )
    return p


def load_or_exit(parser: argparse.ArgumentParser, path: str | None, overrides: list[str]) -> AppConfig:
    """The resolved config; a bad file, key or type exits 2 with one line naming the key (argparse's usage-error
    code), never a traceback."""
    try:
        return load_app_config(path, overrides)
    except ConfigError as exc:
        parser.exit(2, f"{parser.prog}: config error: {exc.one_line()}\n")


def parse_job_args(prog: str, description: str, argv: list[str] | None) -> tuple[argparse.Namespace, AppConfig]:
    parser = job_parser(prog, description)
    args = parser.parse_args(argv)
    return args, load_or_exit(parser, args.config, args.overrides)
