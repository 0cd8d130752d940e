"""Tasks for the session-wide worker cap and size tests (test_max_workers.py, test_sizes.py).

Several task definitions that do the same thing, so a test can start instances of
different tasks: each records ``start <label> <ns>`` / ``end <label> <ns>`` in a log file
around waiting for a file the test creates (bounded by ``api_tasks.WAIT_LIMIT``; it
returns "stopped" if asked to stop first), and reports ``running <label>`` through the task control handler. Module level, so that
workers import them by reference.
"""

from __future__ import annotations

import os
import time

from api_tasks import WAIT_LIMIT, append_line

from numerous.tasks import TaskControl, task


def _timed(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """Return ``label`` once ``go_file`` exists, or "stopped" when asked to stop."""
    append_line(log_file, f"start {label} {time.monotonic_ns()}")
    tc.update_status(f"running {label}")
    deadline = time.monotonic() + WAIT_LIMIT
    try:
        while not os.path.exists(go_file):
            if tc.should_stop:
                return "stopped"
            if time.monotonic() > deadline:
                raise TimeoutError(f"{go_file} never appeared")
            time.sleep(0.002)
    finally:
        append_line(log_file, f"end {label} {time.monotonic_ns()}")
    return label


@task(max_parallel=4)
def timed_a(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """Waits for ``go_file``, recording its start and end."""
    return _timed(tc, log_file, label, go_file)


@task(max_parallel=4)
def timed_b(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """Waits for ``go_file``, recording its start and end."""
    return _timed(tc, log_file, label, go_file)


@task(max_parallel=4)
def timed_c(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """Waits for ``go_file``, recording its start and end."""
    return _timed(tc, log_file, label, go_file)


@task(max_parallel=1)
def timed_single(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """Waits for ``go_file``, recording its start and end; one instance at a time."""
    return _timed(tc, log_file, label, go_file)


@task(max_parallel=4, size="medium")
def timed_medium(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """A medium task that waits for ``go_file``, recording its start and end."""
    return _timed(tc, log_file, label, go_file)


@task(max_parallel=4, size="large")
def timed_large(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """A large task that waits for ``go_file``, recording its start and end."""
    return _timed(tc, log_file, label, go_file)


@task(max_parallel=4)
def recorded_item(log_file: str, label: str) -> str:
    """One item of a map: records its start and end around a short wait."""
    append_line(log_file, f"start {label} {time.monotonic_ns()}")
    time.sleep(0.02)
    append_line(log_file, f"end {label} {time.monotonic_ns()}")
    return label


@task(max_parallel=2)
def hog(tc: TaskControl, step_mb: int, most_mb: int) -> str:
    """Hold ever more memory (touched, so resident), ``step_mb`` at a time up to ``most_mb``."""
    held = []
    while sum(map(len, held)) < most_mb * 2**20:
        if tc.should_stop:
            return "stopped"
        held.append(b"\x01" * (step_mb * 2**20))
        tc.update_status(f"holding {len(held) * step_mb} MB")
        time.sleep(0.02)
    return f"held {most_mb} MB"


@task(max_parallel=8, size="medium")
def parent_pid() -> int:
    """The pid of the process that started this instance's worker (on Dask: the Dask worker)."""
    return os.getppid()
