"""Soak: run many instances through one Session and report what the parent grew by.

    python benchmarks/soak.py [--instances 10000] [--max-parallel 4]

Measures, before and after (after a warm-up of a few instances, so lazily started
threads and first imports are not counted as growth): open file descriptors,
threads, child processes, ``/dev/shm`` control blocks and the parent's RSS. The
instances mix outcomes: completed, failed, stopped while running, cancelled while
pending, and with logs and progress. Exits 1 if any count grew or RSS grew by 20 MB
or more.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from typing import Dict

import psutil

from numerous.tasks import Session, TaskControl, task
from numerous.tasks.backends.local._shm import linked_blocks
from numerous.tasks.control import TaskControlHandler, set_task_control_handler

RSS_LIMIT_MB = 20.0


@task(max_parallel=4)
def mixed(tc: TaskControl, index: int) -> int:
    """Complete, fail or wait for a stop, depending on ``index``."""
    tc.log(f"instance {index}", "debug")
    tc.update_progress(50.0, f"half of {index}")
    if index % 7 == 3:
        raise ValueError(f"planned failure {index}")
    if index % 11 == 5:
        while not tc.should_stop:
            time.sleep(0.001)
    tc.update_progress(100.0, "done")
    return index


class _Counting(TaskControlHandler):
    def __init__(self) -> None:
        self.logs = 0

    def log(self, task_control: TaskControl, message: str, level: str, **extra: object) -> None:
        self.logs += 1


def census() -> Dict[str, float]:
    """What the parent holds now."""
    me = psutil.Process()
    return {
        "fds": me.num_fds(),
        "threads": threading.active_count(),
        "children": len(me.children(recursive=True)),
        # This process's blocks still in /dev/shm (others on the machine make their own).
        "shm_blocks": len(linked_blocks() & set(os.listdir("/dev/shm"))),
        "rss_mb": me.memory_info().rss / 2**20,
    }


def run(instances: int, batch: int) -> int:
    handler = _Counting()
    set_task_control_handler(handler)
    with Session(name="warm-up"):
        for i in range(8):
            mixed.instance().start(i * 2).wait_done()
    before = census()
    started = time.perf_counter()
    outcomes: Dict[str, int] = {}
    done = 0
    with Session(name="soak", stop_grace=1.0):
        while done < instances:
            futures = []
            for i in range(done, min(done + batch, instances)):
                instance = mixed.instance()
                futures.append((i, instance, instance.start(i)))
            for i, instance, future in futures:
                if i % 11 == 5:
                    instance.stop()
                elif i % 13 == 7:
                    future.cancel()
            for i, _, future in futures:
                future.wait_done()
                outcome = future.status
                if future.error is not None and not (i % 7 == 3 and isinstance(future.error, ValueError)):
                    outcome = f"unplanned {type(future.error).__name__}: {str(future.error)[:80]}"
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            done += len(futures)
            if sys.stderr.isatty():  # a counter redrawn in place; a log gets only the summary
                print(f"\r{done}/{instances} instances", end="", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - started
    after = census()
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(
        f"{instances} instances in {elapsed:.1f} s ({instances / elapsed:.0f}/s); outcomes {outcomes}; "
        f"{handler.logs} log records delivered"
    )
    print(f"{'':12}{'before':>10}{'after':>10}{'growth':>10}")
    failed = False
    for key in before:
        growth = after[key] - before[key]
        print(f"{key:12}{before[key]:>10.1f}{after[key]:>10.1f}{growth:>10.1f}")
        limit = RSS_LIMIT_MB if key == "rss_mb" else 0
        failed |= growth > limit
    unplanned = sum(n for outcome, n in outcomes.items() if outcome.startswith("unplanned"))
    failed |= unplanned > 0
    print("FAIL" if failed else "OK")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instances", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=64, help="instances started before waiting")
    args = parser.parse_args()
    sys.exit(run(args.instances, args.batch))


main()
