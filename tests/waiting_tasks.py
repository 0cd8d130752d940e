"""Tasks for the wait / as_completed / asyncio tests (test_waiting, test_asyncio).

Module level, so workers import them by reference. A task that must wait for the test
reports the status "ready" (the test learns it through its handler), then waits for a
file whose path the test passes, and returns early with "stopped" when asked to stop.
"""

from __future__ import annotations

import os
import time
from typing import Any, List, Optional

from numerous.tasks import Future, TaskControl, task

#: Seconds a task waits for its go file before failing (a test failure, never a normal path).
WAIT_LIMIT = 20.0
_POLL = 0.002


class GateError(Exception):
    """Raised by :func:`gate_fail` once its gate opens."""


def _wait_for_gate(tc: TaskControl, go_file: str) -> bool:
    """Report "ready", then wait for ``go_file``: True once it exists, False if asked to stop."""
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(go_file):
        if tc.should_stop:
            return False
        if time.monotonic() > deadline:
            raise TimeoutError(f"{go_file} never appeared")
        time.sleep(_POLL)
    return True


@task(max_parallel=4)
def gate(tc: TaskControl, go_file: str, value: Any = None) -> Any:
    """Return ``value`` once ``go_file`` exists ("stopped" if asked to stop first)."""
    return value if _wait_for_gate(tc, go_file) else "stopped"


@task(max_parallel=4)
def gate_fail(tc: TaskControl, go_file: str, message: str) -> None:
    """Raise :class:`GateError` once ``go_file`` exists."""
    if _wait_for_gate(tc, go_file):
        raise GateError(message)


@task(max_parallel=1)
def single(tc: TaskControl, go_file: str, value: Any = None) -> Any:
    """Like :func:`gate`, one instance at a time: a second one started waits as "pending"."""
    return value if _wait_for_gate(tc, go_file) else "stopped"


@task(max_parallel=4)
def slow_to_stop(tc: TaskControl, release_file: str) -> str:
    """Reports "ready"; once asked to stop, returns "stopped" only when ``release_file`` exists."""
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop:
        if time.monotonic() > deadline:
            raise TimeoutError("never asked to stop")
        time.sleep(_POLL)
    while not os.path.exists(release_file):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{release_file} never appeared")
        time.sleep(_POLL)
    return "stopped"


@task(max_parallel=4)
def echo(value: Any) -> Any:
    return value


@task(max_parallel=4)
def fail(message: str) -> None:
    raise ValueError(message)


def cancelled_future(go_file: str) -> Future[Any]:
    """A future that ended ``cancelled``: a second :func:`single` instance, cancelled while
    it waits for the first. The first is stopped too; its future is returned done."""
    first = single.instance()
    first_future = first.start(go_file)
    waiting = single.instance().start(go_file)
    assert waiting.status == "pending"
    assert waiting.cancel() is True
    first.stop()
    first_future.result(timeout=WAIT_LIMIT)
    return waiting


def finished(futures: List[Future[Any]], limit: Optional[float] = WAIT_LIMIT) -> List[Future[Any]]:
    """Wait until each future finished (without raising), and return them."""
    for future in futures:
        assert future.wait_done(limit), future
    return futures
