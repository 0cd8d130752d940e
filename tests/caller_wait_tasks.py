"""A task for test_wait_in_caller: it reports where it is, then waits for the test."""

from __future__ import annotations

import os
import time

from backend_tasks import WAIT_LIMIT

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
