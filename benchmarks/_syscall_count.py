"""System calls per tiny task, counted by ``strace -f -c`` for each implementation.

Run as a script (``python _syscall_count.py IMPLEMENTATION TASKS``) it starts a pool of
two workers, warms it with four tiny tasks, runs ``TASKS`` more and closes the pool.
:func:`per_task` runs that under strace twice, with ``TASKS`` and with none, so the
start-up, warm-up and shutdown cancel out: what is left is the cost of the tasks, in
every process of the tree (the caller's, its threads' and the workers').
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from typing import List, Optional

import _work
from _peers import peer_pools

#: The implementations this script can run, by their row name in the report.
IMPLEMENTATIONS = ("numerous.tasks", "ProcessPoolExecutor (spawn)", "pebble")


def _run_ours(tasks: int) -> None:
    from numerous.tasks import Session

    with Session(name="bench-syscalls"):
        [f.result() for f in [_work.nt_tiny.instance().start(i) for i in range(4)]]
        futures = [_work.nt_tiny.instance().start(i) for i in range(tasks)]
        assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]


def _run_peer(name: str, tasks: int) -> None:
    ((pool, submit, close),) = peer_pools(2, [name]).values()  # warmed with four tiny tasks
    futures = [submit(_work.tiny, i) for i in range(tasks)]
    assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]
    close(pool)


def strace_available() -> bool:
    """Whether strace is installed and allowed to trace here (containers may forbid it)."""
    if shutil.which("strace") is None:
        return False
    done = subprocess.run(["strace", "-f", "-c", "-o", os.devnull, "true"], capture_output=True)
    return done.returncode == 0


def _traced_calls(implementation: str, tasks: int) -> int:
    """Every system call the whole process tree makes running ``tasks`` tiny tasks."""
    with tempfile.TemporaryDirectory() as tmp:
        summary = os.path.join(tmp, "strace.txt")
        subprocess.run(
            ["strace", "-f", "-c", "-o", summary, sys.executable, __file__, implementation, str(tasks)],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with open(summary, encoding="utf-8") as f:
            total = [line for line in f if line.rstrip().endswith(" total")]
    # "100.00    0.005361          14       369        61 total": calls, then errors if any
    fields = total[-1].split()
    return int(fields[3])


def per_task(implementation: str, tasks: int) -> float:
    """System calls per task: a traced run of ``tasks`` less a traced run of none."""
    return (_traced_calls(implementation, tasks) - _traced_calls(implementation, 0)) / tasks


def main(argv: Optional[List[str]] = None) -> None:
    """Run one implementation's pool (the traced script)."""
    implementation, tasks = argv or sys.argv[1:3]
    if implementation == "numerous.tasks":
        _run_ours(int(tasks))
    else:
        _run_peer(implementation, int(tasks))


if __name__ == "__main__":  # the peers' spawned workers import this file again
    main()
