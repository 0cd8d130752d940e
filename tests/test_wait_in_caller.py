"""result() on a warm worker reads that worker's pipe on the caller's thread (one wake-up
instead of two): Ctrl-C still ends the wait, the instance and its pipe carry on, a worker
that dies meanwhile fails only its own future and leaves nothing open, a timeout is
waited once, other waiters still get the value, and callbacks run there still may not
wait for the session's futures."""

from __future__ import annotations

import _thread
import concurrent.futures
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, List

import pytest
from backend_tasks import is_dead, report_pid_and_wait, wait_until, whoami
from caller_wait_tasks import log_then_wait

from numerous.tasks import Future, ResultTimeoutError, Session, WorkerDiedError, set_task_control_handler
from numerous.tasks._interrupt_gate import gate_for_this_thread, remove_gate
from numerous.tasks.testing import RecordingTaskControlHandler

RESULT_WAIT = 30.0
pytestmark = [pytest.mark.timeout(60), pytest.mark.task_backend("local")]


def _reading_its_worker(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside result(), reading its instance's worker pipe."""
    frame = sys._current_frames().get(thread.ident or -1)
    while frame is not None:
        if frame.f_code.co_name == "_read_until_final":
            return True
        frame = frame.f_back
    return False


def _when_reading(thread: threading.Thread, then: Callable[[], None], seen: List[bool]) -> threading.Thread:
    """A thread that waits until ``thread`` reads its worker's pipe, then calls ``then``
    (``seen`` records whether it ever did)."""

    def watch() -> None:
        seen.append(wait_until(lambda: _reading_its_worker(thread), RESULT_WAIT))
        then()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    return watcher


@pytest.mark.usefixtures("sigint_reaches_children")
def test_ctrl_c_in_result_on_a_warm_worker_ends_the_wait_and_the_instance_carries_on(tmp_path: Path) -> None:
    handler = RecordingTaskControlHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session():
        whoami.instance().start().result(timeout=RESULT_WAIT)  # a warm worker, idle
        instance = log_then_wait.instance()
        future = instance.start(str(go))
        handler.wait_for_status(instance, "ready")
        seen: List[bool] = []
        watcher = _when_reading(threading.main_thread(), _thread.interrupt_main, seen)
        with pytest.raises(KeyboardInterrupt):
            future.result(timeout=RESULT_WAIT)
        watcher.join(RESULT_WAIT)
        assert seen == [True]  # it was interrupted while reading the worker's pipe itself
        assert not future.done
        go.touch()  # what the worker sends from now on reaches the dispatcher (or the next wait)
        assert future.result(timeout=RESULT_WAIT) == "done"
        assert handler.logs_for(instance) == ["before", "after"]


def test_a_worker_killed_while_the_caller_reads_its_pipe_fails_only_that_future(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    with Session():
        whoami.instance().start().result(timeout=RESULT_WAIT)
        future = report_pid_and_wait.instance().start(str(pid_file))
        assert wait_until(pid_file.exists, RESULT_WAIT)
        seen: List[bool] = []
        watcher = _when_reading(
            threading.main_thread(), lambda: os.kill(int(pid_file.read_text()), signal.SIGKILL), seen
        )
        with pytest.raises(WorkerDiedError):
            future.result(timeout=RESULT_WAIT)
        watcher.join(RESULT_WAIT)
        assert seen == [True]
        assert whoami.instance().start().result(timeout=RESULT_WAIT)["pid"] != int(pid_file.read_text())
    # the leak check: the dead worker's pipes, closed by the thread that read them last


def test_a_timeout_on_a_warm_worker_is_waited_once_and_the_instance_can_still_be_stopped(tmp_path: Path) -> None:
    with Session():
        whoami.instance().start().result(timeout=RESULT_WAIT)
        instance = report_pid_and_wait.instance()
        future = instance.start(str(tmp_path / "pid"))
        started = time.monotonic()
        with pytest.raises(ResultTimeoutError, match=r"within 0\.3 s"):
            future.result(timeout=0.3)
        assert time.monotonic() - started < 0.6  # not its timeout twice over
        instance.stop()
        assert future.result(timeout=RESULT_WAIT) == "stopped"


def test_every_thread_waiting_for_one_future_gets_its_value(tmp_path: Path) -> None:
    go = tmp_path / "go"
    with Session():
        whoami.instance().start().result(timeout=RESULT_WAIT)
        future = log_then_wait.instance().start(str(go))
        values: List[Any] = []
        waiters = [threading.Thread(target=lambda: values.append(future.result(timeout=RESULT_WAIT))) for _ in range(3)]
        for waiter in waiters:
            waiter.start()
        assert wait_until(lambda: any(_reading_its_worker(w) for w in waiters), RESULT_WAIT)  # one reads the pipe
        go.touch()
        for waiter in waiters:
            waiter.join(RESULT_WAIT)
        assert values == ["done"] * 3


def test_a_done_callback_run_by_the_waiting_thread_may_not_wait_for_the_session(tmp_path: Path) -> None:
    handler = RecordingTaskControlHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    outcomes: List[str] = []
    with Session():
        blocker = log_then_wait.instance()
        blocked = blocker.start(str(tmp_path / "never"))
        handler.wait_for_status(blocker, "ready")
        whoami.instance().start().result(timeout=RESULT_WAIT)  # a second worker, warm
        future = log_then_wait.instance().start(str(go))

        def callback(finished: Future[Any]) -> None:
            outcomes.append(threading.current_thread().name)
            try:
                blocked.result(timeout=RESULT_WAIT)
                outcomes.append("returned")
            except RuntimeError as exc:
                outcomes.append(str(exc))

        future.add_done_callback(callback)
        seen: List[bool] = []
        watcher = _when_reading(threading.main_thread(), go.touch, seen)
        assert future.result(timeout=RESULT_WAIT) == "done"
        watcher.join(RESULT_WAIT)
        blocked.cancel()
    assert seen == [True]
    assert outcomes[0] == "MainThread"  # the waiting thread settled it, and ran the callback
    assert "does the work of the dispatcher thread" in outcomes[1] and "add_done_callback" in outcomes[1]


def test_a_worker_idle_after_a_read_round_trip_is_watched_again_for_a_job_nobody_waits_on() -> None:
    with Session():
        first = whoami.instance().start().result(timeout=RESULT_WAIT)["pid"]
        assert whoami.instance().start().result(timeout=RESULT_WAIT)["pid"] == first  # read here
        future = whoami.instance().start()  # on the same warm worker; the dispatcher must read it
        done, _ = concurrent.futures.wait([future], timeout=RESULT_WAIT)
        assert done == {future} and future.result(timeout=0)["pid"] == first


def test_an_idle_worker_killed_after_a_read_round_trip_is_replaced_and_leaves_nothing_open() -> None:
    with Session():
        first = whoami.instance().start().result(timeout=RESULT_WAIT)["pid"]
        assert whoami.instance().start().result(timeout=RESULT_WAIT)["pid"] == first
        os.kill(first, signal.SIGKILL)
        assert wait_until(lambda: is_dead(first), RESULT_WAIT)
        assert whoami.instance().start().result(timeout=RESULT_WAIT)["pid"] != first


# -- the gate that holds Ctrl-C during a step (in this process, no worker) ----------------------
@pytest.mark.usefixtures("sigint_reaches_children")
def test_the_gate_holds_ctrl_c_during_a_step_passes_it_on_otherwise_and_can_be_taken_out() -> None:
    before = signal.getsignal(signal.SIGINT)
    gate = gate_for_this_thread()
    try:
        assert signal.getsignal(signal.SIGINT) == gate.arrived
        with pytest.raises(KeyboardInterrupt):  # no step under way: at once
            _thread.interrupt_main()
            time.sleep(1)  # not reached: the handler runs before the next line
        steps: List[str] = []
        gate.hold()
        try:
            _thread.interrupt_main()
            steps.append("the step went on")
            gate.hold()  # a step within it
            gate.release()
            steps.append("and on")
        finally:
            with pytest.raises(KeyboardInterrupt):
                gate.release()  # the last step ended: now
        assert steps == ["the step went on", "and on"]
    finally:
        remove_gate()
    assert signal.getsignal(signal.SIGINT) is before


def test_the_gate_leaves_an_ignored_sigint_alone() -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        gate = gate_for_this_thread()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # nothing raises: nothing to hold
        gate.hold()
        gate.release()
        remove_gate()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_sigint_handler_is_back_once_the_session_ends() -> None:
    before = signal.getsignal(signal.SIGINT)
    with Session():
        whoami.instance().start().result(timeout=RESULT_WAIT)
        whoami.instance().start().result(timeout=RESULT_WAIT)  # the warm worker's pipe, read here
    assert signal.getsignal(signal.SIGINT) == before
