"""The error types of numerous.tasks.

Every error the library raises on its own behalf derives from :class:`TaskError`,
except the timed-out wait (:class:`ResultTimeoutError`), which is a builtin
``TimeoutError`` so that ``except TimeoutError`` works as users expect.
"""

from __future__ import annotations

import signal
import sys
from typing import Optional

__all__ = [
    "BackendError",
    "InstanceEndedError",
    "MaxInstancesReachedError",
    "MemoryLimitError",
    "ResultTimeoutError",
    "SessionError",
    "SessionNotFoundError",
    "TaskCancelledError",
    "TaskDefinitionError",
    "TaskError",
    "TaskFailedError",
    "TaskTimeoutError",
    "UnknownBackendError",
    "WorkerDiedError",
]


class TaskError(Exception):
    """Base class of the errors numerous.tasks raises about tasks, sessions and backends."""


class MaxInstancesReachedError(TaskError):
    """An instance cannot run at once and the caller asked not to wait: its task already
    runs ``max_parallel`` instances, or the session runs its ``max_workers``.

    ``MaxInstancesReachedError(message)`` (one argument, as numerous-sdk code raises it)
    is accepted too; ``task_name``, ``max_parallel`` and ``max_workers`` are then None.
    When the session's cap refused it, ``max_workers`` is set and ``max_parallel`` is None.
    """

    def __init__(
        self, task_name: str, max_parallel: Optional[int] = None, *, max_workers: Optional[int] = None
    ) -> None:
        self.task_name: Optional[str] = None if max_parallel is None and max_workers is None else task_name
        self.max_parallel = max_parallel
        self.max_workers = max_workers
        if max_workers is not None and max_parallel is None:
            super().__init__(
                f"task {task_name!r} cannot start at once: the session already runs its limit of "
                f"max_workers={max_workers} workers (or instances started earlier wait for them); make "
                "the instance with task.instance() (queue=True, the default) to have it wait its turn, "
                "or raise Session(max_workers=...)"
            )
            return
        if max_parallel is None:  # a message of its own
            super().__init__(task_name)
            return
        super().__init__(
            f"task {task_name!r} already runs its limit of max_parallel={max_parallel} "
            "instances in this session; make the instance with task.instance() (queue=True, "
            "the default) to have it wait its turn, or raise max_parallel in @task(...)"
        )


class SessionNotFoundError(TaskError):
    """``task.instance()`` was called with no open :class:`~numerous.tasks.Session`."""


class SessionError(TaskError):
    """A session was used out of turn: entered twice, or given an instance once closed."""


class BackendError(TaskError):
    """A backend could not be found, made or reached."""


class TaskDefinitionError(TaskError):
    """A task is defined in a way that cannot work (numerous-sdk's name; bad ``@task``
    options are a ``TypeError`` or ``ValueError`` naming the option)."""


class TaskCancelledError(TaskError):
    """The instance was cancelled before it produced a value."""


class TaskFailedError(TaskError):
    """A task raised an exception that could not travel back to the parent as itself.

    It carries what could be saved: the original exception's type name, its message
    and the worker's formatted traceback (also shown in ``str()``).
    """

    def __init__(self, type_name: str, message: str, formatted_traceback: str, reason: str) -> None:
        self.type_name = type_name
        self.message = message
        self.formatted_traceback = formatted_traceback
        self.reason = reason
        super().__init__(type_name, message, formatted_traceback, reason)

    def __str__(self) -> str:
        return (
            f"{self.type_name}: {self.message}\n({self.reason})\nTraceback in the worker:\n{self.formatted_traceback}"
        )


class WorkerDiedError(TaskError):
    """The worker process running an instance exited before sending a result."""

    def __init__(self, task_name: str, pid: int, returncode: Optional[int]) -> None:
        self.task_name = task_name
        self.pid = pid
        self.returncode = returncode
        super().__init__(task_name, pid, returncode)

    @property
    def signal_name(self) -> Optional[str]:
        """The name of the signal that killed the worker (``"SIGKILL"``), or None."""
        if self.returncode is None or self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    def __str__(self) -> str:
        if self.signal_name is not None:
            how = f"was killed by {self.signal_name}"
        else:
            how = f"exited with code {self.returncode}"
        return f"the worker process (pid {self.pid}) running task {self.task_name!r} {how} before sending a result"


class TaskTimeoutError(TaskError):
    """The instance ran longer than its ``timeout`` and was stopped."""

    def __init__(self, description: str, timeout: float, terminated: bool) -> None:
        self.timeout = timeout
        self.terminated = terminated
        how = "it ignored the stop request and was terminated" if terminated else "it stopped when asked"
        super().__init__(f"{description} timed out after {timeout:g} s; {how}")


class MemoryLimitError(TaskError):
    """The instance's processes used more memory than its task's size allows; it was
    killed (see :class:`~numerous.tasks.Size`).

    Attributes:
        size: the task's size (``"small"``, ``"medium"``, ``"large"``).
        limit: the size's memory limit, in bytes.
        peak: the most memory (RSS of the worker and its descendants) seen, in bytes.
    """

    def __init__(self, description: str, size: str, limit: int, peak: int) -> None:
        self.description = description
        self.size = size
        self.limit = limit
        self.peak = peak
        super().__init__(description, size, limit, peak)

    def __str__(self) -> str:
        from ._bytes import describe_bytes

        return (
            f"{self.description} used {describe_bytes(self.peak)} of memory ({self.peak} bytes, its processes' "
            f"RSS), over the {describe_bytes(self.limit)} ({self.limit} bytes) that size {self.size!r} allows; "
            f"it was killed. Give the task a larger size (@task(size=...)) or raise the limit: "
            f"Session(sizes={{{self.size!r}: Size(memory=...)}})"
        )


class InstanceEndedError(TaskError):
    """A ``TaskControl`` was used after its instance ended: a task kept it (in a global,
    a thread, a closure) and called it from a later instance on the same worker. Its
    control block now belongs to another instance, so the call is refused instead."""

    def __init__(self, instance_id: str, task_name: str) -> None:
        self.instance_id = instance_id
        self.task_name = task_name
        super().__init__(instance_id, task_name)

    def __str__(self) -> str:
        return (
            f"the TaskControl of instance {self.instance_id} of task {self.task_name!r} was used after that "
            "instance ended; use the TaskControl the running task was given"
        )


class UnknownBackendError(BackendError, ValueError):
    """``NUMEROUS_TASK_BACKEND`` (or ``Session(backend=...)``) names no known backend."""


if sys.version_info >= (3, 11):  # concurrent.futures.TimeoutError is TimeoutError

    class ResultTimeoutError(TimeoutError):
        """``Future.result(timeout=...)`` waited longer than ``timeout``; the task goes on."""

else:  # Python 3.9 and 3.10: the two classes differ, so be both
    import concurrent.futures

    class ResultTimeoutError(concurrent.futures.TimeoutError, TimeoutError):
        """``Future.result(timeout=...)`` waited longer than ``timeout``; the task goes on."""
