"""Tasks for test_inline_backend and test_pytest_plugin (module level: imported by reference).

Tasks that must wait for the test wait for a file whose path the test passes in (it
works across processes, so the same task runs on the local backend too), bounded by
``WAIT_LIMIT``; or, where a test is about the inline backend only, for a
``threading.Event`` passed by reference.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any, List, Optional, Tuple

from api_tasks import _POLL, WAIT_LIMIT
from api_tasks import wait_for_file as _wait_for

from numerous.tasks import TaskControl, task


@task
def reports(tc: TaskControl, n: int) -> int:
    """Log, report progress and status, return ``n * 2``."""
    tc.log("starting", "info", step=0)
    tc.update_status("working")
    for i in range(n):
        tc.update_progress(100 * (i + 1) / n, f"{i + 1}/{n}")
    tc.log("done", "debug")
    return n * 2


@task(max_parallel=1)
def one_at_a_time(tc: TaskControl, go_file: str, value: str) -> str:
    """Report "waiting", then wait for ``go_file``; return ``value``."""
    tc.update_status("waiting")
    if not _wait_for(go_file):
        raise TimeoutError(f"{go_file} never appeared")
    return value


@task
def until_stopped(tc: TaskControl) -> str:
    """Report "ready", then poll ``should_stop`` and return "stopped"."""
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop:
        if time.monotonic() > deadline:
            return "never stopped"
        time.sleep(_POLL)
    tc.log("stopping", "warning")
    return "stopped"


@task
def ignores_stop_until(tc: TaskControl, release: threading.Event) -> str:
    """Report "ready", then ignore the stop request until ``release`` is set (inline, no pickling)."""
    tc.update_status("ready")
    release.wait(WAIT_LIMIT)
    tc.log("too late")
    return "finished anyway"


@task
def fails(message: str) -> None:
    """Raise ValueError(message)."""
    _raise_value_error(message)


def _raise_value_error(message: str) -> None:
    raise ValueError(message)  # the frame a traceback must show


class NeedsArgs(Exception):
    """Plain pickle cannot rebuild it without tblib's help (``__init__`` takes two)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code


class HoldsLock(Exception):
    """Cannot be pickled at all: an attribute is a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


@task
def raises(kind: str) -> None:
    """Raise an exception that crosses a process boundary (or not), by ``kind``."""
    if kind == "needs-args":
        raise NeedsArgs(7, "custom init")
    if kind == "holds-lock":
        raise HoldsLock("has a lock")
    if kind == "system-exit":
        raise SystemExit(3)
    raise KeyboardInterrupt


@task
def returns_lock() -> Any:
    """Return what cannot be pickled."""
    return {"fine": 1, "lock": threading.Lock()}


@task
def identity(value: Any) -> Any:
    """Return the argument itself."""
    return value


@task
def mutates(items: List[int]) -> List[int]:
    """Append to the list it was given and return it."""
    items.append(4)
    return items


@task
def where(tc: TaskControl) -> Tuple[int, Optional[int], str]:
    """Where the task runs: (pid, tc.process_id, thread name)."""
    return os.getpid(), tc.process_id, threading.current_thread().name


@task
def waits_forever_cooperatively(tc: TaskControl, started: threading.Event) -> str:
    """Set ``started``; return once asked to stop (inline, no pickling)."""
    started.set()
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop and time.monotonic() < deadline:
        time.sleep(_POLL)
    return "stopped"


@task
def logs_a_lock(tc: TaskControl) -> None:
    """Log one record whose extras cannot be pickled."""
    tc.log("with a lock", "info", n=1, lock=threading.Lock())
