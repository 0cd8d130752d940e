"""numerous.tasks.wait and as_completed: the semantics of their concurrent.futures
namesakes (modelled on CPython's test_wait.py and test_as_completed.py), on real task
instances in real sessions."""

from __future__ import annotations

import concurrent.futures
import gc
import itertools
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Iterator, List, Set

import pytest
from api_tasks import RecordingHandler
from waiting_tasks import GateError, cancelled_future, echo, fail, finished, gate, gate_fail, single

from numerous.tasks import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    FIRST_EXCEPTION,
    DoneAndNotDoneFutures,
    Future,
    ResultTimeoutError,
    Session,
    as_completed,
    wait,
)

pytestmark = pytest.mark.timeout(60)

RESULT_WAIT = 30.0
SHORT = 0.05  # a timeout that must run out: the futures waited for cannot finish in it


class Gates:
    """Go files in a temporary directory, opened by name."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def __getitem__(self, name: str) -> str:
        return str(self.directory / name)

    def open(self, name: str) -> None:
        (self.directory / name).touch()


@pytest.fixture
def gates(tmp_path: Path) -> Iterator[Gates]:
    yield Gates(tmp_path)


def _succeeded() -> Future[Any]:
    return finished([echo.instance().start(42)])[0]


def _failed() -> Future[Any]:
    return finished([fail.instance().start("already failed")])[0]


# -- wait ---------------------------------------------------------------------------------------
def test_duplicates_count_once() -> None:
    with Session():
        future = echo.instance().start(2)
        done, not_done = wait([future, future], return_when=ALL_COMPLETED)
    assert (done, not_done) == ({future}, set())


def test_wait_returns_a_named_pair_of_sets_and_accepts_any_iterable() -> None:
    with Session():
        futures = [echo.instance().start(i) for i in range(3)]
        result = wait(f for f in futures)
    assert isinstance(result, tuple) and isinstance(result, DoneAndNotDoneFutures)
    assert (result.done, result.not_done) == (set(futures), set())
    assert wait([]) == (set(), set())


def test_first_completed(handler: RecordingHandler, gates: Gates) -> None:
    with Session():
        quick = echo.instance().start(21)
        blocked = gate.instance().start(gates["go"], "late")
        done, not_done = wait([quick, blocked], return_when=FIRST_COMPLETED, timeout=RESULT_WAIT)
        assert (done, not_done) == ({quick}, {blocked})
        assert blocked.status in ("pending", "running")
        gates.open("go")
        assert blocked.result(timeout=RESULT_WAIT) == "late"


def test_first_completed_some_already_completed(gates: Gates) -> None:
    with Session():
        cancelled = cancelled_future(gates["first"])
        succeeded = _succeeded()
        blocked = gate.instance().start(gates["go"])
        started = time.monotonic()
        done, not_done = wait([cancelled, succeeded, blocked], return_when=FIRST_COMPLETED)
        assert time.monotonic() - started < 1.0  # returned at once: nothing to wait for
        assert (done, not_done) == ({cancelled, succeeded}, {blocked})
        gates.open("go")


def test_first_exception(handler: RecordingHandler, gates: Gates) -> None:
    with Session():
        succeeding = echo.instance().start(42)
        failing = gate_fail.instance().start(gates["fail"], "boom")
        blocked = gate.instance().start(gates["never"])

        def fail_after_the_first_succeeded() -> None:
            succeeding.result(timeout=RESULT_WAIT)
            gates.open("fail")

        thread = threading.Thread(target=fail_after_the_first_succeeded)
        thread.start()
        try:
            done, not_done = wait([succeeding, failing, blocked], return_when=FIRST_EXCEPTION, timeout=RESULT_WAIT)
        finally:
            thread.join(RESULT_WAIT)
        assert (done, not_done) == ({succeeding, failing}, {blocked})
        assert isinstance(failing.error, GateError)
        gates.open("never")


def test_first_exception_some_already_complete(gates: Gates) -> None:
    with Session():
        succeeded, cancelled, failed = _succeeded(), cancelled_future(gates["first"]), _failed()
        blocked = gate.instance().start(gates["go"])
        done, not_done = wait([succeeded, cancelled, failed, blocked], return_when=FIRST_EXCEPTION)
        assert (done, not_done) == ({succeeded, cancelled, failed}, {blocked})
        gates.open("go")


def test_first_exception_one_already_failed(gates: Gates) -> None:
    with Session():
        failed = _failed()
        blocked = gate.instance().start(gates["go"])
        done, not_done = wait([failed, blocked], return_when=FIRST_EXCEPTION)
        assert (done, not_done) == ({failed}, {blocked})
        gates.open("go")


def test_first_exception_does_not_count_a_cancellation_as_an_exception(gates: Gates) -> None:
    with Session():
        cancelled = cancelled_future(gates["first"])
        blocked = gate.instance().start(gates["go"])
        started = time.monotonic()
        done, not_done = wait([cancelled, blocked], return_when=FIRST_EXCEPTION, timeout=SHORT)
        assert time.monotonic() - started >= SHORT * 0.9  # it waited: no exception yet
        assert (done, not_done) == ({cancelled}, {blocked})
        # ... and with no exception at all, FIRST_EXCEPTION is ALL_COMPLETED
        gates.open("go")
        done, not_done = wait([cancelled, blocked], return_when=FIRST_EXCEPTION, timeout=RESULT_WAIT)
        assert (done, not_done) == ({cancelled, blocked}, set())


def test_all_completed(gates: Gates) -> None:
    with Session():
        succeeded, cancelled, failed = _succeeded(), cancelled_future(gates["first"]), _failed()
        failing = fail.instance().start("fails now")
        succeeding = echo.instance().start(42)
        everything = [succeeded, cancelled, failed, failing, succeeding]
        done, not_done = wait(everything, return_when=ALL_COMPLETED, timeout=RESULT_WAIT)
    assert (done, not_done) == (set(everything), set())


def test_timeout(gates: Gates) -> None:
    with Session():
        cancelled, failed, succeeded = cancelled_future(gates["first"]), _failed(), _succeeded()
        blocked = gate.instance().start(gates["go"])
        started = time.monotonic()
        done, not_done = wait([cancelled, failed, succeeded, blocked], timeout=SHORT, return_when=ALL_COMPLETED)
        waited = time.monotonic() - started
        assert (done, not_done) == ({cancelled, failed, succeeded}, {blocked})
        assert SHORT * 0.9 <= waited < 5.0
        assert blocked.status in ("pending", "running")  # a timed-out wait does not stop it
        gates.open("go")
        assert blocked.result(timeout=RESULT_WAIT) is None


def test_many_futures_finishing_at_once() -> None:
    with Session():
        futures = {echo.instance().start(i) for i in range(24)}  # 4 at a time
        done, not_done = wait(futures, return_when=ALL_COMPLETED, timeout=RESULT_WAIT)
    assert (done, not_done) == (futures, set())
    assert sorted(f.result(timeout=0) for f in done) == list(range(24))


def test_an_unknown_return_when_is_a_value_error() -> None:
    with Session():
        future = echo.instance().start(1)
        with pytest.raises(ValueError, match="Invalid return condition: 'SOMETIMES'"):
            wait([future], return_when="SOMETIMES")


def test_wait_leaves_no_callback_behind_on_unfinished_futures(gates: Gates) -> None:
    with Session():
        blocked = gate.instance().start(gates["go"])
        for return_when in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
            assert wait([blocked], timeout=0.01, return_when=return_when).not_done == {blocked}
        assert blocked._waiters == []
        gates.open("go")


# -- as_completed ---------------------------------------------------------------------------------
def test_as_completed_without_timeout(gates: Gates) -> None:
    with Session():
        cancelled, failed, succeeded = cancelled_future(gates["first"]), _failed(), _succeeded()
        more = [echo.instance().start(1), echo.instance().start(2)]
        everything = [cancelled, failed, succeeded, *more]
        completed = list(as_completed(everything))
    assert len(completed) == 5 and set(completed) == set(everything)


@pytest.mark.parametrize("timeout", [0, 0.1])
def test_as_completed_times_out_before_the_last_future(gates: Gates, timeout: float) -> None:
    with Session():
        already = {cancelled_future(gates["first"]), _failed(), _succeeded()}
        blocked = gate.instance().start(gates["go"])
        completed: Set[Future[Any]] = set()
        with pytest.raises(TimeoutError) as caught:
            for future in as_completed(already | {blocked}, timeout):
                completed.add(future)
        assert completed == already
        assert isinstance(caught.value, ResultTimeoutError)
        assert isinstance(caught.value, concurrent.futures.TimeoutError)
        assert str(caught.value) == "1 (of 4) futures unfinished"
        gates.open("go")


def test_as_completed_yields_duplicates_once() -> None:
    with Session():
        future = echo.instance().start(7)
        assert list(as_completed(itertools.repeat(future, 3))) == [future]


def test_as_completed_yields_finished_futures_first_then_in_finishing_order(
    handler: RecordingHandler, gates: Gates
) -> None:
    with Session(max_workers=None):  # three run at once, whatever the CPUs
        succeeded = _succeeded()
        a, b, c = (gate.instance() for _ in range(3))
        futures = {name: inst.start(gates[name], name) for name, inst in (("a", a), ("b", b), ("c", c))}
        handler.wait_for_status("ready", count=3)
        iterator = as_completed([futures["a"], futures["b"], succeeded, futures["c"]], timeout=RESULT_WAIT)
        assert next(iterator) is succeeded
        for name in ("b", "c", "a"):
            gates.open(name)
            future = next(iterator)
            assert (future, future.result(timeout=0)) == (futures[name], name)
        assert list(iterator) == []


def test_correct_timeout_exception_message(handler: RecordingHandler, gates: Gates) -> None:
    with Session():
        cancelled, succeeded = cancelled_future(gates["first"]), _succeeded()
        running = single.instance()
        running_future = running.start(gates["go"])
        queued = single.instance().start(gates["go"])  # pending behind the running one
        with pytest.raises(TimeoutError, match=r"^2 \(of 4\) futures unfinished$"):
            list(as_completed([cancelled, queued, running_future, succeeded], timeout=0))
        assert (running_future.status, queued.status) in {("running", "pending"), ("pending", "pending")}
        gates.open("go")


def test_as_completed_does_not_keep_yielded_futures_alive() -> None:
    """The generator holds no reference to a future it has yielded (CPython issue 14406).

    Real futures are also held by their session, so this uses bare futures finished by
    hand, as a backend finishes them."""

    class NoCanceller:
        def request_cancel(self) -> bool:
            return False

    futures: List[Future[Any]] = [Future(NoCanceller(), f"bare {i}") for i in range(6)]
    futures[4].set_cancelled()
    futures[5].set_result(42)
    with pytest.raises(TimeoutError):
        for future in as_completed(futures, timeout=0):
            futures.remove(future)
            ref = weakref.ref(future)
            del future
            gc.collect()
            assert ref() is None
    assert len(futures) == 4
    futures[0].set_result("first")
    for future in as_completed(futures):
        futures.remove(future)
        ref = weakref.ref(future)
        del future
        gc.collect()
        assert ref() is None
        if futures:
            futures[0].set_result("next")


def test_leaving_as_completed_early_leaves_no_callback_behind(gates: Gates) -> None:
    with Session():
        succeeded = _succeeded()
        blocked = gate.instance().start(gates["go"])
        iterator = as_completed([succeeded, blocked])
        assert next(iterator) is succeeded
        assert blocked._waiters != []  # listening while the iterator is alive
        iterator.close()
        assert blocked._waiters == []
        gates.open("go")


def test_the_helpers_are_exported_with_the_standard_constants() -> None:
    import numerous.tasks

    names = ("wait", "as_completed", "DoneAndNotDoneFutures", "FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED")
    assert set(names) <= set(numerous.tasks.__all__)
    assert (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED) == (
        concurrent.futures.FIRST_COMPLETED,
        concurrent.futures.FIRST_EXCEPTION,
        concurrent.futures.ALL_COMPLETED,
    )


@pytest.mark.parametrize("timeout", [float("nan"), -1])
def test_a_nan_or_negative_timeout_is_a_value_error_naming_it(timeout: float) -> None:
    with Session():
        future = echo.instance().start(1)
        with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0"):
            wait([future], timeout=timeout)
        with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0"):
            next(as_completed([future], timeout=timeout))
        assert future.result(timeout=RESULT_WAIT) == 1
