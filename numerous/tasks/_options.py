"""``@task``'s options, listed once: :class:`TaskOptions` and its keywords.

::

    @task(max_parallel=3, timeout=60.0)      the keywords: TaskOptionsArgs (for type checkers)
    Task(fn, TaskConfig(max_parallel=3))     numerous-sdk's TaskConfig: three of them
            │
            ▼  TaskOptions(**keywords).checked(): a wrong type or value fails here, at
               the decorator, naming the option
    task.options ── read by the session (max_parallel), the backends (timeout,
                    fresh_process, capture_output), displays and logs (the name)

:class:`TaskOptionsArgs` repeats the fields' names and types for the ``**options`` of
``@task(...)`` and ``Task(...)`` (a ``TypedDict`` is the only way to type keyword
arguments once for several signatures); tests/test_task_definition.py checks that the two
agree. Every worker imports this module (through ``numerous.tasks.task``): nothing heavy.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple, TypedDict

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


class TaskOptions(NamedTuple):
    """A task's options (frozen): what ``@task(...)`` was given, or the defaults.

    Make one with keywords and :meth:`checked`; every :class:`~numerous.tasks.Task` holds
    checked ones as ``task.options``.
    """

    #: How many instances may run at once in one session (an int >= 1).
    max_parallel: int = 1
    #: A resource hint: one of :data:`SIZES`.
    size: str = "small"
    #: The task's name; None: the function's.
    name: Optional[str] = None
    #: Seconds an instance may run before it is stopped and fails with
    #: :class:`~numerous.tasks.TaskTimeoutError`; None: no limit.
    timeout: Optional[float] = None
    #: Give every instance a new process of its own, never reused.
    fresh_process: bool = False
    #: Log what the task writes to ``sys.stdout``/``sys.stderr`` instead of letting it
    #: reach the terminal.
    capture_output: bool = False

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
        return self._replace(timeout=check_timeout(self.timeout))


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
