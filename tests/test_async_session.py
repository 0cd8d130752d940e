"""``async with Session()`` and ``await instance.stop_async()``: leaving a session and
stopping an instance from a coroutine, without blocking its event loop.

Whether the loop stays free is tested by making the exit depend on it: the gate the
session's instance waits for is opened by another coroutine, which can only run while
the loop is free. A blocked loop would leave the task waiting for its gate until it
gives up (WAIT_LIMIT), which fails the test.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest
from api_tasks import RecordingHandler
from backend_tasks import ignores_stop
from waiting_tasks import echo, gate, single, slow_to_stop

from numerous.tasks import Future, Session, SessionNotFoundError, TaskInstance
from numerous.tasks.session import current_session

pytestmark = pytest.mark.timeout(90)

RESULT_WAIT = 30.0


async def _ready(handler: RecordingHandler, count: int = 1) -> None:
    """Wait, without blocking the loop, until ``count`` gate tasks reported "ready"."""
    await asyncio.get_running_loop().run_in_executor(None, lambda: handler.wait_for_status("ready", count=count))


async def _open_when_exiting(exiting: asyncio.Event, go: Path) -> None:
    """Open the gate once the session's exit has begun, a few loop turns later."""
    await exiting.wait()
    for _ in range(3):
        await asyncio.sleep(0)
    go.touch()


# -- async with ---------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_async_with_waits_for_every_instance_while_the_loop_runs(go: Path) -> None:
    async def main() -> Tuple[Any, float]:
        exiting = asyncio.Event()
        opener = asyncio.ensure_future(_open_when_exiting(exiting, go))
        async with Session() as session:
            assert current_session() is session
            future = gate.instance().start(str(go), "waited for")
            exiting.set()  # no await after this: the task goes straight into __aexit__
            started = time.monotonic()
        waited = time.monotonic() - started
        assert future.status == "completed" and opener.done()
        with pytest.raises(SessionNotFoundError):
            current_session()  # not current any more, in this task's context either
        return future.result(), waited

    value, waited = asyncio.run(main())
    assert value == "waited for" and waited < RESULT_WAIT


@pytest.mark.usefixtures("task_backend")
def test_leaving_async_with_by_an_exception_stops_every_instance(handler: RecordingHandler, go: Path) -> None:
    running: Optional[Future[Any]] = None
    queued: Optional[Future[Any]] = None

    async def main() -> None:
        nonlocal running, queued
        async with Session():
            running = single.instance().start(str(go), "not this")
            queued = single.instance().start(str(go), "nor this")  # waits for the slot
            await _ready(handler)
            raise KeyError("leaving by an exception")

    with pytest.raises(KeyError, match="leaving by an exception"):
        asyncio.run(main())
    assert running is not None and queued is not None
    assert (running.status, running.result(timeout=0), queued.status) == ("completed", "stopped", "cancelled")


@pytest.mark.usefixtures("task_backend")
def test_cancelling_the_task_awaiting_the_exit_stops_the_instances(handler: RecordingHandler, go: Path) -> None:
    instances: List[TaskInstance[..., Any]] = []

    async def leave(exiting: asyncio.Event) -> None:
        async with Session():
            instances.extend(single.instance() for _ in range(2))
            for instance in instances:
                instance.start(str(go), "not this")
            await _ready(handler)
            exiting.set()

    async def main() -> None:
        exiting = asyncio.Event()
        leaving = asyncio.ensure_future(leave(exiting))
        await exiting.wait()  # leaving is now suspended in the exit, waiting for the instance
        assert not leaving.done()
        leaving.cancel()
        with pytest.raises(asyncio.CancelledError):
            await leaving

    asyncio.run(main())
    running, queued = (instance.future for instance in instances)
    assert running is not None and queued is not None
    # The exit returned only once they had ended: the running one saw should_stop.
    assert (running.status, running.result(timeout=0), queued.status) == ("completed", "stopped", "cancelled")
    assert instances[0].times.stop_requested_ns is not None


@pytest.mark.timeout(60)
def test_a_second_cancellation_of_the_exit_terminates_at_once(handler: RecordingHandler) -> None:
    """Like a second Ctrl-C: no more grace (local backend: a thread cannot be terminated)."""

    ids: List[str] = []

    async def leave(exiting: asyncio.Event) -> None:
        async with Session(backend="local", stop_grace=RESULT_WAIT):
            instance = ignores_stop.instance()
            ids.append(instance.id)
            future = instance.start()
            await _ready(handler)
            exiting.set()
        raise AssertionError(f"the exit returned: {future}")  # pragma: no cover

    async def main() -> float:
        exiting = asyncio.Event()
        leaving = asyncio.ensure_future(leave(exiting))
        await exiting.wait()
        leaving.cancel()  # stop, with RESULT_WAIT seconds of grace
        await asyncio.sleep(0.2)
        assert not leaving.done()  # still waiting: the task ignores the stop
        started = time.monotonic()
        leaving.cancel()  # terminate now
        with pytest.raises(asyncio.CancelledError):
            await leaving
        return time.monotonic() - started

    assert asyncio.run(main()) < RESULT_WAIT / 2
    assert handler.states(ids[0]) == ["pending", "running", "cancelled"]


@pytest.mark.usefixtures("task_backend")
def test_async_with_in_concurrent_tasks_keeps_each_session_to_its_task(go: Path) -> None:
    async def one(label: str) -> Tuple[str, Any]:
        async with Session(name=label) as session:
            await asyncio.sleep(0)  # let the other task enter its own session meanwhile
            assert current_session() is session
            return session.name, await echo.instance().start(label)

    async def main() -> List[Tuple[str, Any]]:
        return list(await asyncio.gather(one("first"), one("second")))

    assert asyncio.run(main()) == [("first", "first"), ("second", "second")]


# -- stop_async ----------------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_stop_async_returns_once_the_instance_has_ended(handler: RecordingHandler, tmp_path: Path) -> None:
    async def main() -> Tuple[str, str, str, Any]:
        async with Session():
            running = single.instance()
            future = running.start(str(tmp_path / "never"), "not this")
            queued = single.instance()
            queued.start(str(tmp_path / "never"), "nor this")
            never_started = single.instance()
            await _ready(handler)
            # The queued one first: stopping the running one would give it the slot.
            statuses = (await queued.stop_async(), await running.stop_async(), await never_started.stop_async())
            return (*statuses, future.result(timeout=0))

    assert asyncio.run(main()) == ("cancelled", "completed", "pending", "stopped")


@pytest.mark.timeout(60)
def test_stop_async_waits_for_the_termination_of_a_task_that_ignores_it(handler: RecordingHandler) -> None:
    async def main() -> Tuple[str, float]:
        async with Session(backend="local"):
            instance = ignores_stop.instance()
            instance.start()
            await _ready(handler)
            started = time.monotonic()
            return await instance.stop_async(timeout=0.1), time.monotonic() - started

    status, waited = asyncio.run(main())
    assert status == "cancelled" and waited < RESULT_WAIT


@pytest.mark.usefixtures("task_backend")
def test_cancelling_a_stop_async_stops_waiting_and_the_stop_stands(handler: RecordingHandler, go: Path) -> None:
    async def main() -> Tuple[bool, str, Any]:
        async with Session(stop_grace=RESULT_WAIT):
            instance = slow_to_stop.instance()
            future = instance.start(str(go))  # once asked to stop, it returns when go exists
            await _ready(handler)
            stopping = asyncio.ensure_future(instance.stop_async())
            await asyncio.sleep(0)  # stop_async has asked, and waits
            stopping.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stopping
            status = future.status
            go.touch()
            return instance.times.stop_requested_ns is not None, status, await future

    assert asyncio.run(main()) == (True, "running", "stopped")
