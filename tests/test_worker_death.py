"""A worker that dies, or a task whose outcome cannot travel, fails only its own future."""

from __future__ import annotations

import signal
import threading
import time
import traceback
from pathlib import Path

import pytest

from numerous.tasks import Session, TaskFailedError, WorkerDiedError

from task_helpers import (
    double_many,
    exit_hard,
    raise_base,
    raise_holds_lock,
    NeedsArgs,
    raise_needs_args,
    raise_unloadable,
    report_pid_and_wait,
    segfault,
    send_signal,
    unpicklable_result,
    wait_for_file,
    wait_for_go,
)


def test_os_exit_fails_the_future_naming_the_exit_code() -> None:
    with Session():
        future = exit_hard.instance().start(3)
        with pytest.raises(WorkerDiedError, match="exited with code 3") as caught:
            future.result(timeout=30)
    assert caught.value.returncode == 3 and caught.value.signal_name is None
    assert future.status == "failed"


@pytest.mark.timeout(30)
def test_a_killed_worker_fails_within_a_second_and_siblings_finish(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    with Session():
        siblings = [double_many.instance().start(i) for i in range(3)]
        victim = report_pid_and_wait.instance().start(str(pid_file))
        wait_for_file(str(pid_file))
        send_signal(int(pid_file.read_text()), signal.SIGKILL)
        killed_at = time.monotonic()
        with pytest.raises(WorkerDiedError, match="killed by SIGKILL"):
            victim.result(timeout=10)
        assert time.monotonic() - killed_at < 1.0
        assert [f.result(timeout=30) for f in siblings] == [0, 2, 4]
        assert double_many.instance().start(5).result() == 10  # the session still works


def test_a_segfault_names_the_signal() -> None:
    with Session():
        future = segfault.instance().start()
        with pytest.raises(WorkerDiedError, match="SIGSEGV"):
            future.result(timeout=30)


@pytest.mark.parametrize(
    "kind, type_name, message",
    [
        ("exit0", "SystemExit", "0"),
        ("exitmsg", "SystemExit", "goodbye"),
        ("keyboard", "KeyboardInterrupt", ""),
    ],
)
def test_exits_and_interrupts_in_a_task_are_reported_not_raised(kind: str, type_name: str, message: str) -> None:
    with Session():
        future = raise_base.instance().start(kind)
        with pytest.raises(TaskFailedError) as caught:  # not SystemExit: the test goes on
            future.result(timeout=30)
    assert (caught.value.type_name, caught.value.message) == (type_name, message)
    assert "raise_base" in caught.value.formatted_traceback


def test_recursion_and_memory_errors_come_back_as_themselves() -> None:
    with Session():
        deep = raise_base.instance().start("recursion")
        memory = raise_base.instance().start("memory")
        with pytest.raises(RecursionError) as caught:
            deep.result(timeout=30)
        with pytest.raises(MemoryError, match="pretend"):
            memory.result(timeout=30)
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert 10 < len(frames) < 200  # trimmed, but still showing the recursion
    assert any(frame.name == "recurse" for frame in frames)


def test_an_exception_with_a_custom_init_comes_back_as_itself() -> None:
    with Session():
        future = raise_needs_args.instance().start()
        with pytest.raises(NeedsArgs, match="code 7: custom init"):
            future.result(timeout=30)


def test_an_exception_that_cannot_be_unpickled_keeps_type_message_and_traceback() -> None:
    with Session():
        future = raise_unloadable.instance().start()
        with pytest.raises(TaskFailedError) as caught:
            future.result(timeout=30)
    error = caught.value
    assert error.type_name == "exists_only_in_the_worker.WorkerOnlyError"
    assert error.message == "made in the worker"
    assert "raise_unloadable" in error.formatted_traceback
    assert "could not be unpickled in the parent" in str(error)
    assert "ModuleNotFoundError" in str(error)


def test_an_exception_that_cannot_be_pickled_keeps_type_message_and_traceback() -> None:
    with Session():
        future = raise_holds_lock.instance().start()
        with pytest.raises(TaskFailedError, match="has a lock") as caught:
            future.result(timeout=30)
    assert caught.value.type_name == "task_helpers.HoldsLock"
    assert "could not be pickled in the worker" in str(caught.value)
    assert "raise HoldsLock" in caught.value.formatted_traceback


def test_an_unpicklable_argument_is_refused_by_start_naming_it() -> None:
    with Session():
        instance = wait_for_go.instance()
        with pytest.raises(TypeError, match=r"positional argument 1 \(<unlocked _thread.lock"):
            instance.start("/nonexistent", threading.Lock())
        assert instance.future is None  # nothing was queued or launched


def test_an_unpicklable_result_fails_the_future_saying_so() -> None:
    with Session():
        future = unpicklable_result.instance().start()
        with pytest.raises(TaskFailedError, match="while pickling the task's result"):
            future.result(timeout=30)
