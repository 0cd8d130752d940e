"""TaskControl across processes: validation, handler delivery, ordering, threads."""

from __future__ import annotations

import logging
import math
import os
import threading
from pathlib import Path

import pytest

from numerous.tasks import Session, TaskControl, TaskFailedError, set_task_control_handler
from numerous.tasks.control import (
    LoggingTaskControlHandler,
    TaskControlHandler,
    get_task_control_handler,
)

from task_helpers import (
    RecordingHandler,
    bad_level,
    bad_progress,
    chatty,
    clamped_progress,
    progress_then_wait,
    status_of,
)


def test_bad_log_level_fails_the_task_listing_the_levels() -> None:
    with Session():
        future = bad_level.instance().start()
        with pytest.raises(ValueError, match="'debug', 'info', 'warning', 'error'"):
            future.result()


@pytest.mark.parametrize(
    "value, error", [(math.nan, ValueError), (math.inf, ValueError), (-math.inf, ValueError), ("50", TypeError), (None, TypeError), (True, TypeError)]
)
def test_bad_progress_values_raise_inside_the_task(value: object, error: type) -> None:
    with Session():
        with pytest.raises(error, match="progress"):
            bad_progress.instance().start(value).result()


def test_progress_outside_0_to_100_is_clamped() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        low = clamped_progress.instance()
        high = clamped_progress.instance()
        low.start(-5.0).result()
        high.start(150.0).result()
    progress = {e[1]: e[2] for e in handler.events if e[0] == "progress"}
    assert progress[low.id] == (0.0, "reported -5.0")
    assert progress[high.id] == (100.0, "reported 150.0")


def test_every_log_record_arrives_in_order_before_result_returns() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        instance = chatty.instance()
        assert instance.start(500).result() == 500
        # No waiting: everything must already be there when result() returns.
        assert handler.logs(instance.id) == [f"record {i}" for i in range(500)]
        extras = [e[2][2] for e in handler.events if e[0] == "log"]
        assert extras == [{"index": i} for i in range(500)]
        assert [e for e in handler.events if e[0] == "progress"][-1][2] == (100.0, "last words")


def test_progress_reaches_the_parent_while_the_task_runs(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session():
        future = progress_then_wait.instance().start(str(go))
        handler.wait_for(lambda e: e[0] == "progress" and e[2] == (50.0, "halfway"))
        assert not future.done  # seen while the task still waits for us
        go.touch()
        assert future.result(timeout=30) == "done"


def test_final_status_is_delivered_before_result_returns() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        instance = status_of.instance()
        instance.start("final words").result()
        assert ("status", instance.id, "final words") in handler.events


def test_handlers_run_in_the_parent_on_a_background_thread() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        chatty.instance().start(3).result()
    assert set(handler.pids) == {os.getpid()}
    assert threading.main_thread().ident not in handler.threads


def test_the_spec_style_handler_overriding_three_methods_works() -> None:
    seen = []

    class Custom(TaskControlHandler):
        def log(self, task_control, message, level, **extra_data):  # type: ignore[no-untyped-def]
            seen.append(f"[{level.upper()}] {task_control.task_definition_name}: {message}")

        def update_progress(self, task_control, progress, status):  # type: ignore[no-untyped-def]
            seen.append(f"Progress: {progress}% - {status}")

        def update_status(self, task_control, status):  # type: ignore[no-untyped-def]
            seen.append(f"Status: {status}")

    set_task_control_handler(Custom())
    with Session():
        chatty.instance().start(2).result()
    # Logs are ordered among themselves; progress is state, delivered when polled.
    assert [line for line in seen if line.startswith("[")] == ["[INFO] chatty: record 0", "[INFO] chatty: record 1"]
    assert [line for line in seen if line.startswith("Progress")][-1] == "Progress: 100.0% - last words"


def test_default_handler_logs_with_task_name_and_instance_id(caplog: pytest.LogCaptureFixture) -> None:
    set_task_control_handler(None)
    assert isinstance(get_task_control_handler(), LoggingTaskControlHandler)
    caplog.set_level(logging.DEBUG, logger="numerous.tasks")
    with Session():
        instance = chatty.instance()
        instance.start(2).result()
    records = [r for r in caplog.records if r.getMessage() == "record 1"]
    assert len(records) == 1
    assert (records[0].levelname, records[0].task_name, records[0].instance_id) == ("INFO", "chatty", instance.id)
    assert records[0].index == 1


def test_set_handler_refuses_non_handlers_and_returns_the_previous_one() -> None:
    first = RecordingHandler()
    set_task_control_handler(first)
    assert set_task_control_handler(RecordingHandler()) is first
    with pytest.raises(TypeError, match="TaskControlHandler"):
        set_task_control_handler(print)  # type: ignore[arg-type]


def test_a_raising_handler_does_not_break_the_instance(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(TaskControlHandler):
        def log(self, task_control: TaskControl, message: str, level: str, **extra: object) -> None:
            raise RuntimeError("handler broke")

    set_task_control_handler(Broken())
    caplog.set_level(logging.ERROR, logger="numerous.tasks")
    with Session():
        assert chatty.instance().start(2).result() == 2
    assert "handler broke" in caplog.text


def test_an_error_raised_by_tc_in_a_worker_is_not_lost() -> None:
    with Session():
        future = bad_level.instance().start()
        future.wait_done(30)
    assert future.status == "failed" and not isinstance(future.error, TaskFailedError)
