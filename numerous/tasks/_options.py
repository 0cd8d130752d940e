"""``@task``'s options, listed once: :class:`TaskOptions` and its keywords.

::

    @task(max_parallel=3, timeout=60.0)      the keywords: TaskOptionsArgs (for type checkers)
    Task(fn, TaskConfig(max_parallel=3))     numerous-sdk's TaskConfig: three of them
            │
            ▼  TaskOptions(**keywords).checked(): a wrong type or value fails here, at
               the decorator, naming the option
    task.options ── read by the session (max_parallel; retries, retry_on, retry_delay),
                    the backends (timeout, fresh_process, capture_output), displays and
                    logs (the name)

:class:`TaskOptionsArgs` repeats the fields' names and types for the ``**options`` of
``@task(...)`` and ``Task(...)`` (a ``TypedDict`` is the only way to type keyword
arguments once for several signatures); tests/test_task_definition.py checks that the two
agree. Every worker imports this module (through ``numerous.tasks.task``): nothing heavy.
"""

from __future__ import annotations

import math
from typing import Any, Dict, NamedTuple, Optional, Tuple, Type, TypedDict

from .exceptions import WorkerDiedError

__all__ = ["SIZES", "TaskOptions", "TaskOptionsArgs", "check_timeout"]

#: The resource size hints ``@task(size=...)`` accepts.
SIZES: Tuple[str, ...] = ("small", "medium", "large")


class TaskOptionsArgs(TypedDict, total=False):
    """The keyword arguments ``@task(...)`` and ``Task(...)`` take: :class:`TaskOptions`'s fields."""

    max_parallel: int
    size: str
    name: Optional[str]
    timeout: Optional[float]
    fresh_process: bool
    capture_output: bool
    # -- retries (issue 18) --
    retries: int
    retry_on: Tuple[Type[BaseException], ...]
    retry_delay: float


class TaskOptions(NamedTuple):
    """A task's options (frozen): what ``@task(...)`` was given, or the defaults.

    Make one with keywords and :meth:`checked`; every :class:`~numerous.tasks.Task` holds
    checked ones as ``task.options``.
    """

    #: How many instances may run at once in one session (an int >= 1).
    max_parallel: int = 1
    #: A resource hint, one of ``"small"``, ``"medium"`` and ``"large"``.
    size: str = "small"
    #: The task's name, or None for the function's.
    name: Optional[str] = None
    #: Seconds an instance may run before it is stopped and fails with
    #: :class:`~numerous.tasks.TaskTimeoutError`; None: no limit.
    timeout: Optional[float] = None
    #: Give every instance a new process of its own, never reused.
    fresh_process: bool = False
    #: Log what the task writes to ``sys.stdout``/``sys.stderr`` instead of letting it
    #: reach the terminal.
    capture_output: bool = False
    # -- retries (issue 18): see numerous.tasks._lifecycle.retrying --
    #: How many times a failed instance is run again (an int >= 0), each time in a new
    #: process, when its error is one of :attr:`retry_on`.
    retries: int = 0
    #: The errors that are retried (a tuple of exception classes); by default only a
    #: worker that died (killed, out of memory, crashed).
    retry_on: Tuple[Type[BaseException], ...] = (WorkerDiedError,)
    #: Seconds between a failed attempt and the next (a finite number >= 0).
    retry_delay: float = 0.0

    def checked(self) -> TaskOptions:
        """These options, if every one has a valid type and value (``timeout`` as a float).

        Raises:
            TypeError: an option has the wrong type (the message names it).
            ValueError: an option has a wrong value (the message names it).
        """
        max_parallel, size, name = self.max_parallel, self.size, self.name
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int):
            raise TypeError(f"max_parallel must be an int, not {type(max_parallel).__name__}")
        if max_parallel < 1:
            raise ValueError(f"max_parallel must be at least 1, not {max_parallel}")
        if not isinstance(size, str):
            raise TypeError(f"size must be a str, not {type(size).__name__}")
        if size not in SIZES:
            raise ValueError(f"size must be one of {', '.join(map(repr, SIZES))}, not {size!r}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        if name is not None and not name.strip():
            raise ValueError("name must be a non-empty string")
        for flag in ("fresh_process", "capture_output"):
            value = getattr(self, flag)
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool, not {type(value).__name__}")
        return self._replace(timeout=check_timeout(self.timeout), **_checked_retries(self))


def _checked_retries(options: TaskOptions) -> Dict[str, Any]:
    """``retries``, ``retry_on`` and ``retry_delay`` checked (``retry_on`` as a tuple,
    ``retry_delay`` as a float), or raise naming the option."""
    retries, retry_on, delay = options.retries, options.retry_on, options.retry_delay
    if isinstance(retries, bool) or not isinstance(retries, int):
        raise TypeError(f"retries must be an int, not {type(retries).__name__}")
    if retries < 0:
        raise ValueError(f"retries must be at least 0, not {retries}")
    if isinstance(retry_on, type):  # one class given bare: what `except` takes too
        retry_on = (retry_on,)
    if not isinstance(retry_on, (tuple, list)):
        raise TypeError(f"retry_on must be a tuple of exception classes, not {type(retry_on).__name__}")
    for each in retry_on:
        if not (isinstance(each, type) and issubclass(each, BaseException)):
            raise TypeError(f"retry_on must hold exception classes, not {each!r}")
    if isinstance(delay, bool) or not isinstance(delay, (int, float)):
        raise TypeError(f"retry_delay must be a number of seconds, not {type(delay).__name__}")
    if not (math.isfinite(delay) and delay >= 0):
        raise ValueError(f"retry_delay must be a finite number of seconds >= 0, not {delay!r}")
    return {"retries": retries, "retry_on": tuple(retry_on), "retry_delay": float(delay)}


def check_timeout(timeout: Optional[float], parameter: str = "timeout") -> Optional[float]:
    """Return ``timeout`` as a float (or None), or raise naming ``parameter``.

    Raises:
        TypeError: not a number (a bool is refused too).
        ValueError: not a finite number > 0.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{parameter} must be a number of seconds, not {type(timeout).__name__}")
    if not timeout > 0 or timeout != timeout or timeout == float("inf"):
        raise ValueError(f"{parameter} must be a finite number of seconds > 0, not {timeout!r}")
    return float(timeout)
