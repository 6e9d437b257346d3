"""The six AMUSE tasks, one module each, and their registry (``TASK_BUILDERS[name]``)."""

from __future__ import annotations

from eval.tasks.avds import AVDS
from eval.tasks.avsa import AVSA
from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.csnl import CSNL
from eval.tasks.nsp import NSP
from eval.tasks.srid import SRID
from eval.tasks.stg import STG

TASK_BUILDERS: dict[str, type[TaskBuilder]] = {cls.name: cls for cls in (AVSA, NSP, SRID, STG, AVDS, CSNL)}

__all__ = ["TASK_BUILDERS", "Sample", "Skip", "TaskBuilder"]
