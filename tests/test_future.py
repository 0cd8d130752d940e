"""Future: results, states, timeouts, cancel, callbacks, and errors with worker frames."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import traceback
from pathlib import Path
from typing import List

import pytest

from numerous.tasks import Future, Session, TaskCancelledError, set_task_control_handler

from task_helpers import CustomError, RecordingHandler, double, fails, touch, wait_for_go


def test_result_status_done_and_error_on_success() -> None:
    with Session():
        future = double.instance().start(21)
        assert future.result() == 42
    assert (future.status, future.done, future.error) == ("completed", True, None)


def test_statuses_move_from_running_to_completed(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session():
        future = wait_for_go.instance().start(str(go), "value")
        handler.wait_for_status("ready")
        assert (future.status, future.done) == ("running", False)
        go.touch()
        assert future.result(timeout=30) == "value"
        assert future.status == "completed"


def test_timed_out_wait_is_a_timeout_error_and_the_task_goes_on(tmp_path: Path) -> None:
    go = tmp_path / "go"
    with Session():
        future = wait_for_go.instance().start(str(go), 7)
        with pytest.raises(TimeoutError) as caught:
            future.result(timeout=0.05)
        assert isinstance(caught.value, concurrent.futures.TimeoutError)
        assert not future.done
        go.touch()
        assert future.result(timeout=30) == 7


def test_cancel_of_a_pending_instance(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session():
        running = [wait_for_go.instance().start(str(go)) for _ in range(8)]  # fills max_parallel=8
        handler.wait_for(lambda e: sum(1 for x in handler.events if x[2] == "ready") == 8)
        queued = touch.instance().start(str(tmp_path / "ran"))
        waiting = wait_for_go.instance().start(str(go), "late")
        assert waiting.status == "pending"
        assert waiting.cancel() is True
        assert waiting.status == "cancelled"
        go.touch()
        assert [f.result() for f in running] == [None] * 8
        queued.result()
    with pytest.raises(TaskCancelledError, match="cancelled"):
        waiting.result()


def test_cancel_of_a_running_instance_requests_a_stop(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        future = wait_for_go.instance().start(str(tmp_path / "never"))
        handler.wait_for_status("ready")
        assert future.cancel() is False
        assert future.result(timeout=30) == "stopped"
        assert future.cancel() is False  # done: nothing to do


def test_done_callbacks_run_once_and_immediately_when_already_done() -> None:
    calls: List[Future] = []
    called = threading.Event()
    with Session():
        future = double.instance().start(2)
        future.add_done_callback(lambda f: (calls.append(f), called.set()))
        assert called.wait(30)
        future.add_done_callback(calls.append)
    assert calls == [future, future]


def test_a_raising_callback_is_logged_and_harmless(caplog: pytest.LogCaptureFixture) -> None:
    def bad(_: Future) -> None:
        raise RuntimeError("callback broke")

    caplog.set_level(logging.ERROR, logger="numerous.tasks")
    with Session():
        future = double.instance().start(2)
        future.result()
        future.add_done_callback(bad)
        assert double.instance().start(3).result() == 6
    assert "callback broke" in caplog.text


def test_task_errors_come_back_as_their_own_class_with_worker_frames() -> None:
    with Session():
        future = fails.instance().start("it broke")
        with pytest.raises(CustomError, match="it broke") as caught:
            future.result()
    assert future.status == "failed" and future.error is caught.value
    text = "".join(traceback.format_exception(type(caught.value), caught.value, caught.value.__traceback__))
    assert "in fails" in text and "in _raise_deep" in text
    assert "raise CustomError(message)  # the line traceback tests look for" in text
    assert "task_helpers.py" in text


def test_repeated_result_calls_do_not_grow_the_traceback() -> None:
    with Session():
        future = fails.instance().start("x")
        lengths = []
        for _ in range(3):
            try:
                future.result()
            except CustomError as exc:
                lengths.append(len(traceback.extract_tb(exc.__traceback__)))
    assert lengths[0] == lengths[1] == lengths[2]
