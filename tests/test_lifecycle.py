"""Handlers hear of every instance's state changes, in order, before result() returns."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from api_tasks import fail_custom, identity_of
from backend_tasks import wait_for_go

from numerous.tasks import Session, TaskControl, set_task_control_handler
from numerous.tasks.control import TaskControlHandler


class StateRecorder(TaskControlHandler):
    def __init__(self) -> None:
        self.states: Dict[str, List[Tuple[str, Optional[str]]]] = {}
        self.pids: Dict[str, Optional[int]] = {}
        self.lock = threading.Lock()

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        with self.lock:
            self.states.setdefault(task_control.instance_id, []).append(
                (state, type(error).__name__ if error else None)
            )
            if state == "running":
                self.pids[task_control.instance_id] = task_control.process_id


def test_states_of_completed_failed_and_cancelled_instances(tmp_path: Path) -> None:
    recorder = StateRecorder()
    set_task_control_handler(recorder)
    go = tmp_path / "go"
    with Session():
        ok = identity_of.instance()
        seen = ok.start().result()
        assert recorder.states[ok.id] == [("pending", None), ("running", None), ("completed", None)]
        bad = fail_custom.instance()
        bad.start("x").wait_done(30)
        assert recorder.states[bad.id][-1] == ("failed", "CustomError")
        blockers = [wait_for_go.instance() for _ in range(8)]
        for b in blockers:
            b.start(str(go))
        queued = wait_for_go.instance()
        queued.start(str(go))
        queued.stop()
        go.touch()
    assert recorder.states[queued.id] == [("pending", None), ("cancelled", None)]
    assert recorder.pids[ok.id] == seen["pid"]  # the worker's pid, as the task saw it


def test_process_id_is_the_process_running_the_task() -> None:
    import os

    from numerous.tasks import task

    @task
    def own_pid(tc: TaskControl) -> Optional[int]:
        return tc.process_id

    assert own_pid() == os.getpid()  # a direct call runs here
    with Session():
        worker_pid = own_pid.instance().start().result()
    assert worker_pid not in (None, os.getpid())


def test_instances_expose_monotonic_timestamps_of_their_life() -> None:
    import time

    from backend_tasks import cooperative

    recorder = StateRecorder()
    set_task_control_handler(recorder)
    before = time.monotonic_ns()
    with Session():
        instance = cooperative.instance()
        assert instance.times.started_ns is None
        future = instance.start()
        while instance.times.running_ns is None:  # set when the worker says it started
            future.wait_done(0.005)
        instance.stop()
        future.result(timeout=30)
    times = instance.times
    assert before <= times.started_ns <= times.running_ns <= times.stop_requested_ns <= times.finished_ns
    assert times.finished_ns <= time.monotonic_ns()
