"""TaskControl and handlers: validation of what a task reports, and what reaches the
parent's handler — every log record in order, progress while the task runs, the last
values before result() returns, on a background thread of the parent process."""

from __future__ import annotations

import logging
import math
import os
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import api_tasks
import pytest
from api_tasks import RecordingHandler

from numerous.tasks import Session, TaskControl, TaskFailedError, set_task_control_handler, task
from numerous.tasks.control import (
    LoggingTaskControlHandler,
    TaskControlHandler,
    get_task_control_handler,
)

RESULT_WAIT = 30.0
LEVELS = ("debug", "info", "warning", "error")
LEVELS_LISTED = "'debug', 'info', 'warning', 'error'"


def _use_handler() -> RecordingHandler:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    return handler


class SpecHandler(TaskControlHandler):
    """A handler written as the spec shows: it overrides log, update_progress and
    update_status only (no instance_state_changed)."""

    def __init__(self) -> None:
        self.logs: List[Tuple[str, str, str, str, Dict[str, Any]]] = []
        self.progress: List[Tuple[str, float, Optional[str]]] = []
        self.statuses: List[Tuple[str, str]] = []
        self.lock = threading.Lock()

    def log(self, task_control, message, level, **extra_data):  # type: ignore[no-untyped-def]
        with self.lock:
            self.logs.append((task_control.task_definition_name, task_control.instance_id, message, level, extra_data))

    def update_progress(self, task_control, progress, status):  # type: ignore[no-untyped-def]
        with self.lock:
            self.progress.append((task_control.instance_id, progress, status))

    def update_status(self, task_control, status):  # type: ignore[no-untyped-def]
        with self.lock:
            self.statuses.append((task_control.instance_id, status))


# -- tc.log levels ------------------------------------------------------------------------------
def test_bad_log_level_in_a_direct_call_raises_value_error_listing_the_levels() -> None:
    with pytest.raises(ValueError) as caught:
        api_tasks.log_at("critical")
    assert LEVELS_LISTED in str(caught.value) and "critical" in str(caught.value)


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_bad_log_level_in_a_worker_fails_the_task_with_that_value_error() -> None:
    handler = _use_handler()
    with Session():
        good = [api_tasks.log_at.instance() for _ in LEVELS]
        good_futures = [inst.start(level) for inst, level in zip(good, LEVELS)]
        bad = api_tasks.log_at.instance().start("critical")
        assert [f.result(timeout=RESULT_WAIT) for f in good_futures] == list(LEVELS)
        with pytest.raises(ValueError) as caught:
            bad.result(timeout=RESULT_WAIT)
    assert type(caught.value) is ValueError and not isinstance(caught.value, TaskFailedError)
    assert LEVELS_LISTED in str(caught.value)
    assert bad.status == "failed" and bad.error is caught.value
    for instance, level in zip(good, LEVELS):
        assert handler.of(instance.id, "log") == [("a message", level, {})]


# -- update_progress validation and clamping ----------------------------------------------------------
BAD_PROGRESS = [
    (math.nan, ValueError),
    (math.inf, ValueError),
    (-math.inf, ValueError),
    ("50", TypeError),
    (None, TypeError),
    (True, TypeError),
]


@pytest.mark.parametrize("value, error", BAD_PROGRESS, ids=lambda v: repr(v))
def test_bad_progress_in_a_direct_call(value: Any, error: type) -> None:
    handler = _use_handler()
    with pytest.raises(error, match="progress") as caught:
        api_tasks.progress_to(value)
    assert type(caught.value) is error
    assert handler.events == []  # nothing was reported


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_bad_progress_in_a_worker_fails_the_task_with_that_error() -> None:
    with Session():
        futures = [api_tasks.progress_to.instance().start(value) for value, _ in BAD_PROGRESS]
        for future in futures:
            future.wait_done(RESULT_WAIT)
    assert [type(f.error) for f in futures] == [error for _, error in BAD_PROGRESS]
    assert all("progress" in str(f.error) for f in futures)


def test_status_must_be_a_string() -> None:
    @task
    def bad_status(tc: TaskControl, how: str) -> None:
        if how == "progress":
            tc.update_progress(10.0, 5)  # type: ignore[arg-type]
        else:
            tc.update_status(None)  # type: ignore[arg-type]

    with pytest.raises(TypeError, match="status"):
        bad_status("progress")
    with pytest.raises(TypeError, match="status"):
        bad_status("status")


def test_progress_outside_0_to_100_is_clamped_in_a_direct_call() -> None:
    handler = _use_handler()
    assert api_tasks.progress_to(-5) == -5
    assert api_tasks.progress_to(150) == 150
    assert api_tasks.progress_to(42.5) == 42.5
    # Numbers beyond float's range are clamped too, not an OverflowError.
    assert api_tasks.progress_to(10**400) == 10**400
    assert api_tasks.progress_to(-(10**400)) == -(10**400)
    assert api_tasks.progress_to(Fraction(10**400, 3)) == Fraction(10**400, 3)
    assert [e.payload[0] for e in handler.events] == [0.0, 100.0, 42.5, 100.0, 0.0, 100.0]
    assert handler.events[1].payload == (100.0, "reported 150")


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_progress_outside_0_to_100_is_clamped_in_a_worker() -> None:
    handler = _use_handler()
    values = [-5, 150, -0.5, 100.5, 42.5, 10**400, -(10**400)]
    with Session():
        instances = [api_tasks.progress_to.instance() for _ in values]
        for instance, value in zip(instances, values):
            assert instance.start(value).result(timeout=RESULT_WAIT) == value
    seen = [handler.of(instance.id, "progress") for instance in instances]
    assert seen == [
        [(0.0, "reported -5")],
        [(100.0, "reported 150")],
        [(0.0, "reported -0.5")],
        [(100.0, "reported 100.5")],
        [(42.5, "reported 42.5")],
        [(100.0, f"reported {10**400}")],
        [(0.0, f"reported {-(10**400)}")],
    ]


# -- what reaches a custom handler -----------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_spec_style_handler_gets_every_log_record_in_order_before_result_returns() -> None:
    handler = SpecHandler()
    set_task_control_handler(handler)
    count = 500
    with Session():
        instance = api_tasks.chatty.instance()
        assert instance.start(count).result(timeout=RESULT_WAIT) == count
        # No waiting here: all of it must have been delivered when result() returned.
        with handler.lock:
            logs = list(handler.logs)
            progress = list(handler.progress)
    expected = [
        ("chatty", instance.id, f"record {i}", "debug" if i % 2 else "info", {"index": i}) for i in range(count)
    ]
    assert len(logs) == count
    assert logs == expected
    assert progress[-1] == (instance.id, 100.0, "last words")


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_progress_reaches_the_handler_while_the_task_is_still_running(tmp_path: Path) -> None:
    halfway = threading.Event()

    class Watcher(TaskControlHandler):
        def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
            if (progress, status) == (50.0, "halfway"):
                halfway.set()

    set_task_control_handler(Watcher())
    go = tmp_path / "go"
    with Session():
        future = api_tasks.progress_then_wait.instance().start(str(go))
        # The task waits for `go`, which exists only after the handler saw 50 %.
        assert halfway.wait(RESULT_WAIT), "50 % never reached the handler while the task ran"
        assert (future.status, future.done) == ("running", False)
        go.touch()
        assert future.result(timeout=RESULT_WAIT) == "done"


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_final_progress_reported_just_before_returning_arrives_before_result() -> None:
    handler = _use_handler()
    with Session():
        for i in range(5):
            instance = api_tasks.last_moment_progress.instance()
            status = f"final {i}"
            assert instance.start(60.0 + i, status).result(timeout=RESULT_WAIT) == status
            progress = handler.of(instance.id, "progress")  # read at once, no waiting
            assert progress and progress[-1] == (60.0 + i, status)


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_final_status_reported_just_before_returning_arrives_before_result() -> None:
    handler = _use_handler()
    with Session():
        for i in range(5):
            instance = api_tasks.last_moment_status.instance()
            status = f"status {i}"
            assert instance.start(status).result(timeout=RESULT_WAIT) == status
            statuses = [RecordingHandler.status_of(e) for e in handler.snapshot() if e.instance_id == instance.id]
            assert [s for s in statuses if s is not None][-1:] == [status]


class _WaitAwareHandler(RecordingHandler):
    """Records, with each call, whether the main thread was waiting in result() then."""

    def __init__(self) -> None:
        super().__init__()
        self.main_waits = threading.Event()
        self.main_waiting_at_call: List[bool] = []

    def _record(self, kind: str, control: TaskControl, payload: Any) -> None:
        with self._changed:  # reentrant: in step with the calls the base class records
            self.main_waiting_at_call.append(self.main_waits.is_set())
            super()._record(kind, control, payload)


@pytest.mark.task_backend("local", "dask")  # inline runs the task in this very process
@pytest.mark.usefixtures("task_backend")
def test_handler_methods_run_in_the_parent_process_and_on_the_main_thread_only_while_it_waits(
    tmp_path: Path,
) -> None:
    handler = _WaitAwareHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session():
        instance = api_tasks.report_everything.instance()
        future = instance.start(str(go))
        handler.wait_for(lambda e: e.instance_id == instance.id and e.kind == "progress")
        go.touch()  # now the task changes only its status: update_status must be called
        handler.main_waits.set()
        worker_pid = future.result(timeout=RESULT_WAIT)
        handler.main_waits.clear()
        handler.wait_for(lambda e: e.instance_id == instance.id and e.kind == "status")
    reporting = [
        (kind, pid, ident, waiting)
        for event, (kind, pid, ident), waiting in zip(handler.snapshot(), handler.calls, handler.main_waiting_at_call)
        if event.instance_id == instance.id and kind in ("log", "progress", "status")
    ]
    assert {kind for kind, _, _, _ in reporting} == {"log", "progress", "status"}
    assert worker_pid != os.getpid()  # the task ran elsewhere ...
    assert {pid for _, pid, _, _ in reporting} == {os.getpid()}  # ... its handler calls ran here
    main = threading.main_thread().ident
    # on the dispatcher thread, or on the caller's while it waits for this very instance
    assert all(waiting for _, _, ident, waiting in reporting if ident == main)
    assert any(ident != main for _, _, ident, _ in reporting)  # the progress, read while it ran
    assert handler.of(instance.id, "status") == ["status only"]


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_instance_state_changes_are_reported_where_documented() -> None:
    # TaskControlHandler.instance_state_changed: "pending" on the thread calling start()
    # (before it returns); the final state before result() returns.
    handler = _use_handler()
    with Session():
        instances = [api_tasks.double.instance() for _ in range(2)]  # the 2nd reuses a warm worker
        for value, instance in enumerate(instances):
            instance.start(value)
            assert handler.states(instance.id)[:1] == ["pending"]  # before start() returned
            instance.future.result(timeout=RESULT_WAIT)
            assert handler.states(instance.id)[-1] == "completed"  # before result() returned
    main = threading.main_thread().ident
    pending_threads = {
        ident
        for event, (_, _, ident) in zip(handler.snapshot(), handler.calls)
        if event.kind == "state" and event.payload == "pending"
    }
    assert pending_threads == {main}


# -- extras and the default handler ------------------------------------------------------------------------
EXTRA: Dict[str, Any] = {"user": "bob", "count": 3, "nested": {"a": [1, 2]}, "ratio": 0.5}


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_log_extras_reach_the_handler_from_a_worker_and_a_direct_call() -> None:
    handler = _use_handler()
    with Session():
        instance = api_tasks.log_extra.instance()
        instance.start(EXTRA).result(timeout=RESULT_WAIT)
    api_tasks.log_extra(EXTRA)
    assert handler.of(instance.id, "log") == [("with extras", "error", EXTRA)]
    assert handler.of("direct", "log") == [("with extras", "error", EXTRA)]


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_an_extra_named_like_a_handler_parameter_is_not_silently_lost() -> None:
    # `task_control` is the name of the handler's first parameter: passed on as a
    # keyword it collides. Either tc.log refuses it (the task fails) or it arrives.
    handler = _use_handler()
    with Session():
        instance = api_tasks.log_extra.instance()
        future = instance.start({"task_control": "mine"})
        assert future.wait_done(RESULT_WAIT)
    delivered = handler.of(instance.id, "log")
    assert future.status == "failed" or delivered == [("with extras", "error", {"task_control": "mine"})], (
        f"the task completed but its log record never reached the handler (got {delivered})"
    )


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_default_handler_logs_to_the_numerous_tasks_logger(caplog: pytest.LogCaptureFixture) -> None:
    set_task_control_handler(None)
    assert isinstance(get_task_control_handler(), LoggingTaskControlHandler)
    caplog.set_level(logging.DEBUG, logger="numerous.tasks")
    with Session():
        chatty = api_tasks.chatty.instance()
        chatty.start(2).result(timeout=RESULT_WAIT)
        extra = api_tasks.log_extra.instance()
        extra.start(EXTRA).result(timeout=RESULT_WAIT)
    api_tasks.log_at("warning")  # a direct call goes through it too

    def records(message: str) -> List[logging.LogRecord]:
        return [r for r in caplog.records if r.getMessage() == message]

    (record0,) = records("record 0")
    (record1,) = records("record 1")
    assert (record0.name, record0.levelname, record1.levelname) == ("numerous.tasks", "INFO", "DEBUG")
    assert (record0.task_name, record0.instance_id, record0.index) == ("chatty", chatty.id, 0)
    assert (record1.task_name, record1.instance_id, record1.index) == ("chatty", chatty.id, 1)
    (with_extras,) = records("with extras")
    assert (with_extras.levelname, with_extras.task_name, with_extras.instance_id) == ("ERROR", "log_extra", extra.id)
    assert (with_extras.user, with_extras.count, with_extras.nested) == ("bob", 3, {"a": [1, 2]})
    (direct,) = records("a message")
    assert (direct.levelname, direct.task_name, direct.instance_id) == ("WARNING", "log_at", "direct")
    progress = [r for r in caplog.records if "last words" in r.getMessage()]
    assert progress and all(r.levelname == "DEBUG" and r.instance_id == chatty.id for r in progress)


# -- installing handlers -------------------------------------------------------------------------------------
def test_set_handler_returns_the_previous_one_and_none_restores_the_default() -> None:
    first = RecordingHandler()
    set_task_control_handler(first)
    second = RecordingHandler()
    assert set_task_control_handler(second) is first
    assert get_task_control_handler() is second
    assert set_task_control_handler(None) is second
    assert isinstance(get_task_control_handler(), LoggingTaskControlHandler)
    with pytest.raises(TypeError, match="TaskControlHandler"):
        set_task_control_handler(print)  # type: ignore[arg-type]


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_raising_handler_is_logged_and_does_not_break_the_instance(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(TaskControlHandler):
        def log(self, task_control: TaskControl, message: str, level: str, **extra: Any) -> None:
            raise RuntimeError("handler broke")

        def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
            raise RuntimeError("progress handler broke")

    set_task_control_handler(Broken())
    caplog.set_level(logging.ERROR, logger="numerous.tasks")
    with Session():
        future = api_tasks.chatty.instance().start(3)
        assert future.result(timeout=RESULT_WAIT) == 3
    assert future.status == "completed"
    assert "handler broke" in caplog.text and "progress handler broke" in caplog.text


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_records_after_one_the_handler_raised_on_still_arrive_in_order(caplog: pytest.LogCaptureFixture) -> None:
    class BreaksOnSome(TaskControlHandler):
        def __init__(self) -> None:
            self.indexes: List[int] = []

        def log(self, task_control: TaskControl, message: str, level: str, **extra: Any) -> None:
            self.indexes.append(extra["index"])
            if extra["index"] % 7 == 3:
                raise RuntimeError(f"handler broke on {extra['index']}")
            if extra["index"] % 7 == 5:
                raise SystemExit(5)

    handler = BreaksOnSome()
    set_task_control_handler(handler)
    caplog.set_level(logging.ERROR, logger="numerous.tasks")
    count = 300  # logged in a tight loop: many records share a batch with a raising one
    with Session():
        assert api_tasks.chatty.instance().start(count).result(timeout=RESULT_WAIT) == count
    assert handler.indexes == list(range(count))
    assert "handler broke on 297" in caplog.text and "SystemExit" in caplog.text
