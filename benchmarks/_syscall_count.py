"""System calls per tiny task, counted by ``strace -f -c`` for each implementation.

Run as a script (``python _syscall_count.py IMPLEMENTATION TASKS``) it starts a pool of
two workers, warms it with four tiny tasks, runs ``TASKS`` more and closes the pool.
:func:`per_task` runs that under strace twice, with ``TASKS`` and with none, so the
start-up, warm-up and shutdown cancel out: what is left is the cost of the tasks, in
every process of the tree (the caller's, its threads' and the workers').
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, Optional

import _work

#: The implementations this script can run, by their row name in the report.
IMPLEMENTATIONS = ("numerous.tasks", "ProcessPoolExecutor (spawn)", "pebble")


def _run_ours(tasks: int) -> None:
    from numerous.tasks import Session

    with Session(name="bench-syscalls"):
        [f.result() for f in [_work.nt_tiny.instance().start(i) for i in range(4)]]
        futures = [_work.nt_tiny.instance().start(i) for i in range(tasks)]
        assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]


def _run_ppe(tasks: int) -> None:
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=spawn) as executor:
        [f.result() for f in [executor.submit(_work.tiny, i) for i in range(4)]]
        futures = [executor.submit(_work.tiny, i) for i in range(tasks)]
        assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]


def _run_pebble(tasks: int) -> None:
    import pebble

    pool = pebble.ProcessPool(max_workers=2, context=multiprocessing.get_context("spawn"))
    [f.result() for f in [pool.schedule(_work.tiny, args=(i,)) for i in range(4)]]
    futures = [pool.schedule(_work.tiny, args=(i,)) for i in range(tasks)]
    assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]
    pool.stop()
    pool.join()


_RUNNERS: Dict[str, Callable[[int], None]] = dict(zip(IMPLEMENTATIONS, (_run_ours, _run_ppe, _run_pebble)))


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
    _RUNNERS[implementation](int(tasks))


if __name__ == "__main__":  # the peers' spawned workers import this file again
    main()
