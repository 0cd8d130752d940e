"""The Dask backend's errors: no cluster to run on, and a Dask worker that died."""

from __future__ import annotations

from typing import Optional

from ...exceptions import BackendError, TaskError, WorkerDiedError

__all__ = ["DaskUnavailableError", "DaskWorkerDiedError"]


class DaskUnavailableError(BackendError, ConnectionError):
    """No Dask scheduler to run on: ``NUMEROUS_DASK_ADDRESS`` is unset, malformed or
    unreachable, or ``distributed`` is not installed. Raised by the first ``instance()``."""


class DaskWorkerDiedError(WorkerDiedError):
    """The Dask worker running an instance died (or was removed) before sending a result.

    ``worker`` is the worker's address; ``pid`` is the worker's process id on its host,
    if it was known; ``returncode`` is always None (the exit is seen from afar).
    """

    def __init__(self, task_name: str, description: str, worker: str, pid: Optional[int] = None) -> None:
        TaskError.__init__(self, task_name, description, worker, pid)
        self.task_name = task_name
        self.description = description
        self.worker = worker
        self.pid = pid  # type: ignore[assignment]
        self.returncode = None

    def __reduce__(self) -> tuple[type, tuple[object, ...]]:
        return type(self), (self.task_name, self.description, self.worker, self.pid)

    def __str__(self) -> str:
        where = f" (pid {self.pid})" if self.pid is not None else ""
        return (
            f"the Dask worker {self.worker}{where} running {self.description} died or was "
            "removed from the cluster before sending a result"
        )
