"""Warm workers: reused only when clean, never after a crash, never across sessions."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil
import pytest
from reuse_tasks import (
    changes_cwd,
    changes_sys_path,
    exits_via_systemexit,
    fails_plainly,
    keeps_its_control,
    leaves_a_child,
    leaves_a_thread,
    never_returns,
    pid_in_fresh_process,
    pid_of_worker,
    records_its_run,
    reports_cwd,
    reports_progress_then_waits,
    reports_sys_path,
    uses_a_kept_control,
)

from numerous.tasks import Session, TaskFailedError, TaskTimeoutError, set_task_control_handler
from numerous.tasks.testing import RecordingTaskControlHandler


def test_a_clean_worker_runs_the_next_instance() -> None:
    with Session():
        first = pid_of_worker.instance().start().result()
        second = pid_of_worker.instance().start().result()
    assert first == second != os.getpid()
    assert not psutil.pid_exists(first)  # it ended with the session


def test_fresh_process_tasks_never_share_a_process() -> None:
    with Session():
        pids = [pid_in_fresh_process.instance().start().result() for _ in range(3)]
        reused = pid_of_worker.instance().start().result()
        fresh = pid_of_worker.instance(fresh_process=True).start().result()
    assert len(set(pids)) == 3
    assert reused not in pids and fresh != reused


def test_a_worker_left_with_a_thread_or_a_child_is_not_reused() -> None:
    with Session():
        for leaver in (leaves_a_thread, leaves_a_child):
            pid = leaver.instance().start().result()
            assert pid_of_worker.instance().start().result() != pid


@pytest.mark.timeout(60)
def test_what_is_started_right_after_a_task_left_a_child_runs_once_elsewhere(tmp_path: Path) -> None:
    # The worker says it is idle with the outcome and only then looks for a child left
    # behind: the next start() may hand it a job, which it never starts as it exits.
    runs = tmp_path / "runs"
    with Session(max_workers=1):
        for round_ in range(5):
            leaver = leaves_a_child.instance()
            leaver_pid = leaver.start().result(timeout=30)
            pid = records_its_run.instance().start(str(runs), round_).result(timeout=30)
            assert pid != leaver_pid
    lines = runs.read_text().split()
    assert lines[::2] == [str(n) for n in range(5)]  # each ran, once, in order


def test_a_worker_is_reused_after_a_plain_exception_but_not_after_systemexit() -> None:
    with Session():
        failing = fails_plainly.instance()
        with pytest.raises(ValueError):
            failing.start().result()
        after_error = pid_of_worker.instance().start().result()
        assert after_error == failing.job.sink.process_id
        exiting = exits_via_systemexit.instance()
        with pytest.raises(TaskFailedError):
            exiting.start().result()
        assert pid_of_worker.instance().start().result() != exiting.job.sink.process_id


@pytest.mark.timeout(60)
def test_a_task_control_kept_past_its_instance_fails_cleanly_and_touches_nothing_of_the_next() -> None:
    recorder = RecordingTaskControlHandler()
    previous = set_task_control_handler(recorder)
    try:
        with Session():
            pid = keeps_its_control.instance().start().result(timeout=30)
            next_instance = uses_a_kept_control.instance()
            same_pid, outcomes, stop_requested = next_instance.start().result(timeout=30)
    finally:
        set_task_control_handler(previous)
    assert same_pid == pid  # the same warm worker, where the old control lives on
    # Its control block and the worker's channel serve the next instance now: reading
    # the stop flag, progress, status and a log record are each refused, by name.
    assert outcomes == ["InstanceEndedError"] * 4
    assert stop_requested is False
    progress = [(e.progress, e.status) for e in recorder.events if e.kind == "progress"]
    assert progress and all(status != "from the last instance" for _, status in progress)
    assert not [e for e in recorder.events if e.kind == "log" and "from the last instance" in str(e.message)]
    assert next_instance.task_control.progress == 10.0


def test_each_instance_starts_in_the_parents_cwd_whatever_the_last_one_did(tmp_path: Path) -> None:
    with Session():
        pid, cwd = changes_cwd.instance().start(str(tmp_path)).result()
        assert cwd == str(tmp_path)
        assert reports_cwd.instance().start().result() == (pid, os.getcwd())  # same worker


def test_each_instance_starts_with_the_parents_sys_path_whatever_the_last_one_did(tmp_path: Path) -> None:
    with Session():
        pid, changed = changes_sys_path.instance().start(str(tmp_path)).result(timeout=30)
        assert changed[0] == str(tmp_path)
        assert reports_sys_path.instance().start().result(timeout=30) == (pid, sys.path)  # same worker


def test_sessions_do_not_share_workers() -> None:
    with Session():
        first = pid_of_worker.instance().start().result()
    with Session():
        second = pid_of_worker.instance().start().result()
    assert first != second


# A warm launch does not wake the dispatcher when its loop looks at running instances
# anyway; these make sure one launched while the loop sleeps with nothing to watch is
# still watched: its timeout enforced and its progress delivered.
@pytest.mark.timeout(60)
def test_a_timeout_is_enforced_on_a_warm_worker_the_dispatcher_was_not_watching() -> None:
    with Session(stop_grace=0.2):
        warm = pid_of_worker.instance().start().result(timeout=30)  # then nothing runs
        instance = never_returns.instance(timeout=0.3)
        with pytest.raises(TaskTimeoutError):
            instance.start().result(timeout=30)
        assert instance.job.sink.process_id == warm


@pytest.mark.timeout(60)
def test_progress_reaches_the_handler_from_a_warm_worker_the_dispatcher_was_not_watching(tmp_path: Path) -> None:
    recorder = RecordingTaskControlHandler()
    previous = set_task_control_handler(recorder)
    try:
        with Session():
            warm = pid_of_worker.instance().start().result(timeout=30)  # then nothing runs
            go = tmp_path / "go"
            future = reports_progress_then_waits.instance().start(str(go))
            recorder.wait_for(future, lambda event: event.kind == "progress" and event.progress == 42.0, timeout=10)
            go.touch()
            assert future.result(timeout=30) == warm
    finally:
        set_task_control_handler(previous)
