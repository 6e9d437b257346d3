"""The task registry: ``@register_task`` on a task class is the only step that adds a task.

Curation's builders, the evaluator's prompts and scorers, RAFT's prompts, references and answer
reward, the tool-only baseline, the HTTP API's task field and the report all look tasks up here.
"""

from __future__ import annotations

from typing import Any

from infra.validate import register_enum

TASKS: dict[str, Any] = {}  # name -> task class (eval.tasks.base.TaskBuilder subclass)


def register_task(cls: Any) -> Any:
    """Class decorator: add a task under ``cls.name``; a second, different class with the name is an error."""
    name = getattr(cls, "name", "")
    if not name:
        raise ValueError(f"{cls.__qualname__}: a task class needs a non-empty `name`")
    if getattr(cls, "kind", None) is None:
        raise ValueError(f"task {name}: no answer `kind` (see eval.tasks.kinds)")
    old = TASKS.get(name)
    if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"task {name}: already registered by {old.__module__}.{old.__qualname__}")
    TASKS[name] = cls
    return cls


def get_task(name: str) -> Any:
    try:
        return TASKS[name]
    except KeyError:
        raise KeyError(f"task {name!r} is not registered (known: {', '.join(TASKS)})") from None


def task_names() -> list[str]:
    return list(TASKS)


register_enum("task", task_names)
