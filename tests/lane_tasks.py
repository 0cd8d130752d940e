"""Tasks for the lane tests (test_lane.py): instances of one task that busy workers take
from the dispatcher's lane. Module level, so that workers import them by reference."""

from __future__ import annotations

import os
import subprocess
import time

from api_tasks import append_line
from worker_tasks import _timed

from numerous.tasks import TaskControl, task


@task(max_parallel=2)
def tick(log_file: str, label: str) -> str:
    """Record ``start``/``end`` lines (label, monotonic ns) around nothing; return ``label``."""
    append_line(log_file, f"start {label} {time.monotonic_ns()}")
    append_line(log_file, f"end {label} {time.monotonic_ns()}")
    return label


@task(max_parallel=2)
def gated(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """Record ``run <label> <pid>``, then do what ``worker_tasks.timed_a`` does: return
    ``label`` once ``go_file`` exists ("stopped" when asked to stop first)."""
    append_line(log_file, f"run {label} {os.getpid()}")
    return _timed(tc, log_file, label, go_file)


@task(max_parallel=2)
def leaves_a_child_when_told(log_file: str, label: str, leave_child: bool) -> str:
    """Record ``run <label> <pid>``; leave a ``sleep`` child running if ``leave_child``."""
    append_line(log_file, f"run {label} {os.getpid()}")
    if leave_child:
        subprocess.Popen(["sleep", "30"])
    return label


@task(max_parallel=2)
def starts_in_then_wanders(wander_to: str) -> str:
    """Return the directory the instance started in, then change to ``wander_to``."""
    started_in = os.getcwd()
    os.chdir(wander_to)
    return started_in
