"""Tasks and a recording handler for the ``task.map()`` tests (test_map.py).

Tasks live at module level so that workers import them by reference. Items that must
wait for the test wait for a file whose path the test passes in (bounded by
``WAIT_LIMIT``), and say they run through the task control handler.
"""

from __future__ import annotations

import os
import threading
import time
from typing import List, Optional

from api_tasks import WAIT_LIMIT, Event, RecordingHandler, append_line, wait_for_file, write_file

from numerous.tasks import TaskControl, task
from numerous.tasks.maps import MapProgress

#: The start of a script (a test runs it as ``__main__``) with ``slow``: two may run at
#: once, each item takes 20 s unless its chunk is asked to stop, then returns ``-n``.
SLOW_TASK_SCRIPT = """
import signal, sys, threading, time
from numerous.tasks import Session, TaskControl, task

@task(max_parallel=2)
def slow(tc: TaskControl, n: int) -> int:
    for _ in range(2000):  # 20 s unless stopped
        if tc.should_stop:
            return -n
        time.sleep(0.01)
    return n
"""


@task(max_parallel=2)
def square(n: int) -> int:
    return n * n


@task(max_parallel=2)
def add(a: int, b: int) -> int:
    return a + b


@task(max_parallel=2)
def fails_on(n: int, bad: int) -> int:
    """``n``, or a ValueError for the item equal to ``bad``."""
    if n == bad:
        raise ValueError(f"item {n} is bad")
    return n


@task(max_parallel=2)
def gated(tc: TaskControl, log_file: str, go_file: str, label: str) -> str:
    """Log "start label <ns>" / "end label <ns>" around waiting for ``go_file``."""
    append_line(log_file, f"start {label} {time.monotonic_ns()}")
    tc.update_status(f"running {label}")
    try:
        if not wait_for_file(go_file):
            raise TimeoutError(f"{go_file} never appeared")
    finally:
        append_line(log_file, f"end {label} {time.monotonic_ns()}")
    return label


@task(max_parallel=2)
def blocks_from(tc: TaskControl, ran_dir: str, first_blocking: int, n: int) -> int:
    """Items below ``first_blocking`` return at once; the others leave ``ran_dir/<n>``,
    report "blocked <n>" and run until asked to stop (at most ``WAIT_LIMIT`` s)."""
    if n < first_blocking:
        return n
    write_file(os.path.join(ran_dir, str(n)))
    tc.update_status(f"blocked {n}")
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop:
        if time.monotonic() > deadline:
            raise TimeoutError("nobody stopped me")
        time.sleep(0.002)
    return -n


@task(max_parallel=1)
def reports(tc: TaskControl, n: int) -> int:
    """Logs about the item, reports half its progress, then returns it."""
    tc.log(f"item {n}", "info")
    tc.update_progress(50.0, f"half of {n}")
    return n


@task(max_parallel=2)
def stops_itself(tc: TaskControl, n: int) -> int:
    """Item 10 asks its own chunk to stop (``tc.request_stop()``)."""
    if n == 10:
        tc.request_stop()
    return n


@task(max_parallel=2)
def fails_then_blocks(tc: TaskControl, ran_dir: str, n: int) -> int:
    """Item 0 raises; the others leave ``ran_dir/<n>`` and run until asked to stop."""
    if n == 0:
        raise ValueError("item 0 is bad")
    return blocks_from.function(tc, ran_dir, 0, n)  # type: ignore[no-any-return]


@task(max_parallel=2)
def dies_on(n: int, bad: int) -> int:
    """The worker process dies at the item equal to ``bad`` (``os._exit(3)``)."""
    if n == bad:
        os._exit(3)
    return n


class MapRecorder(RecordingHandler):
    """A RecordingHandler that also keeps every ``map_changed`` call."""

    def __init__(self) -> None:
        super().__init__()
        self.maps: List[MapProgress] = []
        self.map_threads: List[str] = []

    def map_changed(self, progress: MapProgress) -> None:
        with self._changed:
            self.maps.append(progress)
            self.map_threads.append(threading.current_thread().name)
            self.events.append(Event(("map", progress.map_id, progress.task_name, progress)))  # one timeline
            self._changed.notify_all()

    def map_states(self, map_id: Optional[str] = None) -> List[str]:
        """The states the map (or the one map) was reported in, repeats collapsed."""
        states: List[str] = []
        with self._changed:
            for progress in self.maps:
                if map_id in (None, progress.map_id) and (not states or states[-1] != progress.state):
                    states.append(progress.state)
        return states

    def wait_for_map_end(self, timeout: float = WAIT_LIMIT) -> MapProgress:
        """The final report of the (only) map, once it came."""
        with self._changed:
            if not self._changed.wait_for(lambda: any(p.finished for p in self.maps), timeout):
                raise AssertionError(f"the map did not end within {timeout} s: {self.maps[-3:]}")
            return next(p for p in self.maps if p.finished)

    def chunk_ids(self) -> List[str]:
        """Every chunk instance a map reported, in the order they appeared."""
        seen: List[str] = []
        with self._changed:
            for progress in self.maps:
                seen += [i for i in progress.chunks if i not in seen]
        return seen


def ran(ran_dir: str) -> List[int]:
    """The blocking items that ran (see ``blocks_from``)."""
    return sorted(int(name) for name in os.listdir(ran_dir) if not name.endswith(".tmp"))
