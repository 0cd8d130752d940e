"""Tasks and a recording handler used by the tests (module level: workers import them)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from numerous.tasks import Session, TaskControl, task
from numerous.tasks.control import TaskControlHandler

WAIT_LIMIT = 30.0  # seconds a task waits for the test before giving up


def wait_for_file(path: str, limit: float = WAIT_LIMIT) -> None:
    """Block until ``path`` exists (the test's signal to go on)."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.002)


class RecordingHandler(TaskControlHandler):
    """Records every call with the thread and process it ran on; lets tests wait."""

    def __init__(self) -> None:
        self.events: List[Tuple[str, str, Any]] = []  # (kind, instance_id, payload)
        self.threads: List[int] = []
        self.pids: List[int] = []
        self._changed = threading.Condition()

    def _record(self, kind: str, control: TaskControl, payload: Any) -> None:
        with self._changed:
            self.events.append((kind, control.instance_id, payload))
            self.threads.append(threading.get_ident())
            self.pids.append(os.getpid())
            self._changed.notify_all()

    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        self._record("log", task_control, (message, level, extra_data))

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        self._record("progress", task_control, (progress, status))

    def update_status(self, task_control: TaskControl, status: str) -> None:
        self._record("status", task_control, status)

    def wait_for(self, predicate: Callable[[Tuple[str, str, Any]], bool], timeout: float = 20.0) -> None:
        """Wait until an event satisfying ``predicate`` was recorded."""
        with self._changed:
            if not self._changed.wait_for(lambda: any(map(predicate, self.events)), timeout):
                raise AssertionError(f"no matching event within {timeout} s: {self.events[-5:]}")

    def wait_for_status(self, status: str, timeout: float = 20.0) -> None:
        """Wait until some instance reported ``status`` (by either update call)."""
        self.wait_for(
            lambda e: (e[0] == "status" and e[2] == status) or (e[0] == "progress" and e[2][1] == status),
            timeout,
        )

    def logs(self, instance_id: Optional[str] = None) -> List[str]:
        """Logged messages, in arrival order."""
        return [e[2][0] for e in self.events if e[0] == "log" and instance_id in (None, e[1])]


# -- plain tasks ------------------------------------------------------------------------
@task
def double(value: int) -> int:
    return value * 2


@task(max_parallel=4)
def double_many(value: int) -> int:
    return value * 2


@task(name="renamed")
def named(tc: TaskControl) -> str:
    return tc.task_definition_name


@task
def whoami(tc: TaskControl) -> Dict[str, Any]:
    return {"pid": os.getpid(), "pgid": os.getpgid(0), "cwd": os.getcwd(), "sys_path": sys.path,
            "instance_id": tc.instance_id, "name": tc.task_definition_name}


class CustomError(Exception):
    """A user-defined exception class that must come back as itself."""


def _raise_deep(message: str) -> None:
    raise CustomError(message)  # the line traceback tests look for


@task
def fails(message: str) -> None:
    _raise_deep(message)


# -- tasks that talk to the test ------------------------------------------------------
@task(max_parallel=8)
def wait_for_go(tc: TaskControl, go_file: str, value: Any = None) -> Any:
    """Report "ready", then wait for ``go_file`` (or a stop request)."""
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        if tc.should_stop:
            return "stopped"
        time.sleep(0.002)
    return value


@task
def cooperative(tc: TaskControl) -> str:
    """Runs until asked to stop, then returns."""
    tc.update_status("ready")
    while not tc.should_stop:
        time.sleep(0.002)
    return "stopped cleanly"


@task(max_parallel=16)
def stubborn(tc: TaskControl, pid_file: Optional[str] = None) -> None:
    """Ignores stop requests; optionally starts a child that also ignores SIGTERM."""
    if pid_file is not None:
        child = subprocess.Popen(
            [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"]
        )
        escaped = subprocess.Popen(["sleep", "60"], start_new_session=True)
        with open(pid_file + ".tmp", "w") as f:
            f.write(f"{child.pid} {escaped.pid}")
        os.rename(pid_file + ".tmp", pid_file)
    tc.update_status("ready")
    while True:
        time.sleep(0.01)


@task(max_parallel=3)
def record_run(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """Append "start label" and "end label" lines around waiting for ``go_file``."""
    with open(log_file, "a") as f:
        f.write(f"start {label}\n")
    tc.update_status(f"running {label}")
    wait_for_file(go_file)
    with open(log_file, "a") as f:
        f.write(f"end {label}\n")
    return label


@task
def touch(path: str) -> str:
    """Create ``path``: proves the task ran."""
    with open(path, "w") as f:
        f.write("ran")
    return path


@task
def chatty(tc: TaskControl, count: int) -> int:
    for i in range(count):
        tc.log(f"record {i}", "info", index=i)
    tc.update_progress(99.0, "almost")
    tc.update_progress(100.0, "last words")
    return count


@task
def progress_then_wait(tc: TaskControl, go_file: str) -> str:
    tc.update_progress(50.0, "halfway")
    wait_for_file(go_file)
    return "done"


@task
def bad_progress(tc: TaskControl, value: Any) -> None:
    tc.update_progress(value, "x")


@task
def clamped_progress(tc: TaskControl, value: float) -> None:
    tc.update_progress(value, f"reported {value}")


@task
def bad_level(tc: TaskControl) -> None:
    tc.log("hello", "verbose")


@task
def status_of(tc: TaskControl, text: str) -> str:
    tc.update_status(text)
    return text


# -- tasks that die or misbehave ------------------------------------------------------
@task(max_parallel=8)
def exit_hard(code: int) -> None:
    os._exit(code)


@task(max_parallel=8)
def report_pid_and_wait(tc: TaskControl, pid_file: str) -> str:
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pid_file + ".tmp", pid_file)
    for _ in range(int(WAIT_LIMIT / 0.01)):
        if tc.should_stop:
            return "stopped"
        time.sleep(0.01)
    return "not killed"


@task
def segfault() -> None:
    import ctypes

    ctypes.string_at(0)


@task
def raise_base(kind: str) -> None:
    if kind == "exit0":
        sys.exit(0)
    if kind == "exitmsg":
        sys.exit("goodbye")
    if kind == "keyboard":
        raise KeyboardInterrupt
    if kind == "recursion":
        def recurse(n: int) -> int:
            return recurse(n + 1) + 1
        recurse(0)
    if kind == "memory":
        raise MemoryError("pretend allocation failure")


class NeedsArgs(Exception):
    """Plain pickle cannot rebuild it (__init__ takes two arguments); tblib can."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")


@task
def raise_needs_args() -> None:
    raise NeedsArgs(7, "custom init")


@task
def raise_unloadable() -> None:
    """Raise an exception whose class exists only in the worker's memory."""
    import types

    module = types.ModuleType("exists_only_in_the_worker")
    exec("class WorkerOnlyError(Exception):\n    pass\n", module.__dict__)
    module.WorkerOnlyError.__module__ = module.__name__
    sys.modules[module.__name__] = module
    raise module.WorkerOnlyError("made in the worker")


class HoldsLock(Exception):
    """Cannot be pickled at all: an attribute is a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


@task
def raise_holds_lock() -> None:
    raise HoldsLock("has a lock")


@task
def unpicklable_result() -> Any:
    return threading.Lock()


@task
def forks_and_returns(hold_seconds: float) -> str:
    """Fork a grandchild that keeps the result pipe open, then return at once."""
    pid = os.fork()
    if pid == 0:
        time.sleep(hold_seconds)
        os._exit(0)
    return "returned"


@task
def big_result(size: int) -> bytes:
    return bytes(range(256)) * (size // 256)


@task
def nested_session(value: int) -> int:
    with Session(name="inside-a-task"):
        return double.instance().start(value).result()


@task
def ignore_sigint_check(tc: TaskControl, pid_file: str, go_file: str) -> str:
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(pid_file + ".tmp", pid_file)
    wait_for_file(go_file)
    return "survived"


def send_signal(pid: int, signum: int = signal.SIGKILL) -> None:
    os.kill(pid, signum)
