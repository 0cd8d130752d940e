"""Tasks for the worker-reuse tests."""

from __future__ import annotations

import os
import subprocess
import threading
import time

from api_tasks import append_line

from numerous.tasks import TaskControl, task


@task(max_parallel=2)
def pid_of_worker() -> int:
    return os.getpid()


@task(max_parallel=2, fresh_process=True)
def pid_in_fresh_process() -> int:
    return os.getpid()


@task
def leaves_a_thread() -> int:
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    return os.getpid()


@task
def leaves_a_child() -> int:
    subprocess.Popen(["sleep", "30"])
    return os.getpid()


@task
def changes_cwd(path: str) -> tuple:
    os.chdir(path)
    return os.getpid(), os.getcwd()


@task
def reports_cwd() -> tuple:
    return os.getpid(), os.getcwd()


@task
def changes_sys_path(entry: str) -> tuple:
    import sys

    sys.path.insert(0, entry)
    return os.getpid(), list(sys.path)


@task
def reports_sys_path() -> tuple:
    import sys

    return os.getpid(), list(sys.path)


@task
def fails_plainly() -> None:
    raise ValueError("plain failure")


@task
def exits_via_systemexit() -> None:
    raise SystemExit(3)


@task(max_parallel=2)
def never_returns() -> None:
    """Never returns by itself: only a timeout's termination ends it."""
    while True:
        time.sleep(0.01)


@task(max_parallel=2)
def reports_progress_then_waits(tc: TaskControl, go_file: str) -> int:
    tc.update_progress(42.0)
    deadline = time.monotonic() + 30
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        time.sleep(0.005)
    return os.getpid()


#: TaskControls that tasks kept past their end (a worker's module state survives its jobs).
_KEPT_CONTROLS = []


@task
def keeps_its_control(tc: TaskControl) -> int:
    _KEPT_CONTROLS.append(tc)
    return os.getpid()


@task
def uses_a_kept_control(tc: TaskControl) -> tuple:
    """What each call on the last instance's TaskControl did here (the name of what it
    raised), and whether this instance's own control still works."""
    kept = _KEPT_CONTROLS[-1]
    outcomes = []
    calls = (
        lambda: kept.should_stop,
        lambda: kept.update_progress(90.0, "from the last instance"),
        lambda: kept.update_status("from the last instance"),
        lambda: kept.log("from the last instance"),
    )
    for call in calls:
        try:
            call()
            outcomes.append("no error")
        except Exception as error:  # the test asserts which
            outcomes.append(type(error).__name__)
    tc.update_progress(10.0, "mine")
    return os.getpid(), outcomes, tc.should_stop


@task
def records_its_run(path: str, number: int) -> int:
    append_line(path, f"{number} {os.getpid()}")
    return os.getpid()
