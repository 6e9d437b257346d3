"""The shared argument surface of every job: ``--config FILE`` and repeated ``--set key.path=value``."""

from __future__ import annotations

import argparse

from pipelines.config import DEFAULT_CONFIG, AppConfig, load_app_config


def job_parser(prog: str, description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--config", default=str(DEFAULT_CONFIG), help="YAML config (default: configs/demo.yaml)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override any config field, e.g. --set perception.asr=whisper (repeatable)",
    )
    return p


def parse_job_args(prog: str, description: str, argv: list[str] | None) -> tuple[argparse.Namespace, AppConfig]:
    args = job_parser(prog, description).parse_args(argv)
    return args, load_app_config(args.config, args.overrides)
