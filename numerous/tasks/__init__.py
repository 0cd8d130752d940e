"""numerous.tasks — define long-running Python functions as tasks; start, watch, stop
and collect them, each instance in a process of its own.

    from numerous.tasks import task, Session, TaskControl

    @task
    def count(tc: TaskControl, n: int) -> int:
        for i in range(n):
            if tc.should_stop:
                break
            tc.update_progress(100 * (i + 1) / n, f"{i + 1}/{n}")
        return n

    with Session():
        print(count.instance().start(10).result())

The names below are re-exported from the modules that define them, each imported on
first use: importing ``numerous.tasks`` stays cheap, which matters most in the worker
processes, which import it on every fresh start. ``task`` is the exception: its module
shares its name, and importing that module (as every worker does to run a task) would
otherwise leave the module, not the decorator, under ``numerous.tasks.task``.

The names of the original ``numerous.tasks`` of the numerous-sdk are all here too
(``TaskConfig``, ``LocalFuture``, ``TaskStatus``, ``ExecutionBackend``, ``register_backend``,
``LocalExecutionBackend`` ...), so code written against it runs unchanged; the README's
"Coming from numerous-sdk" says where this library deliberately differs.
"""

from typing import TYPE_CHECKING, Any, Dict, List

from .task import Task, TaskInstance, task

if TYPE_CHECKING:  # what type checkers and IDEs see ("X as X": re-exported, for mypy --strict)
    from ._sdk_compat import TaskConfig as TaskConfig
    from .backends.execution import ExecutionBackend as ExecutionBackend
    from .backends.local.backend import LocalExecutionBackend as LocalExecutionBackend
    from .backends.registry import get_backend as get_backend
    from .backends.registry import register_backend as register_backend
    from .backends.registry import set_default_backend as set_default_backend
    from .control import LocalTaskControlHandler as LocalTaskControlHandler
    from .control import PoCMockRemoteTaskControlHandler as PoCMockRemoteTaskControlHandler
    from .control import TaskControl as TaskControl
    from .control import TaskControlHandler as TaskControlHandler
    from .control import get_task_control_handler as get_task_control_handler
    from .control import set_task_control_handler as set_task_control_handler
    from .exceptions import BackendError as BackendError
    from .exceptions import InstanceEndedError as InstanceEndedError
    from .exceptions import MaxInstancesReachedError as MaxInstancesReachedError
    from .exceptions import MemoryLimitError as MemoryLimitError
    from .exceptions import ResultTimeoutError as ResultTimeoutError
    from .exceptions import SessionError as SessionError
    from .exceptions import SessionNotFoundError as SessionNotFoundError
    from .exceptions import TaskCancelledError as TaskCancelledError
    from .exceptions import TaskDefinitionError as TaskDefinitionError
    from .exceptions import TaskError as TaskError
    from .exceptions import TaskFailedError as TaskFailedError
    from .exceptions import TaskTimeoutError as TaskTimeoutError
    from .exceptions import UnknownBackendError as UnknownBackendError
    from .exceptions import WorkerDiedError as WorkerDiedError
    from .future import Future as Future
    from .future import LocalFuture as LocalFuture
    from .future import TaskStatus as TaskStatus
    from .maps import MapProgress as MapProgress
    from .maps import TaskMap as TaskMap
    from .session import Session as Session
    from .sizes import Size as Size
    from .timing import InstanceTimes as InstanceTimes
    from .waiting import ALL_COMPLETED as ALL_COMPLETED
    from .waiting import FIRST_COMPLETED as FIRST_COMPLETED
    from .waiting import FIRST_EXCEPTION as FIRST_EXCEPTION
    from .waiting import DoneAndNotDoneFutures as DoneAndNotDoneFutures
    from .waiting import as_completed as as_completed
    from .waiting import wait as wait

_EXPORTS: Dict[str, str] = {
    "TaskControl": "control",
    "TaskControlHandler": "control",
    "set_task_control_handler": "control",
    "get_task_control_handler": "control",
    "Session": "session",
    "Future": "future",
    "InstanceTimes": "timing",
    "TaskMap": "maps",
    "MapProgress": "maps",
    "TaskError": "exceptions",
    "MaxInstancesReachedError": "exceptions",
    "MemoryLimitError": "exceptions",
    "InstanceEndedError": "exceptions",
    "Size": "sizes",
    "SessionNotFoundError": "exceptions",
    "TaskCancelledError": "exceptions",
    "TaskFailedError": "exceptions",
    "TaskTimeoutError": "exceptions",
    "WorkerDiedError": "exceptions",
    "UnknownBackendError": "exceptions",
    "ResultTimeoutError": "exceptions",
    "wait": "waiting",
    "as_completed": "waiting",
    "DoneAndNotDoneFutures": "waiting",
    "FIRST_COMPLETED": "waiting",
    "FIRST_EXCEPTION": "waiting",
    "ALL_COMPLETED": "waiting",
    # numerous-sdk's names (see the README's "Coming from numerous-sdk")
    "TaskConfig": "_sdk_compat",
    "LocalFuture": "future",
    "TaskStatus": "future",
    "SessionError": "exceptions",
    "BackendError": "exceptions",
    "TaskDefinitionError": "exceptions",
    "ExecutionBackend": "backends.execution",
    "register_backend": "backends.registry",
    "get_backend": "backends.registry",
    "set_default_backend": "backends.registry",
    "LocalExecutionBackend": "backends.local.backend",
    "LocalTaskControlHandler": "control",
    "PoCMockRemoteTaskControlHandler": "control",
}

__all__ = ["task", "Task", "TaskInstance", *_EXPORTS]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'numerous.tasks' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(list(globals()) + __all__)
