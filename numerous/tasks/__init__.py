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
"""

from .control import TaskControl, TaskControlHandler, get_task_control_handler, set_task_control_handler
from .exceptions import (
    MaxInstancesReachedError,
    ResultTimeoutError,
    SessionNotFoundError,
    TaskCancelledError,
    TaskError,
    TaskFailedError,
    TaskTimeoutError,
    UnknownBackendError,
    WorkerDiedError,
)
from .future import Future
from .session import Session
from .task import Task, TaskInstance, task
from .timing import InstanceTimes

__all__ = [
    "task",
    "Task",
    "TaskInstance",
    "TaskControl",
    "TaskControlHandler",
    "set_task_control_handler",
    "get_task_control_handler",
    "Session",
    "Future",
    "InstanceTimes",
    "TaskError",
    "MaxInstancesReachedError",
    "SessionNotFoundError",
    "TaskCancelledError",
    "TaskFailedError",
    "TaskTimeoutError",
    "WorkerDiedError",
    "UnknownBackendError",
    "ResultTimeoutError",
]

__version__ = "0.1.0"
