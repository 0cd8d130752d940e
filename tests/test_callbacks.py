"""User callbacks (handlers, done-callbacks) on the thread that finishes futures.

Nothing a callback raises may stop that thread, SystemExit and KeyboardInterrupt
included, and a callback that waits for a future only its own thread can finish gets a
RuntimeError at once instead of a deadlock. If the local dispatcher thread dies anyway,
every unfinished future fails saying so and the session can still be left.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
from api_tasks import RecordingHandler
from waiting_tasks import echo, gate

from numerous.tasks import Future, Session, TaskControl, TaskError, as_completed, set_task_control_handler, wait
from numerous.tasks.backends.local import _dispatcher

pytestmark = pytest.mark.timeout(90)

RESULT_WAIT = 30.0
#: What a careless or hostile callback raises; none of it is an Exception.
NOT_EXCEPTIONS = [SystemExit(3), KeyboardInterrupt(), pytest.fail.Exception("pytest.fail() in a handler")]


class RaisingHandler(RecordingHandler):
    """Records like RecordingHandler; raises ``error`` from every call about ``victim``
    (but KeyboardInterrupt only off the main thread, where it would be Ctrl-C)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error
        self.victim: Optional[str] = None

    def _record(self, kind: str, control: TaskControl, payload: Any) -> None:
        super()._record(kind, control, payload)
        on_main = threading.current_thread() is threading.main_thread()
        if control.instance_id == self.victim and not (on_main and isinstance(self.error, KeyboardInterrupt)):
            raise self.error


@pytest.mark.parametrize("error", NOT_EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_a_handler_raising_a_base_exception_breaks_nothing(
    task_backend: str, error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    handler = RaisingHandler(error)
    set_task_control_handler(handler)
    with Session():
        victim = echo.instance()
        handler.victim = victim.id
        assert victim.start("first").result(timeout=RESULT_WAIT) == "first"
        # The thread that ran the raising handler still serves later instances.
        later = [echo.instance().start(i) for i in range(6)]
        assert [f.result(timeout=RESULT_WAIT) for f in later] == list(range(6))
    assert handler.states(victim.id) == ["pending", "running", "completed"]
    assert any(type(error).__name__ in r.getMessage() or r.exc_info for r in caplog.records)


@pytest.mark.parametrize("error", NOT_EXCEPTIONS, ids=lambda e: type(e).__name__)
def test_a_done_callback_raising_a_base_exception_breaks_nothing(
    task_backend: str, error: BaseException, tmp_path: Path
) -> None:
    def raises(_: Future[Any]) -> None:
        raise error

    ran: List[str] = []
    go = tmp_path / "go"
    with Session():
        first = gate.instance().start(str(go), "first")
        first.add_done_callback(raises)  # added while it runs: called on the thread that finishes it
        first.add_done_callback(lambda f: ran.append(f.result()))  # later callbacks still run
        go.touch()
        assert first.result(timeout=RESULT_WAIT) == "first"
        assert [echo.instance().start(i).result(timeout=RESULT_WAIT) for i in range(4)] == list(range(4))
    assert ran == ["first"]


@pytest.mark.usefixtures("task_backend")
def test_ctrl_c_in_a_handler_on_the_main_thread_propagates_and_the_instance_is_still_stopped(tmp_path: Path) -> None:
    class CtrlCWhilePending(RecordingHandler):
        def instance_state_changed(self, control: TaskControl, state: str, error: Optional[BaseException]) -> None:
            super().instance_state_changed(control, state, error)
            if state == "pending":
                raise KeyboardInterrupt

    handler = CtrlCWhilePending()
    set_task_control_handler(handler)
    instance = None
    with pytest.raises(KeyboardInterrupt):
        with Session():
            instance = gate.instance()
            instance.start(str(tmp_path / "never"))
    assert instance is not None
    # Launched all the same, then stopped by the session's exit (the task returns "stopped").
    assert handler.states(instance.id) == ["pending", "running", "completed"]


def _blocking_calls(session: Session, unfinished: Future[Any]) -> Dict[str, Callable[[], object]]:
    """Every way a callback could wait for ``unfinished`` (or for its session)."""
    return {
        "result": lambda: unfinished.result(),
        "result with a timeout": lambda: unfinished.result(timeout=5),
        "wait_done": lambda: unfinished.wait_done(),
        "exception": lambda: unfinished.exception(),
        "wait": lambda: wait([unfinished]),
        "as_completed": lambda: list(as_completed([unfinished])),
        "concurrent.futures.wait": lambda: concurrent.futures.wait([unfinished]),
        "concurrent.futures.as_completed": lambda: list(concurrent.futures.as_completed([unfinished])),
        "leaving the session": lambda: session.__exit__(None, None, None),
    }


class WaitsInHandler(RecordingHandler):
    """When ``trigger`` finishes, tries every blocking call on ``target`` (on the thread
    that reports it) and records what each did."""

    def __init__(self) -> None:
        super().__init__()
        self.trigger: Optional[str] = None
        self.blocking_calls: Dict[str, Callable[[], object]] = {}
        self.outcomes: Dict[str, str] = {}
        self.done = threading.Event()

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        super().instance_state_changed(task_control, state, error)
        if task_control.instance_id == self.trigger and state == "completed":
            for name, call in self.blocking_calls.items():
                try:
                    call()
                    self.outcomes[name] = "returned"
                except RuntimeError as exc:
                    self.outcomes[name] = str(exc)
            self.done.set()


def test_waiting_in_a_handler_for_a_future_of_the_same_session_raises_at_once(
    task_backend: str, tmp_path: Path
) -> None:
    handler = WaitsInHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session() as session:
        blocked = gate.instance().start(str(go), "gated")
        handler.blocking_calls = _blocking_calls(session, blocked)
        trigger = echo.instance()
        handler.trigger = trigger.id
        trigger.start("trigger")
        assert handler.done.wait(RESULT_WAIT), "the handler deadlocked"
        go.touch()
        assert blocked.result(timeout=RESULT_WAIT) == "gated"
    assert set(handler.outcomes) == set(handler.blocking_calls)
    for name, outcome in handler.outcomes.items():
        assert "dispatcher thread" in outcome and "add_done_callback" in outcome, (name, outcome)


def test_a_done_callback_may_read_its_own_result_and_run_a_session_of_its_own(task_backend: str) -> None:
    seen: List[Any] = []
    finished = threading.Event()

    def callback(future: Future[Any]) -> None:
        seen.append(future.result())  # finished: no wait
        with Session():  # a session of its own has a dispatcher of its own: waiting is fine
            seen.append(echo.instance().start("nested").result(timeout=RESULT_WAIT))
        finished.set()

    with Session():
        echo.instance().start("outer").add_done_callback(callback)
        assert finished.wait(RESULT_WAIT)
    assert seen == ["outer", "nested"]


def test_if_the_dispatcher_thread_dies_every_future_fails_saying_so_and_the_session_ends(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    explode = threading.Event()
    original = _dispatcher.LocalDispatcher._timeout

    def timeout_or_die(self: _dispatcher.LocalDispatcher, busy: List[Any]) -> Optional[float]:
        if explode.is_set():
            raise SystemExit("a bug of ours, simulated")
        return original(self, busy)

    monkeypatch.setattr(_dispatcher.LocalDispatcher, "_timeout", timeout_or_die)
    caplog.set_level(logging.CRITICAL, logger="numerous.tasks")
    with Session(backend="local"):
        running = [gate.instance().start(str(tmp_path / "never")) for _ in range(2)]
        handler.wait_for_status("ready", count=2)
        pending = [gate.instance().start(str(tmp_path / "never")) for _ in range(3)]  # max_parallel=4
        explode.set()
        for future in running + pending:
            assert future.wait_done(RESULT_WAIT)
        assert all(isinstance(f.error, TaskError) for f in running + pending)
        assert all("dispatcher thread died" in str(f.error) for f in running[:2])
        later = echo.instance().start("too late")
        assert later.wait_done(0)  # failed at once: nothing waits for a dead thread
        assert "has died" in str(later.error)
    assert "dispatcher thread died" in caplog.text
