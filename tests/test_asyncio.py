"""``await future`` in a running event loop: values, errors, cancellation as a stop
request, and interplay with asyncio.gather / wait_for / shield / ensure_future."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, List, Optional

import pytest
from api_tasks import RecordingHandler
from waiting_tasks import GateError, echo, fail, gate, gate_fail, single

from numerous.tasks import Future, Session, TaskCancelledError, TaskControl, set_task_control_handler

pytestmark = pytest.mark.timeout(60)

RESULT_WAIT = 30.0


class ReadyHandler(RecordingHandler):
    """Also sets an asyncio.Event in the loop's thread when a task reports "ready"."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.ready: Optional[asyncio.Event] = None
        self.ready_ids: List[str] = []

    def attach(self) -> asyncio.Event:
        """Bind to the running loop; returns the event that "ready" sets."""
        self.loop = asyncio.get_running_loop()
        self.ready = asyncio.Event()
        return self.ready

    def update_status(self, task_control: TaskControl, status: str) -> None:
        super().update_status(task_control, status)
        if status == "ready" and self.loop is not None and self.ready is not None:
            self.loop.call_soon_threadsafe(self._mark_ready, task_control.instance_id)

    def _mark_ready(self, instance_id: str) -> None:
        self.ready_ids.append(instance_id)
        assert self.ready is not None
        self.ready.set()

    async def wait_ready(self, count: int = 1) -> None:
        assert self.ready is not None
        while len(self.ready_ids) < count:
            self.ready.clear()
            await asyncio.wait_for(self.ready.wait(), RESULT_WAIT)


@pytest.fixture
def handler() -> ReadyHandler:
    ready = ReadyHandler()
    set_task_control_handler(ready)
    return ready


def test_await_returns_the_value_without_blocking_the_loop(handler: ReadyHandler, tmp_path: Path) -> None:
    go = tmp_path / "go"

    async def main() -> Any:
        handler.attach()
        future = gate.instance().start(str(go), "value")
        awaiting = asyncio.ensure_future(future)
        # The loop keeps running while the future is awaited: it hears the task's
        # "ready" (through call_soon_threadsafe) and opens the gate itself.
        await handler.wait_ready()
        assert not awaiting.done()
        go.touch()
        return await asyncio.wait_for(awaiting, RESULT_WAIT)

    with Session():
        assert asyncio.run(main()) == "value"


def test_await_raises_the_task_exception() -> None:
    async def main() -> None:
        with pytest.raises(ValueError, match=r"^async failure$"):
            await fail.instance().start("async failure")

    with Session():
        asyncio.run(main())


def test_await_of_a_finished_future_returns_at_once() -> None:
    with Session():
        future = echo.instance().start("done already")
        assert future.wait_done(RESULT_WAIT)

        async def main() -> Any:
            return await future

        assert asyncio.run(main()) == "done already"
        assert asyncio.run(main()) == "done already"  # awaitable any number of times


def test_the_session_opened_inside_a_coroutine_is_used() -> None:
    async def main() -> List[Any]:
        with Session():
            return [await echo.instance().start(i) for i in range(3)]

    assert asyncio.run(main()) == [0, 1, 2]


def test_gather_collects_results_in_order() -> None:
    async def main() -> List[Any]:
        futures = [echo.instance().start(i) for i in range(6)]
        return list(await asyncio.gather(*futures))

    with Session():
        assert asyncio.run(main()) == [0, 1, 2, 3, 4, 5]


def test_gather_with_return_exceptions(tmp_path: Path) -> None:
    async def main() -> List[Any]:
        return list(
            await asyncio.gather(echo.instance().start(1), fail.instance().start("bad"), return_exceptions=True)
        )

    with Session():
        ok, error = asyncio.run(main())
    assert ok == 1 and isinstance(error, ValueError) and str(error) == "bad"


def test_cancelling_the_awaiting_task_asks_a_running_instance_to_stop(handler: ReadyHandler, tmp_path: Path) -> None:
    async def main() -> None:
        handler.attach()
        instance = gate.instance()
        future = instance.start(str(tmp_path / "never"), "not this")
        awaiting = asyncio.ensure_future(future)
        await handler.wait_ready()
        awaiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await awaiting
        assert instance.times.stop_requested_ns is not None
        # The task saw should_stop and returned: awaiting again gives its value.
        assert await asyncio.wait_for(future, RESULT_WAIT) == "stopped"

    with Session():
        asyncio.run(main())


def test_cancelling_the_awaiting_task_cancels_a_pending_instance(handler: ReadyHandler, tmp_path: Path) -> None:
    async def main() -> str:
        handler.attach()
        first = single.instance()
        first_future = first.start(str(tmp_path / "go"), "first")
        queued = single.instance()
        queued_future = queued.start(str(tmp_path / "go"), "queued")
        assert queued_future.status == "pending"
        awaiting = asyncio.ensure_future(queued_future)
        await handler.wait_ready()
        awaiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await awaiting
        assert queued_future.status == "cancelled"
        with pytest.raises(TaskCancelledError):
            await queued_future
        (tmp_path / "go").touch()
        assert await first_future == "first"
        return queued.id

    with Session():
        queued_id = asyncio.run(main())
    assert handler.states(queued_id) == ["pending", "cancelled"]  # it never ran


def test_wait_for_timeout_stops_the_instance(handler: ReadyHandler, tmp_path: Path) -> None:
    async def main() -> None:
        handler.attach()
        future = gate.instance().start(str(tmp_path / "never"), "not this")
        await handler.wait_ready()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(future, 0.05)
        assert await asyncio.wait_for(future, RESULT_WAIT) == "stopped"

    with Session():
        asyncio.run(main())


def test_shield_stops_waiting_without_stopping_the_instance(handler: ReadyHandler, tmp_path: Path) -> None:
    go = tmp_path / "go"

    async def main() -> None:
        handler.attach()
        instance = gate.instance()
        future = instance.start(str(go), "kept running")
        await handler.wait_ready()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(future), 0.05)
        assert instance.times.stop_requested_ns is None
        assert future.status == "running"
        go.touch()
        assert await asyncio.wait_for(future, RESULT_WAIT) == "kept running"

    with Session():
        asyncio.run(main())


def test_ensure_future_interoperates_with_asyncio_wait(handler: ReadyHandler, tmp_path: Path) -> None:
    async def main() -> None:
        handler.attach()
        slow = asyncio.ensure_future(gate.instance().start(str(tmp_path / "go"), "slow"))
        quick = asyncio.ensure_future(echo.instance().start("quick"))
        done, pending = await asyncio.wait({slow, quick}, return_when=asyncio.FIRST_COMPLETED, timeout=RESULT_WAIT)
        assert (done, pending) == ({quick}, {slow})
        assert quick.result() == "quick"
        (tmp_path / "go").touch()
        assert await slow == "slow"

    with Session():
        asyncio.run(main())


def test_several_coroutines_await_one_future(handler: ReadyHandler, tmp_path: Path) -> None:
    go = tmp_path / "go"

    async def main() -> List[Any]:
        handler.attach()
        future = gate_fail.instance().start(str(go), "shared failure")
        waiters = [asyncio.ensure_future(future) for _ in range(3)]
        await handler.wait_ready()
        go.touch()
        return list(await asyncio.gather(*waiters, return_exceptions=True))

    with Session():
        errors = asyncio.run(main())
    assert [type(e) for e in errors] == [GateError] * 3
    assert errors[0] is errors[1] is errors[2]


def test_a_cancelled_await_calls_cancel_once_and_forgets_its_callback() -> None:
    """The bridge itself, on a bare future that nothing finishes (as a backend would)."""

    class CountingCanceller:
        calls = 0

        def request_cancel(self) -> bool:
            self.calls += 1
            return False  # "running": a stop was requested

    canceller = CountingCanceller()
    future: Future[int] = Future(canceller, "bare")

    async def main() -> None:
        awaiting = asyncio.ensure_future(future)
        await asyncio.sleep(0)  # let it start awaiting
        assert len(future._callbacks) == 1
        awaiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await awaiting
        assert future._callbacks == []
        assert canceller.calls == 1
        # finishing from another thread wakes a new awaiter in this loop
        threading.Thread(target=future.set_result, args=(5,)).start()
        assert await asyncio.wait_for(future, RESULT_WAIT) == 5

    asyncio.run(main())


def test_a_future_finished_after_its_loop_closed_does_not_raise() -> None:
    future: Future[int] = Future(type("C", (), {"request_cancel": lambda self: False})(), "bare")
    loop = asyncio.new_event_loop()
    try:
        awaiting = loop.create_task(_await(future))
        awaiting._log_destroy_pending = False  # type: ignore[attr-defined]  # left pending on purpose
        loop.run_until_complete(asyncio.sleep(0))  # it now waits on the future
    finally:
        loop.close()  # the awaiting task never resumes
    assert future.set_result(1) is True  # the wake-up finds the loop closed: ignored
    assert future.result(timeout=0) == 1
    del awaiting


async def _await(future: Future[int]) -> int:
    return await future
