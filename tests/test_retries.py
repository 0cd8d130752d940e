"""Retries: ``@task(retries=N, retry_on=..., retry_delay=...)`` on every backend."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, List, Optional, Tuple

import pytest
from retry_tasks import (
    TransientError,
    always_fails,
    fails_otherwise,
    fails_then_waits,
    fails_when_stopped,
    flaky,
    killed_first,
)

from numerous.tasks import (
    Session,
    TaskCancelledError,
    TaskControl,
    TaskControlHandler,
    TaskTimeoutError,
    WorkerDiedError,
    set_task_control_handler,
    task,
)
from numerous.tasks.testing import RecordingTaskControlHandler


def attempts(counter: Path) -> int:
    return int(counter.read_text()) if counter.exists() else 0


class AttemptRecorder(RecordingTaskControlHandler):
    """Records each state with the attempt its TaskControl names at that moment."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: List[Tuple[str, int, int, Optional[str]]] = []

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        self.seen.append((state, task_control.attempt, task_control.retries, type(error).__name__ if error else None))
        super().instance_state_changed(task_control, state, error)


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_task_failing_twice_then_succeeding_returns_its_result_after_three_attempts(tmp_path: Path) -> None:
    recorder = AttemptRecorder()
    set_task_control_handler(recorder)
    counter = tmp_path / "runs"
    with Session():
        instance = flaky.instance()
        future = instance.start(str(counter), 2)
        run, attempt_in_task, _ = future.result(timeout=50)
    assert (run, attempt_in_task) == (3, 3)  # the task's own TaskControl knows its attempt
    assert future.attempt == 3 and future.status == "completed" and attempts(counter) == 3
    assert recorder.seen == [
        ("pending", 1, 3, None),
        ("running", 1, 3, None),
        ("retrying", 2, 3, "TransientError"),
        ("running", 2, 3, None),
        ("retrying", 3, 3, "TransientError"),
        ("running", 3, 3, None),
        ("completed", 3, 3, None),
    ]
    # The timing record has every attempt, in order, each ended before the next began.
    times = instance.times
    every = times.all_attempts()
    assert [a.attempt for a in every] == [1, 2, 3]
    assert [a.error for a in every] == [
        "TransientError: transient failure 1",
        "TransientError: transient failure 2",
        None,
    ]
    assert every[-1].ended_ns == times.finished_ns
    for earlier, later in zip(every, every[1:]):
        assert earlier.running_ns is not None and earlier.ended_ns is not None and later.running_ns is not None
        assert earlier.running_ns <= earlier.ended_ns <= later.running_ns


@pytest.mark.timeout(60)
@pytest.mark.task_backend("local", "dask")  # the inline backend's tasks are threads of this process
@pytest.mark.usefixtures("task_backend")
def test_a_worker_killed_on_its_first_attempt_is_retried_in_a_new_process(tmp_path: Path) -> None:
    recorder = AttemptRecorder()
    set_task_control_handler(recorder)
    counter = tmp_path / "runs"
    with Session():
        future = killed_first.instance().start(str(counter))
        assert future.result(timeout=50) == (2, 2)
    assert future.attempt == 2
    retrying = [entry for entry in recorder.seen if entry[0] == "retrying"]
    assert retrying == [("retrying", 2, 2, type(recorder.events_for(future, "state")[2].error).__name__)]
    assert isinstance(recorder.events_for(future, "state")[2].error, WorkerDiedError)


@pytest.mark.timeout(60)
@pytest.mark.task_backend("local")
def test_an_ordinary_failure_is_retried_in_a_new_process_too(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    with Session():
        first = flaky.instance().start(str(tmp_path / "warm"), 0)
        _, _, warm_pid = first.result(timeout=30)  # its worker now waits, idle
        _, _, retried_pid = flaky.instance().start(str(counter), 1).result(timeout=30)
    # The failed attempt ran on the idle worker and it stayed reusable; the retry did not take it.
    assert retried_pid != warm_pid


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")
def test_when_retries_run_out_the_last_error_is_raised_with_its_worker_traceback(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    with Session():
        future = always_fails.instance().start(str(counter))
        with pytest.raises(TransientError, match="attempt 3 failed") as caught:
            future.result(timeout=50)
    assert attempts(counter) == 3 and future.attempt == 3 and future.status == "failed"
    frames = [entry.name for entry in caught.traceback]
    assert "always_fails" in frames  # the frame where the task raised it, from its worker


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")
def test_an_error_not_in_retry_on_is_not_retried(tmp_path: Path) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    counter = tmp_path / "runs"
    with Session():
        future = fails_otherwise.instance().start(str(counter))
        with pytest.raises(KeyError):
            future.result(timeout=50)
    assert attempts(counter) == 1 and future.attempt == 1
    assert recorder.states_for(future) == ["pending", "running", "failed"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["stop", "timeout"])
@pytest.mark.usefixtures("task_backend")
def test_a_stopped_or_timed_out_instance_is_never_retried(tmp_path: Path, how: str) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    counter = tmp_path / "runs"
    with Session():
        instance = fails_when_stopped.instance(timeout=0.5 if how == "timeout" else None)
        future = instance.start(str(counter))
        recorder.wait_for_status(future, "ready")
        if how == "stop":
            instance.stop()
        with pytest.raises((TransientError, TaskTimeoutError)):
            future.result(timeout=50)
    assert attempts(counter) == 1 and future.attempt == 1 and future.status == "failed"
    assert "retrying" not in recorder.states_for(future)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("how", ["cancel", "stop", "session exit"])
@pytest.mark.usefixtures("task_backend")
def test_cancelling_during_the_retry_delay_cancels_for_good(tmp_path: Path, how: str) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    counter = tmp_path / "runs"
    retrying = threading.Event()

    class Watch(TaskControlHandler):
        def instance_state_changed(self, task_control: TaskControl, state: str, error: Any) -> None:
            recorder.instance_state_changed(task_control, state, error)
            if state == "retrying":
                retrying.set()

    set_task_control_handler(Watch())
    with pytest.raises(RuntimeError) if how == "session exit" else _nothing():
        with Session():
            instance = fails_then_waits.instance()
            future = instance.start(str(counter))
            assert retrying.wait(30)
            assert future.status == "retrying" and not future.done
            if how == "cancel":
                assert future.cancel() is True  # at once, as for a pending instance
            elif how == "stop":
                instance.stop()
            else:
                raise RuntimeError("leaving the session by an exception")
            assert future.status == "cancelled"
    with pytest.raises(TaskCancelledError):
        future.result(timeout=0)
    assert attempts(counter) == 1
    assert recorder.states_for(future) == ["pending", "running", "retrying", "cancelled"]
    assert not [t for t in threading.enumerate() if t.name.startswith("numerous-retry-")]


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")
def test_whoever_sees_retrying_can_cancel_it_for_good(tmp_path: Path) -> None:
    """The moment "retrying" is told (here: to the handler, which cancels at once, on the
    thread that tells it), the wait for the next attempt exists: cancel() is True."""
    recorder = RecordingTaskControlHandler()
    answers: List[bool] = []
    futures: List[Any] = []
    started = threading.Event()  # the first attempt may fail before start() returns (inline)

    class CancelOnRetrying(TaskControlHandler):
        def instance_state_changed(self, task_control: TaskControl, state: str, error: Any) -> None:
            recorder.instance_state_changed(task_control, state, error)
            if state == "retrying" and started.wait(10):
                answers.append(futures[0].cancel())

    set_task_control_handler(CancelOnRetrying())
    counter = tmp_path / "runs"
    with Session():
        future = fails_then_waits.instance().start(str(counter))
        futures.append(future)
        started.set()
        with pytest.raises(TaskCancelledError):
            future.result(timeout=30)
    assert answers == [True]
    assert attempts(counter) == 1
    assert recorder.states_for(future)[-1] == "cancelled"
    assert not [t for t in threading.enumerate() if t.name.startswith("numerous-retry-")]


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


@pytest.mark.timeout(60)
@pytest.mark.task_backend("local")
def test_a_retry_keeps_its_slot_and_the_attempts_are_one_instance(tmp_path: Path) -> None:
    @task(retries=1, retry_on=(TransientError,), max_parallel=1)
    def one_slot(counter: str) -> int:
        from retry_tasks import count_attempt

        run = count_attempt(counter)
        if run == 1:
            raise TransientError("once")
        return run

    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session() as session:
        first = one_slot.instance().start(str(tmp_path / "a"))
        second = one_slot.instance().start(str(tmp_path / "b"))
        assert first.result(timeout=30) == 2 and second.result(timeout=30) == 2
        assert session.unfinished() == []
    # max_parallel=1 held through the retry: the second began after the first had ended.
    order = [(e.instance_id, e.state) for e in recorder.events if e.kind == "state" and e.state != "pending"]
    ids = (first.instance_id, second.instance_id)
    assert [state for who, state in order if who == ids[0]] == ["running", "retrying", "running", "completed"]
    assert order.index((ids[1], "running")) > order.index((ids[0], "completed"))


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"retries": -1}, ValueError, "retries must be at least 0, not -1"),
        ({"retries": 1.5}, TypeError, "retries must be an int, not float"),
        ({"retries": True}, TypeError, "retries must be an int, not bool"),
        ({"retry_on": "ValueError"}, TypeError, "retry_on must be a tuple of exception classes, not str"),
        ({"retry_on": (ValueError, int)}, TypeError, "retry_on must hold exception classes, not <class 'int'>"),
        (
            {
                "retry_on": (ValueError()),
            },
            TypeError,
            "retry_on must be a tuple of exception classes, not ValueError",
        ),
        ({"retry_delay": -1}, ValueError, "retry_delay must be a finite number of seconds >= 0, not -1"),
        ({"retry_delay": float("nan")}, ValueError, "retry_delay must be a finite number of seconds >= 0, not nan"),
        ({"retry_delay": float("inf")}, ValueError, "retry_delay must be a finite number of seconds >= 0, not inf"),
        ({"retry_delay": "1"}, TypeError, "retry_delay must be a number of seconds, not str"),
    ],
)
def test_bad_retry_options_fail_at_the_decorator_naming_the_option(options: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        task(**options)(lambda: None)


def test_retry_options_are_checked_and_kept() -> None:
    @task(retries=2, retry_on=TransientError, retry_delay=1)
    def fn() -> None: ...

    assert (fn.options.retries, fn.options.retry_on, fn.options.retry_delay) == (2, (TransientError,), 1.0)
    assert isinstance(fn.options.retry_delay, float)

    @task
    def plain() -> None: ...

    assert (plain.options.retries, plain.options.retry_on, plain.options.retry_delay) == (0, (WorkerDiedError,), 0.0)
