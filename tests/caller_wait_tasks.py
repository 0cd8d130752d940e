"""Tasks for test_wait_in_caller: each reports where it is, then waits for the test."""

from __future__ import annotations

import os
import time

from backend_tasks import WAIT_LIMIT, write_atomically

from numerous.tasks import TaskControl, task


@task(max_parallel=4)
def log_then_wait(tc: TaskControl, go_file: str) -> str:
    """Logs "before" and reports "ready", waits for ``go_file``, logs "after"."""
    tc.log("before")
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        if tc.should_stop:
            return "stopped"
        time.sleep(0.002)
    tc.log("after")
    return "done"


@task(max_parallel=4)
def pid_then_wait(tc: TaskControl, pid_file: str) -> str:
    """Writes its pid, then waits until stopped (or killed)."""
    write_atomically(pid_file, str(os.getpid()))
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        if tc.should_stop:
            return "stopped"
        time.sleep(0.002)
    return "not stopped"
