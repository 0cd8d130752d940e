"""The inline backend: the same Future, handler and error semantics as the process
backends (the parity tests below run on every backend, through the plugin's fixtures;
queueing, stopping and timeouts are tests/test_session.py's and tests/test_stop.py's,
which run on every backend too), pickling of calls on by default and off on request,
and cooperative-only stopping: a thread cannot be killed."""

from __future__ import annotations

import os
import threading
import traceback
from typing import Any, List

import pytest
from inline_tasks import (
    WAIT_LIMIT,
    HoldsLock,
    NeedsArgs,
    fails,
    identity,
    ignores_stop_until,
    logs_a_lock,
    mutates,
    raises,
    reports,
    returns_lock,
    waits_forever_cooperatively,
    where,
)

from numerous.tasks import (
    Session,
    TaskCancelledError,
    TaskFailedError,
    TaskTimeoutError,
    set_task_control_handler,
)
from numerous.tasks.backends.base import BACKENDS
from numerous.tasks.control import TaskControl, TaskControlHandler
from numerous.tasks.testing import RecordingTaskControlHandler

NO_PICKLE = pytest.mark.task_backend("inline", pickle=False)


# -- parity with the process backends ------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_task_reports_and_completes_the_same_way(
    task_session: Session, recorded_task_control: RecordingTaskControlHandler
) -> None:
    future = reports.instance().start(4)
    assert future.result(timeout=WAIT_LIMIT) == 8
    assert (future.status, future.done, future.error) == ("completed", True, None)
    rec = recorded_task_control
    assert rec.states_for(future) == ["pending", "running", "completed"]
    assert rec.logs_for(future) == ["starting", "done"]
    assert rec.logs_for(future, level="debug") == ["done"]
    assert rec.events_for(future, "log")[0].extra == {"step": 0}
    assert rec.progress_for(future)[-1] == 100.0  # the local backend may coalesce the steps
    assert rec.statuses_for(future)[-1] == "4/4"
    rec.assert_logged(future, "starting", level="info")


@pytest.mark.timeout(60)
def test_a_task_exception_is_raised_as_itself_with_the_task_frames(task_session: Session) -> None:
    future = fails.instance().start("boom")
    with pytest.raises(ValueError, match="boom") as caught:
        future.result(timeout=WAIT_LIMIT)
    assert future.status == "failed"
    assert isinstance(future.error, ValueError)
    frames = [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]
    assert "_raise_value_error" in frames
    assert not any(name in ("_execute", "_main", "call_with_control") for name in frames)


@pytest.mark.timeout(60)
def test_an_exception_with_a_custom_init_survives_the_round_trip(task_session: Session) -> None:
    with pytest.raises(NeedsArgs, match="code 7: custom init") as caught:
        raises.instance().start("needs-args").result(timeout=WAIT_LIMIT)
    assert caught.value.code == 7


@pytest.mark.timeout(60)
def test_an_unpicklable_exception_becomes_task_failed_error(task_session: Session) -> None:
    with pytest.raises(TaskFailedError, match="has a lock") as caught:
        raises.instance().start("holds-lock").result(timeout=WAIT_LIMIT)
    assert caught.value.type_name == "inline_tasks.HoldsLock"
    assert "could not be pickled" in str(caught.value)
    assert 'raise HoldsLock("has a lock")' in caught.value.formatted_traceback


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["system-exit", "keyboard-interrupt"])
def test_system_exit_and_keyboard_interrupt_are_reported_not_raised(task_session: Session, kind: str) -> None:
    with pytest.raises(TaskFailedError, match="rather than raised"):
        raises.instance().start(kind).result(timeout=WAIT_LIMIT)


@pytest.mark.timeout(60)
def test_an_unpicklable_argument_is_refused_by_start(task_session: Session) -> None:
    with pytest.raises(TypeError, match="positional argument 0") as caught:
        identity.instance().start(threading.Lock())
    assert "cannot be pickled" in str(caught.value)


@pytest.mark.timeout(60)
def test_an_unpicklable_result_fails_the_future(task_session: Session) -> None:
    future = returns_lock.instance().start()
    with pytest.raises(TaskFailedError, match="while pickling the task's result"):
        future.result(timeout=WAIT_LIMIT)
    assert future.status == "failed"


@pytest.mark.timeout(60)
def test_arguments_are_copies_as_across_a_process_boundary(task_session: Session) -> None:
    items = [1, 2, 3]
    assert mutates.instance().start(items).result(timeout=WAIT_LIMIT) == [1, 2, 3, 4]
    assert items == [1, 2, 3]


# -- the inline backend only --------------------------------------------------------------------
def test_inline_is_a_registered_backend() -> None:
    assert BACKENDS["inline"] == "numerous.tasks.backends.inline:InlineBackend"


@pytest.mark.timeout(30)
def test_instances_run_in_a_named_thread_of_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "inline")
    with Session():
        instance = where.instance()
        pid, process_id, thread = instance.start().result(timeout=WAIT_LIMIT)
    assert pid == process_id == os.getpid()
    assert thread == f"numerous-inline-{instance.id}"
    assert thread != threading.current_thread().name


@pytest.mark.timeout(30)
def test_a_bad_pickle_setting_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMEROUS_INLINE_PICKLE", "maybe")
    with Session(backend="inline"):
        with pytest.raises(ValueError, match="NUMEROUS_INLINE_PICKLE"):
            identity.instance()


@NO_PICKLE
@pytest.mark.timeout(30)
def test_with_pickling_off_arguments_and_results_are_the_same_objects(task_session: Session) -> None:
    lock = threading.Lock()  # cannot be pickled: fine by reference
    assert identity.instance().start(lock).result(timeout=WAIT_LIMIT) is lock
    items = [1, 2, 3]
    assert mutates.instance().start(items).result(timeout=WAIT_LIMIT) is items
    assert items == [1, 2, 3, 4]
    with pytest.raises(HoldsLock):  # the exception itself, not a TaskFailedError
        raises.instance().start("holds-lock").result(timeout=WAIT_LIMIT)


@NO_PICKLE
@pytest.mark.timeout(30)
def test_with_pickling_off_a_task_can_be_synchronised_with_an_event(task_session: Session) -> None:
    started = threading.Event()
    instance = waits_forever_cooperatively.instance()
    future = instance.start(started)
    assert started.wait(WAIT_LIMIT)
    future.cancel()  # running: a stop request
    assert future.result(timeout=WAIT_LIMIT) == "stopped"


@pytest.mark.timeout(30)
def test_a_task_that_ignores_its_stop_is_cancelled_after_the_grace_and_its_thread_left_running(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("NUMEROUS_INLINE_PICKLE", "0")
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    release = threading.Event()
    try:
        with Session(backend="inline", stop_grace=0.05):
            instance = ignores_stop_until.instance()
            future = instance.start(release)
            recorder.wait_for_status(future, "ready")
            instance.stop()
            with pytest.raises(TaskCancelledError):
                future.result(timeout=WAIT_LIMIT)
            thread = _thread_named(f"numerous-inline-abandoned-{instance.id}")
        assert thread.is_alive()  # the session has ended; the thread could not be ended
        assert "cannot terminate a thread" in caplog.text
    finally:
        release.set()
    thread.join(WAIT_LIMIT)
    assert not thread.is_alive()
    assert "too late" not in recorder.logs_for(future)  # nothing after its future ended
    assert recorder.states_for(future) == ["pending", "running", "cancelled"]


@pytest.mark.timeout(30)
def test_a_timeout_on_a_task_that_ignores_it_fails_with_task_timeout_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NUMEROUS_INLINE_PICKLE", "0")
    release = threading.Event()
    try:
        with Session(backend="inline", stop_grace=0.05):
            instance = ignores_stop_until.instance(timeout=0.05)
            with pytest.raises(TaskTimeoutError, match=r"timed out after 0\.05 s"):
                instance.start(release).result(timeout=WAIT_LIMIT)
            thread = _thread_named(f"numerous-inline-abandoned-{instance.id}")
    finally:
        release.set()
    thread.join(WAIT_LIMIT)


@pytest.mark.timeout(30)
def test_a_handler_that_raises_does_not_fail_the_task(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(TaskControlHandler):
        def log(self, task_control: TaskControl, message: str, level: str, **extra: Any) -> None:
            raise RuntimeError("handler bug")

    set_task_control_handler(Broken())
    with Session(backend="inline"):
        assert reports.instance().start(2).result(timeout=WAIT_LIMIT) == 4
    assert "handler bug" in caplog.text


@pytest.mark.timeout(60)
def test_an_unpicklable_log_extra_arrives_as_its_repr(
    task_session: Session, recorded_task_control: RecordingTaskControlHandler
) -> None:
    future = logs_a_lock.instance().start()
    future.result(timeout=WAIT_LIMIT)
    extra = recorded_task_control.events_for(future, "log")[0].extra
    assert extra["n"] == "1" and "lock" in extra["lock"]


def _id(future: Any) -> str:
    from numerous.tasks.testing import instance_id_of

    return instance_id_of(future)


def _thread_named(name: str) -> threading.Thread:
    threads: List[threading.Thread] = [t for t in threading.enumerate() if t.name == name]
    assert threads, f"no thread named {name}: {[t.name for t in threading.enumerate()]}"
    return threads[0]
