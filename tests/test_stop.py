"""Stopping: cooperative first, then terminate the whole process tree; timeouts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List

import psutil
import pytest

from numerous.tasks import Session, TaskCancelledError, TaskTimeoutError, set_task_control_handler

from task_helpers import RecordingHandler, cooperative, stubborn, touch, wait_for_file, wait_for_go


def test_stop_of_a_pending_instance_cancels_it(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session():
        running = [wait_for_go.instance().start(str(go)) for _ in range(8)]
        handler.wait_for(lambda e: sum(1 for x in handler.events if x[2] == "ready") == 8)
        queued = wait_for_go.instance()
        future = queued.start(str(go))
        assert future.status == "pending"
        queued.stop()
        assert future.status == "cancelled"
        go.touch()
        for f in running:
            f.result()
    with pytest.raises(TaskCancelledError):
        future.result()
    assert queued.id not in {e[1] for e in handler.events}


def test_a_cooperative_task_returns_its_value_when_stopped() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        instance = cooperative.instance()
        future = instance.start()
        handler.wait_for_status("ready")
        instance.stop()
        assert future.result(timeout=30) == "stopped cleanly"
        assert future.status == "completed"


@pytest.mark.timeout(30)
def test_a_task_ignoring_stop_is_terminated_with_its_whole_tree(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    with Session():
        instance = stubborn.instance()
        future = instance.start(str(pid_file))
        wait_for_file(str(pid_file))
        child, escaped = (int(p) for p in pid_file.read_text().split())
        started = time.monotonic()
        instance.stop(timeout=0.2)
        with pytest.raises(TaskCancelledError):
            future.result(timeout=20)
        elapsed = time.monotonic() - started
        assert future.status == "cancelled"
    assert elapsed < 2.0
    # Both the child that ignores SIGTERM and the one in its own session are gone,
    # and reaped: not left as zombies (pid 1 here never reaps).
    for pid in (child, escaped):
        assert not psutil.pid_exists(pid), psutil.Process(pid).as_dict(["status", "ppid"])


def test_stop_is_idempotent_and_harmless_after_the_end() -> None:
    with Session():
        instance = touch.instance()
        instance.stop()  # not started: nothing to do
        future = instance.start("/dev/null")
        future.result()
        instance.stop()
        instance.stop(timeout=0)
        assert future.status == "completed"


@pytest.mark.timeout(30)
def test_many_stops_at_once() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session(stop_grace=0.2):
        instances = [stubborn.instance() for _ in range(10)]
        futures = [i.start() for i in instances]
        handler.wait_for(lambda e: sum(1 for x in handler.events if x[2] == "ready") == 10)
        for instance in instances:
            instance.stop()
        statuses: List[str] = [f.wait_done(20) and f.status for f in futures]  # type: ignore[misc]
    assert statuses == ["cancelled"] * 10


def test_stop_timeout_must_be_a_sane_number() -> None:
    with Session():
        instance = touch.instance()
        instance.start("/dev/null").result()
        with pytest.raises(ValueError, match="timeout"):
            instance.stop(timeout=-1)


@pytest.mark.timeout(30)
def test_task_timeout_stops_softly_then_fails_saying_so() -> None:
    with Session():
        future = cooperative.instance(timeout=0.3).start()
        with pytest.raises(TaskTimeoutError, match=r"timed out after 0.3 s; it stopped when asked"):
            future.result(timeout=20)
        assert future.status == "failed"


@pytest.mark.timeout(30)
def test_task_timeout_terminates_a_task_that_ignores_it() -> None:
    with Session(stop_grace=0.1):
        future = stubborn.instance(timeout=0.2).start()
        with pytest.raises(TaskTimeoutError, match="ignored the stop request and was terminated") as caught:
            future.result(timeout=20)
    assert caught.value.timeout == 0.2 and caught.value.terminated
