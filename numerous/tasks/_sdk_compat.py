"""numerous-sdk's names that have no home of their own in this design.

Code written against the original ``numerous.tasks`` of the numerous-sdk runs unchanged
here (see the README's "Coming from numerous-sdk"). Most of its names are attributes of
our own classes, or aliases of them (``LocalFuture`` is :class:`~numerous.tasks.Future`,
``LocalExecutionBackend`` the local process backend). What is left lives here:

:class:`TaskConfig`, the dataclass ``Task(func, config)`` takes and ``task.config`` is: a
view of three of a task's :class:`~numerous.tasks.task.TaskOptions`. (The session's
``tasks`` table is :mod:`numerous.tasks._session_book`'s, the printing handler is in
:mod:`numerous.tasks.control`.)

It imports ``dataclasses``, so ``numerous.tasks.task`` imports it only on first use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from ._options import TaskOptions, TaskOptionsArgs

__all__ = ["TaskConfig", "options_from_config"]


@dataclass
class TaskConfig:
    """A task's options, as numerous-sdk's ``Task(func, config)`` takes them.

    ``@task(max_parallel=..., size=..., name=...)`` is the usual way to set them;
    ``task.config`` describes a task's (changing it does not change the task).
    """

    max_parallel: int = 1
    size: str = "small"
    name: Optional[str] = None


def options_from_config(config: Any, options: TaskOptionsArgs) -> TaskOptions:
    """The options ``Task(func, config)`` makes a task with: ``max_parallel``, ``size``
    and ``name`` from ``config``, the others from the keywords (not yet checked).

    Raises:
        TypeError: ``config`` is not a :class:`TaskConfig`, or ``max_parallel``,
            ``size`` or ``name`` were also given as keywords.
    """
    if not isinstance(config, TaskConfig):
        raise TypeError(f"config must be a TaskConfig, not {type(config).__name__}")
    given, defaults = TaskOptions(**options), TaskOptions()
    if any(getattr(given, field) != getattr(defaults, field) for field in _CONFIG_FIELDS):
        raise TypeError("give a task's options either in config or as max_parallel=/size=/name=, not both")
    return given._replace(max_parallel=config.max_parallel, size=config.size, name=config.name)


#: The options a TaskConfig holds.
_CONFIG_FIELDS = ("max_parallel", "size", "name")
