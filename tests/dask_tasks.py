"""Tasks for the Dask-specific tests (module level: Dask workers import them by
reference, with tests/ on their PYTHONPATH)."""

from __future__ import annotations

import os
import time

from backend_tasks import write_atomically

from numerous.tasks import TaskControl, task

WAIT_LIMIT = 30.0


@task(max_parallel=4)
def report_and_hold(tc: TaskControl) -> str:
    """Reports ``ready <its Dask worker's pid> <its own pid>``, then runs until stopped."""
    tc.update_status(f"ready {os.getppid()} {os.getpid()}")
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        if tc.should_stop:
            return "stopped"
        time.sleep(0.005)
    return "gave up"


@task(max_parallel=2)
def count_company(directory: str, name: str, hold: float) -> int:
    """How many instances (itself included) run at this moment, judged by marker files."""
    marker = os.path.join(directory, name)
    with open(marker, "w"):
        pass
    try:
        seen = len(os.listdir(directory))
        time.sleep(hold)
        return max(seen, len(os.listdir(directory)))
    finally:
        os.unlink(marker)


@task
def size_of(data: bytes) -> int:
    """The length of ``data``."""
    return len(data)


@task
def stop_marker(tc: TaskControl, pid_file: str, stopped_file: str) -> str:
    """Writes its pid, runs until asked to stop, then leaves ``stopped_file``."""
    write_atomically(pid_file, str(os.getpid()))
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop and time.monotonic() < deadline:
        time.sleep(0.005)
    write_atomically(stopped_file, "stopped" if tc.should_stop else "timed out")  # the test reads it once it exists
    return "stopped"


@task
def hold_memory_and_burn(tc: TaskControl, megabytes: int) -> int:
    """Holds ``megabytes`` MB (touched, so resident), reports ``holding <its pid>``, then
    keeps one core busy until stopped; returns its pid."""
    held = bytearray(megabytes * 1_000_000)
    for offset in range(0, len(held), 4096):  # every page written: resident, not just mapped
        held[offset] = 1
    tc.update_status(f"holding {os.getpid()}")
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop and time.monotonic() < deadline:
        pass  # CPU work, not a sleep (the stop may come before the first turn: the figures
        # the test waits for can show the busy allocation above)
    return os.getpid() if held[0] == 1 else -1
