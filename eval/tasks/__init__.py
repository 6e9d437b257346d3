"""The AMUSE tasks, one module each, registered with ``@register_task`` (``eval.tasks.registry``).

Importing this package registers the six built-in tasks, in the paper's order; a further task is
one more module with a registered class (see tests/eval/test_toy_task.py).
"""

from __future__ import annotations

# isort: off
from eval.tasks import avsa, nsp, srid, stg, avds, csnl  # noqa: F401  (registration, in the paper's order)
# isort: on
from eval.tasks.base import Sample, Skip, TaskBuilder
from eval.tasks.registry import TASKS, get_task, register_task, task_names

__all__ = ["TASKS", "Sample", "Skip", "TaskBuilder", "get_task", "register_task", "task_names"]
