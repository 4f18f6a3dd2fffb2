"""Benchmarks as plug-in tasks: the registry, and the tasks a config selects.

    from tradeoff_ray.tasks import register, Task
    register(MyTask())            # then eval.tasks: [spider, mmlu, my_task]

Built in: spider (target: Text-to-SQL EX), mmlu and gsm8k (general capability). `eval.tasks: null`
means spider and mmlu, plus every task whose data the config gives (gsm8k with data.gsm8k_dir).
"""
from __future__ import annotations

from typing import Any

from tradeoff_ray.errors import UserError
from tradeoff_ray.tasks.base import CHOICE, GENERAL, GENERATE, TARGET, Measure, Row, Task, TaskData
from tradeoff_ray.tasks.gsm8k import Gsm8kTask
from tradeoff_ray.tasks.mmlu import MmluTask
from tradeoff_ray.tasks.spider import SpiderTask

__all__ = ["CHOICE", "GENERAL", "GENERATE", "TARGET", "Measure", "Row", "Task", "TaskData", "configured_tasks",
           "get_task", "register", "registered", "unregister"]

_REGISTRY: dict[str, Task] = {}


def register(task: Task) -> Task:
    """Make `task` selectable by name in `eval.tasks` (a name already taken is an error)."""
    if task.name in _REGISTRY and _REGISTRY[task.name] is not task:
        raise ValueError(f"a task named {task.name!r} is already registered ({type(_REGISTRY[task.name]).__name__})")
    _REGISTRY[task.name] = task
    return task


def unregister(name: str) -> None:
    _REGISTRY.pop(name, None)


def registered() -> list[str]:
    return list(_REGISTRY)


def get_task(name: str) -> Task:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UserError(f"unknown task {name!r}; registered tasks: {registered()} (set eval.tasks to some of "
                        "them, or register yours with tradeoff_ray.tasks.register)") from None


def configured_tasks(cfg: Any) -> list[Task]:
    """The tasks `eval.tasks` selects, target first; None = the defaults (see the module docstring)."""
    names = cfg.eval.tasks
    if names is None:
        tasks = [t for t in _REGISTRY.values() if t.name in ("spider", "mmlu") or
                 (t.data_key is not None and t.enabled_by_default(cfg))]
    else:
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise UserError(f"eval.tasks lists {dup} more than once; name each task once")
        tasks = [get_task(n) for n in names]
    return sorted(tasks, key=lambda t: t.role != TARGET)


for _task in (SpiderTask(), MmluTask(), Gsm8kTask()):
    register(_task)
