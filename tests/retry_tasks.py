"""Tasks for tests/test_retries.py (module level: workers import them by reference).

Each attempt counts itself in a file the test passes, so the test knows how many runs
there were whatever process (or thread, or Dask worker) ran them.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Tuple

from backend_tasks import WAIT_LIMIT, write_atomically

from numerous.tasks import TaskControl, task


class TransientError(Exception):
    """What a flaky task raises: retried when a task says so."""


def count_attempt(path: str) -> int:
    """Add one to the attempts counted in ``path``; this attempt's number (1, 2, ...)."""
    done = 0
    if os.path.exists(path):
        with open(path) as f:
            done = int(f.read())
    write_atomically(path, str(done + 1))
    return done + 1


@task(retries=3, retry_on=(TransientError,), max_parallel=4)
def flaky(tc: TaskControl, counter: str, failures: int) -> Tuple[int, int, int]:
    """Fails ``failures`` times with TransientError, then returns (its run, what its
    TaskControl says the attempt is, its pid)."""
    run = count_attempt(counter)
    if run <= failures:
        raise TransientError(f"transient failure {run}")
    return run, tc.attempt, os.getpid()


@task(retries=2, max_parallel=4)  # retry_on: the default, a worker that died
def killed_first(tc: TaskControl, counter: str) -> Tuple[int, int]:
    """SIGKILLs its own process on the first attempt; returns (its run, tc.attempt)."""
    run = count_attempt(counter)
    if run == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return run, tc.attempt


@task(retries=2, retry_on=(TransientError,))
def always_fails(counter: str) -> None:
    """Fails every attempt, saying which."""
    run = count_attempt(counter)
    raise TransientError(f"attempt {run} failed")


@task(retries=2, retry_on=(TransientError,))
def fails_otherwise(counter: str) -> None:
    """Fails with an error the task does not retry."""
    count_attempt(counter)
    raise KeyError("not transient")


@task(retries=2, retry_on=(TransientError,))
def fails_when_stopped(tc: TaskControl, counter: str) -> None:
    """Says "ready", waits for a stop, then fails with a retried kind of error."""
    count_attempt(counter)
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop and time.monotonic() < deadline:
        time.sleep(0.005)
    raise TransientError("failed on the way out")


@task(retries=2, retry_on=(TransientError,), retry_delay=60.0)
def fails_then_waits(counter: str) -> None:
    """Fails; its retry waits a minute (a test cancels it meanwhile)."""
    count_attempt(counter)
    raise TransientError("first attempt failed")
