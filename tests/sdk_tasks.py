"""Tasks and a backend written the way numerous-sdk's ``numerous.tasks`` described them,
for test_sdk_compat.py: only the names its public surface had.

Tasks live at module level so that workers import them by reference. A task that must
wait for the test polls for a file whose path the test passes in (bounded by
``WAIT_LIMIT``: a failure, never the normal path).
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple

from numerous.tasks import ExecutionBackend, Future, Task, TaskConfig, TaskControl, task
from numerous.tasks.control import TaskControlHandler

WAIT_LIMIT = 20.0


@task
def double(tc: TaskControl, value: int) -> int:
    """Report half way and done; return twice ``value``."""
    tc.update_progress(50.0, "halfway")
    tc.log("doubling", "info", value=value)
    tc.update_progress(100.0, "done")
    return value * 2


@task
def add(a: int, b: int) -> int:
    """A task without a TaskControl."""
    return a + b


@task
def wait_for_stop(tc: TaskControl) -> str:
    """Say "waiting", then return once asked to stop."""
    tc.update_status("waiting")
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop:
        if time.monotonic() > deadline:
            raise TimeoutError("nobody asked me to stop")
        time.sleep(0.002)
    return "stopped"


@task
def stop_myself(tc: TaskControl) -> bool:
    """Ask for its own stop and report whether it sees it."""
    tc.request_stop()
    return tc.should_stop


@task
def progress_seen_inside(tc: TaskControl) -> Tuple[float, str, float, str]:
    """What the task's own TaskControl says before and after reporting."""
    before = (tc.progress, tc.status)
    tc.update_progress(30.0, "thirty")
    tc.update_status("later")
    return before[0], before[1], tc.progress, tc.status


@task
def thread_name() -> str:
    """The name of the thread the task runs in."""
    return threading.current_thread().name


def _configured(tc: TaskControl, text: str) -> str:
    """Made a Task by hand, numerous-sdk style."""
    tc.update_status("configured")
    return f"{tc.task_definition_name}:{text}"


configured = Task(_configured, TaskConfig(max_parallel=2, size="medium", name="configured-task"), True)


def pid_and_square(n: int) -> Tuple[int, int]:
    """A plain function for ``backend.execute``: where it ran, and ``n * n``."""
    return os.getpid(), n * n


def wait_for_file(path: str) -> str:
    """A plain function for ``backend.execute`` that returns once ``path`` exists."""
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.002)
    return "released"


class Recorder(TaskControlHandler):
    """Records every call, with what the TaskControl said at that moment, and lets a
    test wait for a status without sleeping."""

    def __init__(self) -> None:
        self.calls: List[Tuple[Any, ...]] = []
        self._lock = threading.Lock()
        self._seen = threading.Condition(self._lock)

    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        with self._seen:
            self.calls.append(("log", task_control.instance_id, message, level, extra_data))

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        with self._seen:
            self.calls.append(
                ("progress", task_control.instance_id, progress, status, task_control.progress, task_control.status)
            )
            self._seen.notify_all()

    def update_status(self, task_control: TaskControl, status: str) -> None:
        with self._seen:
            self.calls.append(("status", task_control.instance_id, status, task_control.status))
            self._seen.notify_all()

    def wait_for_status(self, instance_id: str, status: str) -> None:
        """Block until ``instance_id`` reported ``status``."""
        with self._seen:
            seen = self._seen.wait_for(lambda: any(c[1] == instance_id and status in c[2:4] for c in self.calls), 20)
        assert seen, f"{instance_id} never reported {status!r}: {self.calls}"


class ThreadBackend(ExecutionBackend):
    """A third-party backend written against numerous-sdk's ``ExecutionBackend``: each
    call in a thread of a pool, the future set by hand."""

    made: ClassVar[List[ThreadBackend]] = []

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sdk-thread")
        self.cancelled: List[Tuple[str, Optional[str]]] = []
        self.started = 0
        self.shut_down = 0
        ThreadBackend.made.append(self)

    def startup(self) -> None:
        self.started += 1

    def execute(
        self, target_callable: Callable[..., Any], future: Future[Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> None:
        future.set_running()

        def run() -> None:
            try:
                future.set_result(target_callable(*args, **kwargs))
            except Exception as error:
                future.set_exception(error)

        self.pool.submit(run)

    def cancel_task_instance(self, instance_id: str, session_id: Optional[str] = None) -> bool:
        self.cancelled.append((instance_id, session_id))
        return True

    def shutdown(self) -> None:
        self.shut_down += 1
        self.pool.shutdown(wait=True)
