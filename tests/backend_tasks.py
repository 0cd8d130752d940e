"""Tasks and helpers for the local backend's process-behaviour tests.

Module level, so workers import them by reference (tests/ is on the workers' sys.path).
Tasks that talk to the test do it through files whose paths the test passes (written
atomically: write a temporary name, then rename) or through status updates that a
RecordingTaskControlHandler (numerous.tasks.testing) sees in the parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, Tuple

import psutil

from numerous.tasks import Session, TaskControl, task

WAIT_LIMIT = 30.0  # seconds a task (or a test) waits for the other side before giving up


# -- plumbing shared by tasks and tests ------------------------------------------------
def write_atomically(path: str, text: str) -> None:
    """Write ``text`` so that a reader never sees a half-written file."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def wait_for_file(path: str, limit: float = WAIT_LIMIT) -> str:
    """Block until ``path`` exists (bounded poll) and return its contents."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {limit} s")
        time.sleep(0.002)
    with open(path) as f:
        return f.read()


def wait_until(predicate: Callable[[], bool], limit: float) -> bool:
    """Poll ``predicate`` until it holds or ``limit`` seconds passed; its last value."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.005)
    return True


def is_dead(pid: int) -> bool:
    """True if ``pid`` no longer runs: gone, or a zombie nobody has reaped yet."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def describe_process(process: psutil.Process) -> str:
    """A process for a failure report: pid, status, parent and command line."""
    try:
        return f"{process.pid} {process.status()} parent {process.ppid()}: {' '.join(process.cmdline())[:200]}"
    except psutil.Error as error:
        return f"{process.pid} ({type(error).__name__})"


# -- tasks that wait, return, or ignore a stop ---------------------------------------------
@task(max_parallel=1)
def one_at_a_time(tc: TaskControl, go_file: str, marker: str) -> str:
    """Leaves ``marker`` (proof it ran), reports "ready", waits for ``go_file`` or a stop."""
    write_atomically(marker, str(os.getpid()))
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        if tc.should_stop:
            return "stopped"
        time.sleep(0.002)
    return "went"


@task(max_parallel=8)
def wait_for_go(tc: TaskControl, go_file: str, value: Any = None) -> Any:
    """Reports "ready", then returns ``value`` once ``go_file`` exists ("stopped" if asked to)."""
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        if tc.should_stop:
            return "stopped"
        time.sleep(0.002)
    return value


@task
def cooperative(tc: TaskControl) -> str:
    """Works until asked to stop, then returns a value."""
    tc.update_status("ready")
    while not tc.should_stop:
        time.sleep(0.002)
    return "stopped cleanly"


@task
def stoppable(tc: TaskControl) -> Tuple[int, str]:
    """Like ``cooperative``, and says which process it ran in."""
    tc.update_status("ready")
    while not tc.should_stop:
        time.sleep(0.002)
    return os.getpid(), "stopped cleanly"


@task
def flag_at_start(tc: TaskControl) -> Tuple[int, bool]:
    return os.getpid(), tc.should_stop


@task(max_parallel=4)
def deaf_to_sigterm(tc: TaskControl, ready_file: str, how: str) -> None:
    """Cannot react to SIGTERM: ignores it, or sits in one long C call holding the GIL
    (a Python signal handler runs only between bytecodes)."""
    if how == "ignore":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        write_atomically(ready_file, str(os.getpid()))
        while True:
            time.sleep(0.01)
    write_atomically(ready_file, str(os.getpid()))
    sum(range(10**15))  # hours of C code without a bytecode boundary


@task(max_parallel=8)
def exits_on_sigterm(tc: TaskControl) -> str:
    """Ignores stop requests; its own SIGTERM handler ends it with ``sys.exit(0)``."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
    tc.update_status("ready")
    while True:
        time.sleep(0.005)


@task(max_parallel=16)
def ignores_stop(tc: TaskControl) -> None:
    """Never looks at should_stop."""
    tc.update_status("ready")
    while True:
        time.sleep(0.01)


_PYTHON_IGNORING_TERM = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"


@task(max_parallel=4)
def ignores_stop_with_children(tc: TaskControl, pid_file: str) -> None:
    """Starts three children, writes "worker child..." pids, ignores stop requests.

    The children: a plain ``sleep``, a Python process that ignores SIGTERM, and a
    ``sleep`` in a session of its own (it has left the worker's process group).
    """
    children = [
        subprocess.Popen(["sleep", "60"]),
        subprocess.Popen([sys.executable, "-c", _PYTHON_IGNORING_TERM]),
        subprocess.Popen(["sleep", "60"], start_new_session=True),
    ]
    write_atomically(pid_file, " ".join(str(pid) for pid in [os.getpid()] + [c.pid for c in children]))
    while True:
        time.sleep(0.01)


@task(max_parallel=4)
def double(value: int) -> int:
    return value * 2


# -- tasks that die or whose outcome cannot travel -------------------------------------------
@task(max_parallel=8)
def exit_hard(code: int) -> None:
    os._exit(code)


@task(max_parallel=8)
def report_pid_and_wait(tc: TaskControl, pid_file: str) -> str:
    """Writes its pid, then waits (for a kill, or a stop)."""
    write_atomically(pid_file, str(os.getpid()))
    deadline = time.monotonic() + WAIT_LIMIT
    while time.monotonic() < deadline:
        if tc.should_stop:
            return "stopped"
        time.sleep(0.005)
    return "not killed"


@task(max_parallel=8)
def segfault() -> None:
    import ctypes

    ctypes.string_at(0)


@task(max_parallel=8)
def die(kind: str, pid_file: str) -> None:
    """Dies the way ``kind`` says: exit code 3 or a segfault by itself; for "sigkill" and
    "sigterm" it starts a ``sleep`` child, writes "worker child" pids and waits for the
    test to send that signal."""
    if kind == "exit3":
        os._exit(3)
    if kind == "segfault":
        import ctypes

        ctypes.string_at(0)
    child = subprocess.Popen(["sleep", "60"])
    write_atomically(pid_file, f"{os.getpid()} {child.pid}")
    time.sleep(WAIT_LIMIT)  # the test kills us


@task(max_parallel=8)
def raise_base(kind: str) -> None:
    if kind == "exit0":
        sys.exit(0)
    if kind == "exit-message":
        sys.exit("goodbye from the task")
    if kind == "exit3":
        sys.exit(3)
    if kind == "keyboard":
        raise KeyboardInterrupt("pressed in the task")
    if kind == "recursion":

        def recurse(n: int) -> int:
            return recurse(n + 1) + 1

        recurse(0)
    if kind == "memory":
        raise MemoryError("pretend allocation failure")
    raise ValueError(kind)


class NeedsArgs(Exception):
    """Plain pickle cannot rebuild it (``__init__`` wants two arguments, ``args`` holds one)."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")
        self.code = code


class BrokenReduce(Exception):
    """Pickles fine in the worker, but rebuilding it in the parent calls ``__init__``
    with one argument where it needs two: the round trip cannot work."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(f"code {code}: {detail}")

    def __reduce__(self) -> Any:
        return (type(self), self.args)


def _raise_needs_args() -> None:
    raise NeedsArgs(7, "custom init")  # the line the traceback must show


def _raise_broken_reduce() -> None:
    raise BrokenReduce(8, "cannot be rebuilt")  # the line the traceback must show


@task
def raise_custom(kind: str) -> None:
    if kind == "needs-args":
        _raise_needs_args()
    _raise_broken_reduce()


class HoldsLock(Exception):
    """Cannot be pickled at all: an attribute is a lock."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


@task
def raise_holds_lock() -> None:
    raise HoldsLock("has a lock")


@task
def raise_unloadable() -> None:
    """Raise an exception whose class exists only in the worker's memory."""
    import types

    module = types.ModuleType("exists_only_in_the_worker")
    exec("class WorkerOnlyError(Exception):\n    pass\n", module.__dict__)
    module.WorkerOnlyError.__module__ = module.__name__
    sys.modules[module.__name__] = module
    raise module.WorkerOnlyError("made in the worker")


@task
def returns_lock() -> Any:
    return {"fine": 1, "lock": threading.Lock()}


@task(max_parallel=1)
def takes_anything(value: Any, flag: Any = None) -> str:
    return type(value).__name__


@task(max_parallel=4)
def apply(function: Callable[[Any], Any], value: Any) -> Any:
    return function(value)


# -- pitfalls ----------------------------------------------------------------------------------
@task
def forks_and_returns(hold_seconds: float) -> int:
    """Forks a grandchild that keeps every inherited descriptor open, then returns."""
    pid = os.fork()
    if pid == 0:
        time.sleep(hold_seconds)
        os._exit(0)
    return pid


@task
def big_result(size: int) -> Tuple[bytes, str]:
    """Random bytes and their digest, so the parent can tell they arrived intact."""
    import hashlib

    data = os.urandom(size)
    return data, hashlib.sha256(data).hexdigest()


@task(max_parallel=4)
def sigint_survivor(tc: TaskControl, pid_file: str, go_file: str) -> Dict[str, Any]:
    """Reports its pid and group, waits for ``go_file`` (the test sends SIGINT first)."""
    write_atomically(pid_file, str(os.getpid()))
    wait_for_file(go_file)
    time.sleep(0.05)  # let a SIGINT still in flight land before we return
    # Our own subprocess must not inherit an ignored SIGINT.
    child = subprocess.run(
        [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {"survived": True, "child_default_sigint": child.stdout.strip() == "True"}


@task
def nested_session(value: int) -> Tuple[int, int, int]:
    """Opens a Session inside the worker and runs an instance there."""
    with Session(name="inside-a-task"):
        inner_pid = whoami.instance().start().result(timeout=WAIT_LIMIT)["pid"]
        doubled = double.instance().start(value).result(timeout=WAIT_LIMIT)
    return os.getpid(), inner_pid, doubled


@task(max_parallel=4)
def whoami() -> Dict[str, Any]:
    return {
        "pid": os.getpid(),
        "pgid": os.getpgid(0),
        "sid": os.getsid(0),
        "cwd": os.getcwd(),
        "sys_path": list(sys.path),
    }


# -- tasks that fork, or leave daemons ------------------------------------------------------
@task(max_parallel=4)
def forks_and_terminates_its_child(how: str) -> Any:
    """Forks and SIGTERMs its own child: through a fork-context ``multiprocessing.Pool``
    (whose exit terminates its workers), a bare ``os.fork``, or a fork whose child
    returns from the task as if it were the worker."""
    if how == "pool":
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(2) as pool:
            return sum(pool.map(abs, range(-10, 0)))
    child = os.fork()
    if child == 0:
        if how == "child returns":
            return "the child's value, which nobody may report"
        time.sleep(WAIT_LIMIT)
        os._exit(0)
    if how != "child returns":
        os.kill(child, signal.SIGTERM)
    _, status = os.waitpid(child, 0)
    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


@task
def logs_around_a_fork(tc: TaskControl, child_lines: int) -> int:
    """Logs before and after forking a child that logs ``child_lines`` records of its
    own (in a tight loop, as a batch would carry them), then returns the child's exit code."""
    tc.log("before the fork")
    child = os.fork()
    if child == 0:
        for i in range(child_lines):
            tc.log(f"from the child {i}")
        os._exit(0)
    _, status = os.waitpid(child, 0)
    tc.log("after the fork")
    return os.waitstatus_to_exitcode(status)


_DAEMON = """
import os, signal, sys, time
if os.fork():
    os._exit(0)  # the first child exits: the daemon is orphaned
os.setsid()
if os.fork():
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""


@task(max_parallel=4)
def starts_a_daemon(tc: TaskControl, pid_file: str, then: str) -> str:
    """Double-forks a daemon (own session, deaf to SIGTERM and SIGHUP) that writes its pid
    to ``pid_file``; then returns, or waits to be stopped (``then`` = "return"/"wait")."""
    subprocess.run([sys.executable, "-c", _DAEMON, pid_file], check=True)
    wait_for_file(pid_file)
    tc.update_status("ready")
    while then == "wait":
        time.sleep(0.005)  # deaf to stop requests too: it is terminated
    return "returned"
