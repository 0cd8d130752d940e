"""A worker that dies, or a task whose outcome cannot travel, fails only its own future."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Optional

import psutil
import pytest
from backend_tasks import (
    NeedsArgs,
    die,
    double,
    exit_hard,
    is_dead,
    raise_base,
    raise_custom,
    raise_holds_lock,
    raise_unloadable,
    returns_lock,
    segfault,
    takes_anything,
    wait_for_file,
    wait_for_go,
    wait_until,
    whoami,
)

from numerous.tasks import Session, TaskFailedError, WorkerDiedError, set_task_control_handler
from numerous.tasks.backends.local._dispatcher import LocalDispatcher
from numerous.tasks.backends.local._shm import linked_blocks
from numerous.tasks.backends.local._spawn import WorkerProcess
from numerous.tasks.testing import RecordingTaskControlHandler


def test_os_exit_fails_the_future_naming_the_exit_code() -> None:
    with Session():
        future = exit_hard.instance().start(3)
        with pytest.raises(WorkerDiedError, match="exited with code 3") as caught:
            future.result(timeout=30)
    error = caught.value
    assert (error.returncode, error.signal_name) == (3, None)
    assert "'exit_hard'" in str(error) and f"pid {error.pid}" in str(error)
    assert future.status == "failed" and future.error is error


def test_a_segfault_names_the_signal() -> None:
    with Session():
        future = segfault.instance().start()
        with pytest.raises(WorkerDiedError, match="killed by SIGSEGV") as caught:
            future.result(timeout=30)
    assert caught.value.returncode == -signal.SIGSEGV and caught.value.signal_name == "SIGSEGV"


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "kind, message, signal_name",
    [
        ("exit3", "exited with code 3", None),
        ("segfault", "was killed by SIGSEGV", "SIGSEGV"),
        ("sigkill", "was killed by SIGKILL", "SIGKILL"),
        ("sigterm", "was killed by SIGTERM", "SIGTERM"),  # sent by someone else than us
    ],
)
def test_a_dying_worker_fails_only_its_own_instance(
    tmp_path: Path, kind: str, message: str, signal_name: Optional[str]
) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    go, pid_file = str(tmp_path / "go"), str(tmp_path / "pids")
    with Session(max_workers=None):  # three run at once, whatever the CPUs
        siblings = [wait_for_go.instance().start(go, n) for n in range(2)]
        for sibling in siblings:  # both run alongside the victim
            recorder.wait_for_status(sibling, "ready")
        victim = die.instance().start(kind, pid_file)
        child = None
        if kind in ("sigkill", "sigterm"):
            worker, child = (int(pid) for pid in wait_for_file(pid_file).split())
            os.kill(worker, signal.SIGKILL if kind == "sigkill" else signal.SIGTERM)
            killed_at = time.monotonic()
            assert victim.wait_done(5)
            noticed = time.monotonic() - killed_at
            assert noticed < 1.0, noticed
        with pytest.raises(WorkerDiedError, match=message) as caught:
            victim.result(timeout=30)
        assert caught.value.signal_name == signal_name
        if child is not None:  # what the task started went with it
            assert wait_until(lambda: is_dead(child), 0.5)
        assert [sibling.status for sibling in siblings] == ["running", "running"]
        Path(go).touch()
        assert [sibling.result(timeout=30) for sibling in siblings] == [0, 1]
        assert double.instance().start(5).result(timeout=30) == 10  # the session still works
    if child is not None:
        assert not psutil.pid_exists(child)  # and was reaped


@pytest.mark.timeout(30)
def test_an_idle_worker_that_died_is_not_given_the_next_instance() -> None:
    outcomes = []
    with Session():
        for n in range(5):
            idle = whoami.instance().start().result(timeout=30)["pid"]  # ends clean: kept warm
            os.kill(idle, signal.SIGKILL)  # e.g. the OOM killer picks it while it waits for work
            deadline = time.monotonic() + 1.0
            while not is_dead(idle) and time.monotonic() < deadline:
                pass  # no sleep: start as soon as it is certainly dead
            assert is_dead(idle)
            future = double.instance().start(n)  # never ran anywhere before: must not fail
            assert future.wait_done(30)
            outcomes.append((future.status, repr(future.error)))
    assert outcomes == [("completed", "None")] * 5


@pytest.mark.timeout(30)
def test_a_warm_worker_dying_between_being_taken_and_given_its_job_reruns_the_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The caller's thread takes an idle worker and writes it the job; the dispatcher
    # thread reaps a dead worker and closes its pipes. Force the worst order: the worker
    # dies and is closed after it was taken but before the job is written.
    closed = threading.Event()
    original_close, original_write_job = WorkerProcess.close, LocalDispatcher._write_job

    def close(worker: WorkerProcess) -> None:
        original_close(worker)
        closed.set()

    def write_job(dispatcher: LocalDispatcher, worker: WorkerProcess, execution: Any, slot: int) -> None:
        if threading.current_thread().name != "numerous-dispatcher":  # a warm start
            os.kill(worker.pid, signal.SIGKILL)
            assert closed.wait(10), "the dead worker was never reaped"
        original_write_job(dispatcher, worker, execution, slot)

    monkeypatch.setattr(WorkerProcess, "close", close)
    monkeypatch.setattr(LocalDispatcher, "_write_job", write_job)
    with Session():
        first = whoami.instance().start().result(timeout=30)["pid"]  # its worker is kept warm
        future = double.instance().start(21)  # taken the warm worker, which then died
        assert future.result(timeout=30) == 42  # ran on a new worker, nothing written to a closed pipe
        assert closed.is_set() and is_dead(first)


@pytest.mark.parametrize(
    "kind, type_name, message",
    [
        ("exit0", "SystemExit", "0"),
        ("exit3", "SystemExit", "3"),
        ("exit-message", "SystemExit", "goodbye from the task"),
        ("keyboard", "KeyboardInterrupt", "pressed in the task"),
    ],
)
def test_exits_and_interrupts_in_a_task_are_reported_not_raised(kind: str, type_name: str, message: str) -> None:
    with Session():
        future = raise_base.instance().start(kind)
        raised: Optional[BaseException] = None
        try:
            future.result(timeout=30)
        except BaseException as exc:
            raised = exc
        assert double.instance().start(1).result(timeout=30) == 2  # the session goes on
    assert isinstance(raised, TaskFailedError), repr(raised)
    assert (raised.type_name, raised.message) == (type_name, message)
    assert str(raised).startswith(f"{type_name}: {message}")
    assert "in raise_base" in raised.formatted_traceback
    assert future.status == "failed" and future.error is raised


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
        future = raise_custom.instance().start("needs-args")
        with pytest.raises(NeedsArgs, match="code 7: custom init") as caught:
            future.result(timeout=30)
    assert caught.value.code == 7
    assert "_raise_needs_args" in [frame.name for frame in traceback.extract_tb(caught.value.__traceback__)]


def test_an_exception_that_cannot_be_rebuilt_keeps_type_message_and_traceback() -> None:
    with Session():
        future = raise_custom.instance().start("broken-reduce")
        with pytest.raises(TaskFailedError) as caught:
            future.result(timeout=30)
    error = caught.value
    assert (error.type_name, error.message) == ("backend_tasks.BrokenReduce", "code 8: cannot be rebuilt")
    assert "in _raise_broken_reduce" in error.formatted_traceback
    assert 'raise BrokenReduce(8, "cannot be rebuilt")' in error.formatted_traceback
    assert "could not be unpickled in the parent" in str(error)
    assert "backend_tasks.BrokenReduce: code 8: cannot be rebuilt" in error.formatted_traceback


def test_an_exception_whose_class_exists_only_in_the_worker_keeps_type_message_and_traceback() -> None:
    with Session():
        future = raise_unloadable.instance().start()
        with pytest.raises(TaskFailedError) as caught:
            future.result(timeout=30)
    error = caught.value
    assert error.type_name == "exists_only_in_the_worker.WorkerOnlyError"
    assert error.message == "made in the worker"
    assert "raise_unloadable" in error.formatted_traceback
    assert "could not be unpickled in the parent" in str(error)


def test_an_exception_that_cannot_be_pickled_keeps_type_message_and_traceback() -> None:
    with Session():
        future = raise_holds_lock.instance().start()
        with pytest.raises(TaskFailedError, match="has a lock") as caught:
            future.result(timeout=30)
    assert caught.value.type_name == "backend_tasks.HoldsLock"
    assert "could not be pickled in the worker" in str(caught.value)
    assert 'raise HoldsLock("has a lock")' in caught.value.formatted_traceback


def test_an_unpicklable_argument_is_refused_by_start_naming_it() -> None:
    with Session():
        blocks = linked_blocks()
        instance = takes_anything.instance()  # max_parallel=1: a leaked slot would show
        with pytest.raises(TypeError, match=r"positional argument 0 \(<unlocked _thread\.lock") as caught:
            instance.start(threading.Lock())
        assert "takes_anything" in str(caught.value) and "pickle" in str(caught.value)
        with pytest.raises(TypeError, match=r"keyword argument 'flag' \(<unlocked _thread\.lock"):
            instance.start(1, flag=threading.Lock())
        assert instance.future is None and instance.status == "pending"
        assert linked_blocks() == blocks  # no control block made for it
        future = instance.start(1)  # the same instance, now with good arguments
        assert future.result(timeout=30) == "int"


UNPICKLABLE_GLOBALS_SCRIPT = """
import threading
from numerous.tasks import Session, task

lock = threading.Lock()


def helper():
    with lock:
        return 1


@task
def uses_lock():
    with lock:
        return 1


@task
def uses_helper():
    return helper()


@task
def has_default(guard=lock):
    return 1


with Session():
    for t in (uses_lock, uses_helper, has_default):
        try:
            t.instance().start()
        except TypeError as error:
            print(error)
"""


@pytest.mark.timeout(60)
def test_a_main_task_using_an_unpicklable_global_names_the_global_and_the_fix(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(UNPICKLABLE_GLOBALS_SCRIPT)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    direct, through_helper, default = done.stdout.splitlines()
    assert direct.startswith("the global 'lock' (<unlocked _thread.lock object at 0x")
    assert "), which task 'uses_lock' uses, cannot be pickled to send it to the worker process: " in direct
    assert "TypeError: cannot pickle '_thread.lock' object. " in direct
    fix = (
        "The task's function is sent to the worker by value (it is defined in __main__), with the globals and "
        "variables it uses: create such an object inside the task, pass what it needs as an argument, or define "
        "the task at the top level of a module the worker can import."
    )
    assert direct.endswith(fix)
    assert through_helper.startswith("the global 'lock' (<unlocked _thread.lock")
    assert "which task 'uses_helper' uses (through 'helper'), cannot be pickled" in through_helper
    assert default.startswith("the default of parameter 'guard' (<unlocked _thread.lock")
    assert "which task 'has_default' uses, cannot be pickled" in default


@pytest.mark.timeout(30)
def test_a_closure_variable_that_cannot_be_pickled_is_named() -> None:
    from numerous.tasks import task

    lock = threading.Lock()

    @task
    def closes_over() -> None:  # by value: a function made inside a function
        with lock:
            pass

    with Session():
        instance = closes_over.instance()
        with pytest.raises(TypeError, match=r"^the variable 'lock' \(<unlocked _thread\.lock") as caught:
            instance.start()
    message = str(caught.value)
    assert "which task 'closes_over' uses, cannot be pickled" in message
    assert "(it cannot be imported by its name)" in message and "create such an object inside the task" in message


def test_an_unpicklable_result_fails_the_future_saying_so() -> None:
    with Session():
        future = returns_lock.instance().start()
        with pytest.raises(TaskFailedError, match="while pickling the task's result") as caught:
            future.result(timeout=30)
        assert double.instance().start(2).result(timeout=30) == 4
    assert "cannot pickle" in caught.value.message
    assert future.status == "failed"
