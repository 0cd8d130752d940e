"""Tasks for the fault and bad-input tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any, Dict, List

from numerous.tasks import TaskControl, task


@task(max_parallel=4)
def quick(value: int) -> int:
    return value


@task(max_parallel=4)
def returns_soon(tc: TaskControl, delay: float) -> str:
    time.sleep(delay)
    return "returned"


@task
def report_status(tc: TaskControl, text: str) -> int:
    tc.update_status(text)
    return len(text)


@task
def floods(megabytes: int) -> str:
    chunk = "x" * 1023 + "\n"
    for _ in range(megabytes * 1024):
        sys.stdout.write(chunk)
        sys.stderr.write(chunk)
    return "flooded"


@task
def closes_stdio(tc: TaskControl) -> str:
    tc.log("before closing", "info")
    for fd in (0, 1, 2):
        os.close(fd)
    tc.log("after closing", "info")
    return "still here"


@task
def child_fds() -> List[int]:
    """The descriptors a subprocess of the task inherits."""
    out = subprocess.run(
        [sys.executable, "-c", "import os; print(' '.join(os.listdir('/proc/self/fd')))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sorted(int(fd) for fd in out.split())


@task
def connections_of_worker(tc: TaskControl) -> Dict[str, Any]:
    import psutil

    me = psutil.Process()
    return {"inet": [c._asdict() for c in me.net_connections(kind="inet")]}


@task
def runs_subprocess(code: int) -> int:
    return subprocess.run(["sh", "-c", f"exit {code}"]).returncode


@task
def sleeps_until_stopped(tc: TaskControl) -> str:
    tc.update_status("ready")
    while not tc.should_stop:
        time.sleep(0.005)
    return "stopped"
