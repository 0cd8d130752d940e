"""A task for test_wait_in_caller: it logs, then waits for the test as wait_for_go does."""

from __future__ import annotations

from backend_tasks import wait_for_go

from numerous.tasks import TaskControl, task


@task(max_parallel=4)
def log_then_wait(tc: TaskControl, go_file: str) -> str:
    """Logs "before", reports "ready" and waits for ``go_file`` (``wait_for_go``'s body),
    then logs "after" and returns "done" ("stopped" if asked to stop first)."""
    tc.log("before")
    outcome: str = wait_for_go.function(tc, go_file, "done")
    if outcome == "done":
        tc.log("after")
    return outcome
