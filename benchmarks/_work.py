"""Work functions for the benchmarks, importable by every peer's worker processes."""

from __future__ import annotations

import os
import time
from typing import Tuple

from numerous.tasks import TaskControl, task


def body_started_ns() -> int:
    """A task that reports when its body began (monotonic, comparable across processes)."""
    return time.monotonic_ns()


def tiny(value: int) -> int:
    return value + 1


def big_result(size: int) -> bytes:
    return bytes(size)


def spin_until_file(path: str, limit: float = 60.0) -> None:
    """For peers that cannot stop running work: spin, then wait to be killed."""
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pass


def log_through_queue(queue: object, count: int) -> None:
    """The stdlib way to get a worker's logs home: logging + QueueHandler."""
    import logging
    import logging.handlers

    logger = logging.getLogger(f"bench-{os.getpid()}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(logging.handlers.QueueHandler(queue))  # type: ignore[arg-type]
    for i in range(count):
        logger.info("line %d", i)


@task(max_parallel=2)
def nt_body_started_ns() -> int:
    return time.monotonic_ns()


@task(max_parallel=2)
def nt_body_span_ns() -> Tuple[int, int]:
    """When the body began and when it returned (monotonic, comparable across processes)."""
    began = time.monotonic_ns()
    return began, time.monotonic_ns()


@task(max_parallel=2)
def nt_tiny(value: int) -> int:
    return value + 1


@task(max_parallel=2)
def nt_square(value: int) -> int:
    return value * value


def square(value: int) -> int:
    return value * value


@task
def nt_big_result(size: int) -> bytes:
    return bytes(size)


@task
def nt_poll_until_stopped(tc: TaskControl) -> str:
    while not tc.should_stop:
        pass
    return "stopped"


@task
def nt_ignore_stop(tc: TaskControl, child: bool) -> None:
    if child:
        import subprocess

        subprocess.Popen(["sleep", "60"])
    while True:
        pass


@task
def nt_log_lines(tc: TaskControl, count: int) -> int:
    log = tc.log
    for _ in range(count):
        log("line", "info")
    return count
