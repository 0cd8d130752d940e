"""Tasks and a recording handler used by test_faults and test_lifecycle (module level: workers import them)."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from numerous.tasks import TaskControl, task
from numerous.tasks.control import TaskControlHandler

WAIT_LIMIT = 30.0  # seconds a task waits for the test before giving up


class RecordingHandler(TaskControlHandler):
    """Records every call with the thread and process it ran on; lets tests wait."""

    def __init__(self) -> None:
        self.events: List[Tuple[str, str, Any]] = []  # (kind, instance_id, payload)
        self.threads: List[int] = []
        self.pids: List[int] = []
        self._changed = threading.Condition()

    def _record(self, kind: str, control: TaskControl, payload: Any) -> None:
        with self._changed:
            self.events.append((kind, control.instance_id, payload))
            self.threads.append(threading.get_ident())
            self.pids.append(os.getpid())
            self._changed.notify_all()

    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        self._record("log", task_control, (message, level, extra_data))

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        self._record("progress", task_control, (progress, status))

    def update_status(self, task_control: TaskControl, status: str) -> None:
        self._record("status", task_control, status)

    def wait_for(self, predicate: Callable[[Tuple[str, str, Any]], bool], timeout: float = 20.0) -> None:
        """Wait until an event satisfying ``predicate`` was recorded."""
        with self._changed:
            if not self._changed.wait_for(lambda: any(map(predicate, self.events)), timeout):
                raise AssertionError(f"no matching event within {timeout} s: {self.events[-5:]}")

    def wait_for_status(self, status: str, timeout: float = 20.0) -> None:
        """Wait until some instance reported ``status`` (by either update call)."""
        self.wait_for(
            lambda e: (e[0] == "status" and e[2] == status) or (e[0] == "progress" and e[2][1] == status),
            timeout,
        )

    def logs(self, instance_id: Optional[str] = None) -> List[str]:
        """Logged messages, in arrival order."""
        return [e[2][0] for e in self.events if e[0] == "log" and instance_id in (None, e[1])]



@task
def whoami(tc: TaskControl) -> Dict[str, Any]:
    return {"pid": os.getpid(), "pgid": os.getpgid(0), "cwd": os.getcwd(), "sys_path": sys.path,
            "instance_id": tc.instance_id, "name": tc.task_definition_name}



class CustomError(Exception):
    """A user-defined exception class that must come back as itself."""



def _raise_deep(message: str) -> None:
    raise CustomError(message)  # the line traceback tests look for



@task
def fails(message: str) -> None:
    _raise_deep(message)



@task(max_parallel=8)
def wait_for_go(tc: TaskControl, go_file: str, value: Any = None) -> Any:
    """Report "ready", then wait for ``go_file`` (or a stop request)."""
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        if tc.should_stop:
            return "stopped"
        time.sleep(0.002)
    return value



@task
def cooperative(tc: TaskControl) -> str:
    """Runs until asked to stop, then returns."""
    tc.update_status("ready")
    while not tc.should_stop:
        time.sleep(0.002)
    return "stopped cleanly"
