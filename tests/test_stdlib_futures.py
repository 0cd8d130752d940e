"""The standard library takes task futures wherever it takes futures.

A task Future is a ``concurrent.futures.Future``: ``concurrent.futures.wait`` and
``as_completed``, ``asyncio.wrap_future``, ``asyncio.wait`` and ``asyncio.gather`` work on
it, with their own semantics for timeouts, and cancelling an asyncio task that awaits an
instance (through ``wrap_future`` or ``gather``) stops the instance. The same bodies run on
the local, inline and Dask backends.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import threading
import time
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest
from api_tasks import RecordingHandler
from waiting_tasks import cancelled_future, echo, fail, finished, gate, single

from numerous.tasks import Future, Session, TaskCancelledError

pytestmark = pytest.mark.timeout(90)

RESULT_WAIT = 30.0
SHORT = 0.05  # a timeout that must run out: the futures waited for cannot finish in it


async def _ready(handler: RecordingHandler, count: int = 1) -> None:
    """Wait, without blocking the loop, until ``count`` gate tasks reported "ready"."""
    await asyncio.get_running_loop().run_in_executor(None, lambda: handler.wait_for_status("ready", count=count))


# -- the base class -----------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_a_future_is_a_concurrent_futures_future_with_its_methods(tmp_path: Path) -> None:
    with Session(max_workers=None):  # cancelled_future() needs one running beside the other two
        succeeded, failed = echo.instance().start(1), fail.instance().start("bad")
        cancelled = cancelled_future(str(tmp_path / "go"))
        finished([succeeded, failed])
    for future in (succeeded, failed, cancelled):
        assert isinstance(future, concurrent.futures.Future)
        assert future.done() is True and not future.running()
    assert (succeeded.cancelled(), succeeded.exception(), succeeded.result()) == (False, None, 1)
    error = failed.exception(timeout=0)
    assert isinstance(error, ValueError) and error is failed.error and not failed.cancelled()
    assert cancelled.cancelled()
    with pytest.raises(TaskCancelledError):
        cancelled.exception()
    assert Future[int] is not None  # subscriptable at run time, as the base class is


def test_a_free_standing_future_follows_the_executor_protocol() -> None:
    """What an executor does with the futures it hands out (no process involved)."""
    future: Future[int] = Future()
    assert future.set_running_or_notify_cancel() is True and future.running()
    with pytest.raises(RuntimeError, match="unexpected state"):
        future.set_running_or_notify_cancel()
    assert future.set_result(5) is True
    assert concurrent.futures.wait([future], timeout=0).done == {future}
    cancelled: Future[int] = Future()
    assert cancelled.cancel() is True
    assert cancelled.set_running_or_notify_cancel() is False  # the executor skips it
    assert cancelled.cancelled() and cancelled.done()


# -- concurrent.futures.wait and as_completed ---------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_cf_wait_honours_return_when_and_timeout(handler: RecordingHandler, go: Path) -> None:
    with Session():
        blocked = gate.instance().start(str(go), "late")
        quick = echo.instance().start("quick")
        done, not_done = concurrent.futures.wait(
            [blocked, quick], timeout=RESULT_WAIT, return_when=concurrent.futures.FIRST_COMPLETED
        )
        assert (done, not_done) == ({quick}, {blocked})
        failing = fail.instance().start("first exception")
        done, not_done = concurrent.futures.wait(
            [blocked, failing], timeout=RESULT_WAIT, return_when=concurrent.futures.FIRST_EXCEPTION
        )
        assert (done, not_done) == ({failing}, {blocked})
        handler.wait_for_status("ready")
        started = time.monotonic()
        done, not_done = concurrent.futures.wait([blocked, quick], timeout=SHORT)
        assert SHORT * 0.9 <= time.monotonic() - started < RESULT_WAIT
        assert (done, not_done) == ({quick}, {blocked})
        assert blocked.status == "running" and blocked._waiters == []  # not stopped, nothing left behind
        with pytest.raises(concurrent.futures.TimeoutError):
            blocked.exception(timeout=SHORT)
        go.touch()
        done, not_done = concurrent.futures.wait([blocked, quick, failing], timeout=RESULT_WAIT)
        assert (done, not_done) == ({blocked, quick, failing}, set())
        assert blocked.result() == "late"


@pytest.mark.usefixtures("task_backend")
def test_cf_wait_mixes_task_futures_and_an_executor_s(go: Path) -> None:
    with Session(), concurrent.futures.ThreadPoolExecutor(1) as pool:
        ours = gate.instance().start(str(go), "ours")
        theirs = pool.submit(lambda: (go.touch(), "theirs")[1])
        done, not_done = concurrent.futures.wait([ours, theirs], timeout=RESULT_WAIT)
        assert (done, not_done) == ({ours, theirs}, set())
        assert (ours.result(), theirs.result()) == ("ours", "theirs")


@pytest.mark.usefixtures("task_backend")
def test_cf_as_completed_yields_in_finishing_order_then_times_out(handler: RecordingHandler, tmp_path: Path) -> None:
    gates = {name: tmp_path / name for name in ("a", "b")}
    with Session():
        already = finished([echo.instance().start("already")])[0]
        a, b = (gate.instance().start(str(path), name) for name, path in gates.items())
        handler.wait_for_status("ready", count=2)
        iterator = concurrent.futures.as_completed([a, already, b], timeout=RESULT_WAIT)
        assert next(iterator) is already
        gates["b"].touch()
        assert next(iterator) is b
        with pytest.raises(concurrent.futures.TimeoutError, match=r"^1 \(of 3\) futures unfinished$"):
            list(concurrent.futures.as_completed([a, already, b], timeout=SHORT))
        assert a.status == "running" and len(a._waiters) == 1  # only the live iterator's is left
        gates["a"].touch()
        assert next(iterator) is a
        assert list(iterator) == [] and a._waiters == []


# -- asyncio.wrap_future ----------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_wrap_future_gives_the_value_the_error_and_a_cancellation(tmp_path: Path) -> None:
    async def main() -> Tuple[Any, BaseException, bool]:
        value = await asyncio.wrap_future(echo.instance().start("wrapped"))
        with pytest.raises(ValueError, match=r"^wrapped failure$") as caught:
            await asyncio.wrap_future(fail.instance().start("wrapped failure"))
        cancelled = asyncio.wrap_future(cancelled_future(str(tmp_path / "go")))
        await asyncio.wait([cancelled])  # cancelled already: its asyncio twin is cancelled too
        return value, caught.value, cancelled.cancelled()

    with Session():
        value, error, cancelled = asyncio.run(main())
    assert (value, type(error), cancelled) == ("wrapped", ValueError, True)


@pytest.mark.usefixtures("task_backend")
def test_cancelling_a_wrapped_future_stops_the_instance(handler: RecordingHandler, go: Path) -> None:
    async def main() -> Any:
        instance = gate.instance()
        future = instance.start(str(go), "not this")
        awaiting = asyncio.ensure_future(_await(asyncio.wrap_future(future)))
        await _ready(handler)
        awaiting.cancel()  # cancels the wrapped future it awaits, which cancels ours
        with pytest.raises(asyncio.CancelledError):
            await awaiting
        assert instance.times.stop_requested_ns is not None
        return await asyncio.wait_for(asyncio.wrap_future(future), RESULT_WAIT)

    with Session():
        assert asyncio.run(main()) == "stopped"  # it saw should_stop and returned


@pytest.mark.usefixtures("task_backend")
def test_wait_for_timing_out_on_a_wrapped_future_stops_the_instance(handler: RecordingHandler, go: Path) -> None:
    async def main() -> Any:
        future = gate.instance().start(str(go), "not this")
        await _ready(handler)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.wrap_future(future), SHORT)
        return await asyncio.wait_for(future, RESULT_WAIT)

    with Session():
        assert asyncio.run(main()) == "stopped"


# -- asyncio.wait ---------------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_asyncio_wait_first_completed_and_timeout_leave_the_slow_one_running(
    handler: RecordingHandler, go: Path
) -> None:
    async def main() -> None:
        slow = gate.instance().start(str(go), "slow")
        quick = echo.instance().start("quick")
        done, pending = await asyncio.wait([slow, quick], timeout=RESULT_WAIT, return_when=asyncio.FIRST_COMPLETED)
        assert ([f.result() for f in done], len(pending)) == (["quick"], 1)
        if sys.version_info >= (3, 11):  # 3.9 and 3.10 hand asyncio.wait's results back as tasks
            assert (done, pending) == ({quick}, {slow})
        await _ready(handler)
        done, pending = await asyncio.wait([slow], timeout=SHORT)
        assert (len(done), len(pending)) == (0, 1)
        assert slow.status == "running"  # asyncio.wait never cancels what it waits for
        if sys.version_info >= (3, 11):
            assert slow._callbacks == []  # asyncio.wait removed its callback
        go.touch()
        assert await asyncio.wait_for(slow, RESULT_WAIT) == "slow"

    with Session():
        asyncio.run(main())


@pytest.mark.usefixtures("task_backend")
def test_asyncio_wait_wakes_its_loop_when_a_future_finishes(go: Path) -> None:
    """Nothing else wakes the loop (no timeout, the gate opens from a thread): the
    completion must reach the loop's thread through call_soon_threadsafe, or this hangs."""

    async def main() -> List[Any]:
        futures = [gate.instance().start(str(go), i) for i in range(3)] + [fail.instance().start("bad")]
        threading.Timer(0.2, go.touch).start()
        done, pending = await asyncio.wait(futures)
        assert pending == set()
        done, pending = await asyncio.wait(futures, return_when=asyncio.FIRST_EXCEPTION)
        return sorted(str(f.exception() or f.result()) for f in done)

    with Session():
        assert asyncio.run(main()) == ["0", "1", "2", "bad"]


# -- asyncio.gather ---------------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_a_cancelled_gather_stops_the_running_and_cancels_the_pending(
    handler: RecordingHandler, tmp_path: Path
) -> None:
    async def main() -> Tuple[Any, str]:
        running = single.instance().start(str(tmp_path / "never"), "not this")
        queued = single.instance().start(str(tmp_path / "never"), "nor this")  # waits for a slot
        # Cancelled in this order: the pending one first, so the running one cannot end
        # and hand it its slot before its own cancellation (a race this test does not test).
        gathered = asyncio.gather(queued, running)
        await _ready(handler)
        gathered.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gathered
        return await asyncio.wait_for(running, RESULT_WAIT), queued.status

    with Session():
        assert asyncio.run(main()) == ("stopped", "cancelled")


@pytest.mark.usefixtures("task_backend")
def test_gather_of_wrapped_and_awaited_futures_mixed(go: Path) -> None:
    async def main() -> List[Any]:
        go.touch()
        futures = [gate.instance().start(str(go), i) for i in range(4)]
        return list(await asyncio.gather(futures[0], asyncio.wrap_future(futures[1]), *futures[2:]))

    with Session():
        assert asyncio.run(main()) == [0, 1, 2, 3]


# -- asyncio.as_completed -------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_asyncio_as_completed_takes_our_futures(tmp_path: Path) -> None:
    async def main() -> List[Any]:
        later = gate.instance().start(str(tmp_path / "go"), "later")
        first = echo.instance().start("first")
        order = []
        for next_done in asyncio.as_completed([later, first], timeout=RESULT_WAIT):
            order.append(await next_done)
            (tmp_path / "go").touch()
        return order

    with Session():
        assert asyncio.run(main()) == ["first", "later"]


# -- callbacks and threads -------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")
def test_a_callback_runs_on_the_finishing_thread_even_when_added_in_a_loop(go: Path) -> None:
    """concurrent.futures' rule: a callback the application needs never waits for a busy
    event loop (here the loop is blocked in a plain wait while the future finishes)."""
    ran_on: List[int] = []
    ran = threading.Event()

    async def main() -> None:
        future = gate.instance().start(str(go), "value")
        future.add_done_callback(lambda f: (ran_on.append(threading.get_ident()), ran.set()))
        go.touch()
        assert ran.wait(RESULT_WAIT)  # blocks the loop: a callback queued to it would never run

    with Session():
        asyncio.run(main())
    assert ran_on != [threading.get_ident()]


def test_remove_done_callback_forgets_every_registration_of_it() -> None:
    future: Future[int] = Future()
    calls: List[int] = []

    def callback(f: Future[int]) -> None:
        calls.append(f.result())

    future.add_done_callback(callback)
    future.add_done_callback(callback)
    future.add_done_callback(lambda f: calls.append(-1))
    assert future.remove_done_callback(callback) == 2
    assert future.remove_done_callback(callback) == 0
    future.set_result(3)
    assert calls == [-1]


def test_asyncio_s_own_callbacks_run_in_their_loop_or_if_it_closed_on_the_finishing_thread() -> None:
    """asyncio.wait's callback is one (see test_asyncio_wait_wakes_its_loop_...); this
    stands in for it, to see both places it can run."""
    ran_on: List[Tuple[str, Optional[asyncio.AbstractEventLoop], int]] = []

    def asyncio_callback(label: str) -> Any:
        def callback(_: Future[int]) -> None:
            ran_on.append((label, _loop_or_none(), threading.get_ident()))

        callback.__module__ = "asyncio.tasks"
        return callback

    first: Future[int] = Future()
    second: Future[int] = Future()

    async def in_loop() -> asyncio.AbstractEventLoop:
        first.add_done_callback(asyncio_callback("open loop"))
        second.add_done_callback(asyncio_callback("closed loop"))
        await asyncio.get_running_loop().run_in_executor(None, first.set_result, 1)
        await asyncio.sleep(0)
        return asyncio.get_running_loop()

    loop = asyncio.run(in_loop())  # closed once run() returns
    finisher = threading.Thread(target=second.set_result, args=(2,))
    finisher.start()
    finisher.join()
    assert ran_on == [("open loop", loop, threading.get_ident()), ("closed loop", None, finisher.ident)]


async def _await(awaitable: Any) -> Any:
    return await awaitable


def _loop_or_none() -> Optional[asyncio.AbstractEventLoop]:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
