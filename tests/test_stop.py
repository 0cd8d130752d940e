"""Stopping: pending instances are cancelled, running ones asked, then their tree killed."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import List

import psutil
import pytest
from backend_tasks import (
    cooperative,
    deaf_to_sigterm,
    double,
    exits_on_sigterm,
    flag_at_start,
    ignores_stop,
    ignores_stop_with_children,
    is_dead,
    one_at_a_time,
    stoppable,
    wait_for_file,
    wait_until,
)

from numerous.tasks import Session, TaskCancelledError, TaskTimeoutError, set_task_control_handler
from numerous.tasks.testing import RecordingTaskControlHandler

#: Tests that terminate what a task runs: not on the inline backend, whose tasks are
#: threads of this process (a thread cannot be killed; tests/test_inline_backend.py
#: checks what it does instead).
TERMINATES = pytest.mark.task_backend("local", "dask")


@pytest.mark.parametrize("how", ["stop", "cancel"])
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_pending_instance_is_cancelled_at_once_and_never_runs(tmp_path: Path, how: str) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    go = str(tmp_path / "go")
    markers = [str(tmp_path / f"ran-{n}") for n in range(3)]
    with Session():
        blocker = one_at_a_time.instance()
        running = blocker.start(go, markers[0])
        recorder.wait_for_status(running, "ready")
        queued = one_at_a_time.instance()
        cancelled = queued.start(go, markers[1])
        behind = one_at_a_time.instance()
        later = behind.start(go, markers[2])
        assert (cancelled.status, later.status) == ("pending", "pending")
        if how == "stop":
            queued.stop()
        else:
            assert cancelled.cancel() is True
        # At once, not when a slot frees up.
        assert cancelled.done and cancelled.status == "cancelled" and queued.status == "cancelled"
        assert cancelled.error is None
        with pytest.raises(TaskCancelledError):
            cancelled.result(timeout=0)
        assert running.status == "running"
        Path(go).touch()
        assert running.result(timeout=30) == "went"
        assert later.result(timeout=30) == "went"  # the one behind it still runs
    assert not os.path.exists(markers[1])
    assert os.path.exists(markers[0]) and os.path.exists(markers[2])
    assert recorder.states_for(queued.id) == ["pending", "cancelled"]  # never "running"
    assert cancelled.cancel() is False  # already over


@pytest.mark.parametrize("how", ["stop", "cancel"])
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_cooperative_task_returns_its_value_when_stopped(how: str) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session():  # default grace: 5 s
        instance = cooperative.instance()
        future = instance.start()
        recorder.wait_for_status(future, "ready")
        asked = time.monotonic()
        if how == "stop":
            instance.stop()
        else:
            assert future.cancel() is False  # running: a stop request, not a cancel
        assert future.result(timeout=10) == "stopped cleanly"
        took = time.monotonic() - asked
    assert future.status == "completed" and future.error is None
    assert took < 2.0  # it returned by itself, long before the grace ran out
    times = instance.times
    assert times.started_ns is not None and times.stop_requested_ns is not None and times.finished_ns is not None
    assert times.started_ns <= times.stop_requested_ns <= times.finished_ns


@pytest.mark.timeout(30)
@TERMINATES
@pytest.mark.usefixtures("task_backend")
def test_a_task_ignoring_stop_is_cancelled_once_the_timeout_passes() -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session():
        instance = ignores_stop.instance()
        future = instance.start()
        recorder.wait_for_status(future, "ready")
        asked = time.monotonic()
        instance.stop(timeout=0.2)
        assert future.wait_done(10)
        took = time.monotonic() - asked
        assert future.status == "cancelled" and future.error is None
        with pytest.raises(TaskCancelledError):
            future.result()
    assert 0.19 <= took < 1.5, took  # not before the grace, and promptly after it
    assert recorder.states_for(instance.id)[-1] == "cancelled"


def _tree(pid_file: str) -> List[int]:
    return [int(pid) for pid in wait_for_file(pid_file).split()]


@pytest.mark.timeout(30)
def test_a_stopped_tasks_children_die_with_it(tmp_path: Path) -> None:
    pid_file = str(tmp_path / "pids")
    with Session():
        instance = ignores_stop_with_children.instance()
        future = instance.start(pid_file)
        pids = _tree(pid_file)  # worker, sleep, python ignoring SIGTERM, sleep in its own session
        asked = time.monotonic()
        instance.stop(timeout=0.2)
        assert future.wait_done(10)
        took = time.monotonic() - asked
        assert future.status == "cancelled"
        # Gone once the future resolves (killed: at most a zombie for a moment) ...
        assert wait_until(lambda: all(is_dead(pid) for pid in pids), 0.5), [
            (pid, psutil.Process(pid).status()) for pid in pids if not is_dead(pid)
        ]
        # ... and reaped soon after: no zombies left behind either.
        assert wait_until(lambda: not any(psutil.pid_exists(pid) for pid in pids), 1.0)
    assert took < 1.5, took


@pytest.mark.timeout(30)
def test_terminating_one_instance_spares_another_ones_worker_and_children(tmp_path: Path) -> None:
    with Session(max_workers=None):
        stopped, spared = ignores_stop_with_children.instance(), ignores_stop_with_children.instance()
        stopped_future = stopped.start(str(tmp_path / "stopped"))
        spared_future = spared.start(str(tmp_path / "spared"))
        stopped_tree, spared_tree = _tree(str(tmp_path / "stopped")), _tree(str(tmp_path / "spared"))
        stopped.stop(timeout=0)
        assert stopped_future.wait_done(10) and stopped_future.status == "cancelled"
        assert wait_until(lambda: not any(psutil.pid_exists(pid) for pid in stopped_tree), 2.0)
        # The other instance's worker, its children and the one in a session of its own
        # are all still there, and it still runs.
        assert not any(is_dead(pid) for pid in spared_tree)
        assert spared_future.status == "running"
        spared.stop(timeout=0)
        assert spared_future.wait_done(10) and spared_future.status == "cancelled"
    assert wait_until(lambda: not any(psutil.pid_exists(pid) for pid in spared_tree), 2.0)


@pytest.mark.timeout(30)
def test_the_session_does_not_linger_after_terminating_a_tree(tmp_path: Path) -> None:
    pid_file = str(tmp_path / "pids")
    session = Session()
    with session:
        instance = ignores_stop_with_children.instance()
        future = instance.start(pid_file)
        pids = _tree(pid_file)
        instance.stop(timeout=0.05)
        assert future.wait_done(10)
        assert wait_until(lambda: not any(psutil.pid_exists(pid) for pid in pids), 1.0)
        leaving = time.monotonic()
    # Everything it started is dead and reaped: leaving has nothing left to wait for.
    took = time.monotonic() - leaving
    assert took < 0.5, f"leaving the session took {took:.2f} s with nothing left running"


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["ignore", "c-loop"])
def test_a_task_deaf_to_sigterm_is_killed_after_the_terminate_grace(tmp_path: Path, how: str) -> None:
    ready = str(tmp_path / "ready")
    with Session():
        instance = deaf_to_sigterm.instance()
        future = instance.start(ready, how)
        worker = int(wait_for_file(ready))
        asked = time.monotonic()
        instance.stop(timeout=0.2)
        assert future.wait_done(10)
        took = time.monotonic() - asked
        assert future.status == "cancelled"
        assert is_dead(worker)
    if how == "ignore":
        assert 0.6 <= took < 1.5, took  # grace 0.2 s, SIGTERM, SIGKILL 0.5 s later
    else:  # busy in C code, but SIGTERM has its default action in a worker: it dies of it at once
        assert 0.2 <= took < 0.6, took


@pytest.mark.timeout(60)
@TERMINATES
@pytest.mark.usefixtures("task_backend")
def test_a_task_that_exits_on_sigterm_ends_cancelled_once_terminated() -> None:
    """Once the library has sent the terminate signal, the outcome is "cancelled",
    whatever the worker reports (here: SystemExit(0) from the task's own handler)."""
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session(max_workers=None):  # four run at once, whatever the CPUs
        instances = [
            exits_on_sigterm.instance() for _ in range(4)
        ]  # a race: several tries (4: what the test cluster runs at once)
        futures = [instance.start() for instance in instances]
        for future in futures:
            recorder.wait_for_status(future, "ready")
        for instance in instances:
            instance.stop(timeout=0.1)
        for future in futures:
            assert future.wait_done(10)
    assert [f.status for f in futures] == ["cancelled"] * len(futures), [f.error for f in futures]


def test_a_worker_reused_after_a_stop_does_not_pass_the_stop_on() -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session():
        instance = stoppable.instance()
        future = instance.start()
        recorder.wait_for_status(future, "ready")
        instance.stop()
        first_pid, value = future.result(timeout=10)
        assert value == "stopped cleanly"
        next_pid, should_stop = flag_at_start.instance().start().result(timeout=30)
    assert next_pid == first_pid  # it returned normally, so its worker was kept warm
    assert should_stop is False


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_stopping_a_finished_or_never_started_instance_does_nothing() -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session():
        early = double.instance()
        early.stop()  # never started: nothing to stop, and nothing sticks
        assert early.status == "pending" and early.future is None
        assert early.start(4).result(timeout=30) == 8
        finished = double.instance()
        future = finished.start(21)
        assert future.result(timeout=30) == 42
        finished.stop()
        finished.stop(timeout=0.1)
        finished.stop(timeout=0)
        assert future.cancel() is False
        assert (future.status, future.result(), future.error) == ("completed", 42, None)
    assert recorder.states_for(finished.id)[-1] == "completed"
    assert recorder.states_for(early.id)[-1] == "completed"


@pytest.mark.timeout(30)
def test_stopping_ten_at_once_from_ten_threads() -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session(max_workers=None):  # ten run at once, whatever the CPUs
        instances = [ignores_stop.instance() for _ in range(10)]
        futures = [instance.start() for instance in instances]
        for future in futures:
            recorder.wait_for_status(future, "ready")
        barrier = threading.Barrier(10)

        def stop(index: int) -> None:
            barrier.wait()
            instances[index].stop(timeout=0.2)

        threads = [threading.Thread(target=stop, args=(i,)) for i in range(10)]
        asked = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(future.wait_done(10) for future in futures)
        took = time.monotonic() - asked
    assert [future.status for future in futures] == ["cancelled"] * 10
    assert took < 2.0, took


@pytest.mark.timeout(30)
@TERMINATES
@pytest.mark.usefixtures("task_backend")
def test_stop_with_timeout_zero_terminates_at_once() -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session():
        instance = ignores_stop.instance()
        future = instance.start()
        recorder.wait_for_status(future, "ready")
        asked = time.monotonic()
        instance.stop(timeout=0)
        assert future.wait_done(10)
        assert future.status == "cancelled"
    assert time.monotonic() - asked < 1.0


@pytest.mark.parametrize(
    "bad, error", [(-1, ValueError), (float("nan"), ValueError), ("1", TypeError), (True, TypeError)]
)
def test_stop_timeout_must_be_a_sane_number(bad: object, error: type) -> None:
    with Session():
        instance = double.instance()
        future = instance.start(1)
        with pytest.raises(error, match="timeout"):
            instance.stop(timeout=bad)  # type: ignore[arg-type]
        assert future.result(timeout=30) == 2


@pytest.mark.timeout(30)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_task_timeout_stops_softly_then_fails_saying_so() -> None:
    with Session():
        future = cooperative.instance(timeout=0.3).start()
        with pytest.raises(TaskTimeoutError, match=r"timed out after 0.3 s; it stopped when asked") as caught:
            future.result(timeout=20)
        assert future.status == "failed"
        assert caught.value.terminated is False


@pytest.mark.timeout(30)
@TERMINATES
@pytest.mark.usefixtures("task_backend")
def test_task_timeout_terminates_a_task_that_ignores_it() -> None:
    with Session(stop_grace=0.1):
        future = ignores_stop.instance(timeout=0.2).start()
        with pytest.raises(TaskTimeoutError, match="ignored the stop request and was terminated") as caught:
            future.result(timeout=20)
    assert caught.value.timeout == 0.2 and caught.value.terminated
