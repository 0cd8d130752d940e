"""Future: result, status and its transitions, done, error, timeouts, cancel, done
callbacks, and task exceptions coming back as themselves with the worker's frames."""

from __future__ import annotations

import concurrent.futures
import inspect
import logging
import math
import pickle
import threading
import time
import traceback
from pathlib import Path
from typing import Any, List, Tuple

import api_tasks
import pytest
from api_tasks import CustomError, RecordingHandler

from numerous.tasks import Future, Session, TaskCancelledError, set_task_control_handler

RESULT_WAIT = 30.0


def _use_handler() -> RecordingHandler:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    return handler


def _raise_line(function: Any) -> str:
    """The source text of the ``raise`` statement in ``function``."""
    lines = [line.strip() for line in inspect.getsource(function).splitlines()]
    return next(line for line in lines if line.startswith("raise "))


# -- result, status, done, error --------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_result_returns_the_value_and_the_future_reports_success() -> None:
    with Session():
        future = api_tasks.double.instance().start(21)
        assert future.result(timeout=RESULT_WAIT) == 42
        assert future.result(timeout=RESULT_WAIT) == 42  # again: same value
        assert isinstance(future, Future)
        assert (future.status, future.done, future.error) == ("completed", True, None)


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_status_moves_pending_running_completed(tmp_path: Path) -> None:
    handler = _use_handler()
    go = [tmp_path / "go0", tmp_path / "go1"]
    out = [tmp_path / "out0", tmp_path / "out1"]
    with Session():  # gated_then_write has max_parallel=1
        first, second = (api_tasks.gated_then_write.instance() for _ in range(2))
        f1 = first.start(str(go[0]), str(out[0]), "one")
        f2 = second.start(str(go[1]), str(out[1]), "two")
        handler.wait_for_status("ready", first.id)
        assert (f1.status, f1.done) == ("running", False)
        assert (f2.status, f2.done) == ("pending", False)
        go[0].touch()
        assert f1.result(timeout=RESULT_WAIT) == "one"
        assert (f1.status, f1.done) == ("completed", True)
        handler.wait_for_status("ready", second.id)
        assert (f2.status, f2.done) == ("running", False)
        go[1].touch()
        assert f2.result(timeout=RESULT_WAIT) == "two"
        assert (f2.status, f2.done) == ("completed", True)
    # Handlers were told every step, in order, each once.
    assert handler.states(first.id) == ["pending", "running", "completed"]
    assert handler.states(second.id) == ["pending", "running", "completed"]


def test_done_is_a_property_that_reads_as_a_boolean_and_can_be_called() -> None:
    """The spec's ``future.done`` (a property); also callable, as the stdlib calls
    ``concurrent.futures.Future.done()`` - which is why it cannot be the bool object."""
    assert isinstance(inspect.getattr_static(Future, "done"), property)
    with Session():
        future = api_tasks.double.instance().start(1)
        assert not future.done and future.done == False  # noqa: E712  # what users write
        assert (str(future.done), repr(future.done), f"{future.done}") == ("False", "False", "False")
        assert future.done() is False
        future.result(timeout=RESULT_WAIT)
        assert future.done and future.done == True  # noqa: E712
        assert (str(future.done), repr(future.done), f"{future.done}") == ("True", "True", "True")
        assert future.done() is True
    assert isinstance(future.done, int) and bool(future.done) is True and sum([future.done, future.done]) == 2
    assert pickle.loads(pickle.dumps(future.done)) is True  # pickled, it is the plain bool


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_error_is_the_exception_on_failure() -> None:
    with Session():
        future = api_tasks.fail_custom.instance().start("it broke", 5)
        with pytest.raises(CustomError) as caught:
            future.result(timeout=RESULT_WAIT)
    assert future.status == "failed" and future.done == True  # noqa: E712
    assert future.error is caught.value
    assert isinstance(future.error, CustomError) and str(future.error) == "it broke"


# -- timeouts ---------------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_result_timeout_is_a_timeout_error_and_the_task_keeps_running(tmp_path: Path) -> None:
    handler = _use_handler()
    go = tmp_path / "go"
    with Session():
        future = api_tasks.gated.instance().start(str(go), "late value")
        handler.wait_for_status("ready")
        started = time.monotonic()
        with pytest.raises(TimeoutError) as caught:
            future.result(timeout=0.05)
        waited = time.monotonic() - started
        assert isinstance(caught.value, TimeoutError)
        assert isinstance(caught.value, concurrent.futures.TimeoutError)
        assert 0.045 <= waited < 5.0
        assert (future.status, future.done, future.error) == ("running", False, None)
        assert future.wait_done(0.01) is False
        # the timed-out wait did not stop it: once let go, it finishes normally
        go.touch()
        assert future.result(timeout=RESULT_WAIT) == "late value"
        assert future.wait_done(0) is True
    assert future.status == "completed"


def test_timeout_error_is_caught_by_concurrent_futures_handlers(tmp_path: Path) -> None:
    handler = _use_handler()
    go = tmp_path / "go"
    with Session():
        future = api_tasks.gated.instance().start(str(go), 1)
        handler.wait_for_status("ready")
        try:
            future.result(timeout=0.01)
        except concurrent.futures.TimeoutError:
            caught = True
        else:  # pragma: no cover - the failure case
            caught = False
        go.touch()
        assert future.result(timeout=RESULT_WAIT) == 1
    assert caught


# -- cancel -------------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_cancel_of_a_pending_instance(tmp_path: Path) -> None:
    handler = _use_handler()
    ran = [tmp_path / f"ran{i}" for i in range(3)]
    calls: List[Tuple[Any, str]] = []
    called = threading.Event()
    with Session():
        instances = [api_tasks.until_stopped.instance() for _ in range(3)]  # max_parallel=2
        futures = [inst.start(str(ran[i])) for i, inst in enumerate(instances)]
        handler.wait_for_status("ready", count=2)
        waiting = futures[2]
        waiting.add_done_callback(lambda f: (calls.append((f, f.status)), called.set()))
        assert waiting.status == "pending"
        assert waiting.cancel() is True
        assert (waiting.status, waiting.done, waiting.error) == ("cancelled", True, None)
        assert called.wait(RESULT_WAIT)
        assert calls == [(waiting, "cancelled")]
        with pytest.raises(TaskCancelledError):
            waiting.result(timeout=0)
        assert waiting.cancel() is False  # already cancelled: nothing more to do
        for instance in instances[:2]:
            instance.stop()
        assert [f.result(timeout=RESULT_WAIT) for f in futures[:2]] == ["stopped", "stopped"]
    assert waiting.status == "cancelled"
    assert [p.exists() for p in ran] == [True, True, False]  # the cancelled one never ran
    assert handler.states(instances[2].id) == ["pending", "cancelled"]
    assert calls == [(waiting, "cancelled")]  # once


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_cancel_of_a_running_instance_requests_a_stop(tmp_path: Path) -> None:
    handler = _use_handler()
    with Session():
        instance = api_tasks.until_stopped.instance()
        future = instance.start(str(tmp_path / "ran"))
        handler.wait_for_status("ready")
        assert future.cancel() is False
        # The task saw should_stop and returned normally: its value, not a cancellation.
        assert future.result(timeout=RESULT_WAIT) == "stopped"
    assert (future.status, future.error) == ("completed", None)
    assert handler.states(instance.id) == ["pending", "running", "completed"]


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_cancel_after_done_returns_false_and_changes_nothing() -> None:
    with Session():
        ok = api_tasks.double.instance().start(4)
        bad = api_tasks.fail_value_error.instance().start("nope")
        assert ok.result(timeout=RESULT_WAIT) == 8
        assert bad.wait_done(RESULT_WAIT)
    assert ok.cancel() is False and bad.cancel() is False
    assert (ok.status, ok.result(timeout=0)) == ("completed", 8)
    assert bad.status == "failed"
    with pytest.raises(ValueError, match="nope"):
        bad.result(timeout=0)


# -- done callbacks -------------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_done_callback_runs_once_after_completion_with_the_future(tmp_path: Path) -> None:
    handler = _use_handler()
    go = tmp_path / "go"
    calls: List[Tuple[Any, str, Any]] = []
    called = threading.Event()

    def callback(f: Future) -> None:
        calls.append((f, f.status, f.result(timeout=0)))
        called.set()

    with Session():
        future = api_tasks.gated.instance().start(str(go), "value")
        handler.wait_for_status("ready")
        future.add_done_callback(callback)
        assert calls == []  # the task is still waiting: not called yet
        go.touch()
        assert called.wait(RESULT_WAIT)
        assert future.result(timeout=RESULT_WAIT) == "value"
    assert calls == [(future, "completed", "value")]


def test_done_callback_added_after_completion_runs_at_once_in_the_caller() -> None:
    calls: List[Tuple[Any, int]] = []
    with Session():
        future = api_tasks.double.instance().start(3)
        future.result(timeout=RESULT_WAIT)
        future.add_done_callback(lambda f: calls.append((f, threading.get_ident())))
        assert calls == [(future, threading.get_ident())]  # before add_done_callback returned
    assert len(calls) == 1


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_done_callback_runs_for_failures_too() -> None:
    seen: List[Tuple[str, Any]] = []
    done = threading.Event()
    with Session():
        future = api_tasks.fail_value_error.instance().start("bad")
        future.add_done_callback(lambda f: (seen.append((f.status, type(f.error))), done.set()))
        assert done.wait(RESULT_WAIT)
    assert seen == [("failed", ValueError)]


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_raising_callback_is_logged_and_breaks_nothing(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    handler = _use_handler()
    caplog.set_level(logging.ERROR, logger="numerous.tasks")
    go = tmp_path / "go"
    after: List[str] = []
    all_called = threading.Event()

    def broken(_: Future) -> None:
        raise RuntimeError("callback broke while finishing")

    def broken_late(_: Future) -> None:
        raise RuntimeError("callback broke when added late")

    def fine(f: Future) -> None:
        after.append(f.status)
        all_called.set()

    with Session():
        future = api_tasks.gated.instance().start(str(go), 11)
        handler.wait_for_status("ready")
        future.add_done_callback(broken)  # runs on the library's thread
        future.add_done_callback(fine)
        go.touch()
        assert all_called.wait(RESULT_WAIT)
        assert future.result(timeout=RESULT_WAIT) == 11
        future.add_done_callback(broken_late)  # runs here, at once: must not raise
        # the session and its worker are still usable
        assert api_tasks.gated.instance().start(str(go), 12).result(timeout=RESULT_WAIT) == 12
    assert after == ["completed"]
    assert future.status == "completed"
    messages = caplog.text
    assert "callback broke while finishing" in messages
    assert "callback broke when added late" in messages


# -- exceptions from the task ------------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_custom_exception_comes_back_as_its_own_class_with_the_worker_frames() -> None:
    with Session():
        future = api_tasks.fail_custom.instance().start("custom failure", 42)
        with pytest.raises(CustomError) as caught:
            future.result(timeout=RESULT_WAIT)
    error = caught.value
    assert type(error) is api_tasks.CustomError
    assert (str(error), error.code) == ("custom failure", 42)
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert "api_tasks.py" in text
    assert "in fail_custom" in text  # the task function's frame
    assert "in _raise_custom" in text  # the helper that raised
    assert _raise_line(api_tasks._raise_custom) in text  # its source line


@pytest.mark.usefixtures("task_backend")
def test_an_exception_whose_class_refuses_attribute_assignment_comes_back_as_itself() -> None:
    with Session():
        frozen = api_tasks.raise_blocking_assignment.instance().start("frozen")
        chained = api_tasks.raise_blocking_assignment.instance().start("chained")
        with pytest.raises(api_tasks.FrozenError) as caught:
            frozen.result(timeout=RESULT_WAIT)
        with pytest.raises(api_tasks.ReadOnlyError) as caught_chained:
            chained.result(timeout=RESULT_WAIT)
    assert caught.value.code == 7
    text = "".join(traceback.format_exception(type(caught.value), caught.value, caught.value.__traceback__))
    assert "marker: the frozen raise" in text  # the worker's frames came along
    assert caught_chained.value.args == ("read-only outer",)
    cause = caught_chained.value.__cause__
    assert type(cause) is api_tasks.FrozenError and cause.code == 1


@pytest.mark.parametrize("timeout", [math.nan, -1, -0.001, -math.inf])
def test_a_wait_timeout_that_is_nan_or_negative_is_a_value_error_naming_it(timeout: float) -> None:
    with Session():
        future = api_tasks.double.instance().start(2)
        for wait_for in (future.result, future.wait_done):
            with pytest.raises(ValueError, match="timeout must be a number of seconds >= 0"):
                wait_for(timeout)
        assert future.result(timeout=RESULT_WAIT) == 4
    with pytest.raises(TypeError, match="timeout must be a number"):
        future.result(timeout="1")  # type: ignore[arg-type]
    assert future.result(timeout=0) == 4 and future.result(timeout=math.inf) == 4


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_builtin_exception_comes_back_as_itself_with_the_worker_frames() -> None:
    with Session():
        future = api_tasks.fail_value_error.instance().start("bad value")
        with pytest.raises(ValueError, match=r"^bad value$") as caught:
            future.result(timeout=RESULT_WAIT)
    error = caught.value
    assert type(error) is ValueError
    text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert "in fail_value_error" in text
    assert _raise_line(api_tasks.fail_value_error.__wrapped__) in text
    assert future.error is error


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_repeated_result_calls_raise_the_same_error_without_growing_its_traceback() -> None:
    lengths = []
    errors = []
    with Session():
        future = api_tasks.fail_custom.instance().start("again")
        for _ in range(3):
            try:
                future.result(timeout=RESULT_WAIT)
            except CustomError as exc:
                errors.append(exc)
                lengths.append(len(traceback.extract_tb(exc.__traceback__)))
    assert len(errors) == 3 and errors[0] is errors[1] is errors[2]
    assert lengths[0] == lengths[1] == lengths[2]
