"""Tasks, a recording handler and small helpers for the public-API behaviour tests
(test_task_definition, test_session, test_future, test_control).

Tasks live at module level so that workers import them by reference. Tasks that must
wait for the test wait for a file whose path the test passes in (bounded by
``WAIT_LIMIT``), and report that they are running through the task control handler.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from numerous.tasks import TaskControl, task
from numerous.tasks.control import TaskControlHandler

#: Seconds a task or a test waits for the other side before giving up (a failure,
#: never a normal path: each wait ends as soon as its signal arrives).
WAIT_LIMIT = 20.0
_POLL = 0.002


def wait_for_file(path: str, limit: float = WAIT_LIMIT) -> bool:
    """Poll until ``path`` exists; False if it did not within ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL)
    return True


def write_file(path: str, text: str = "") -> None:
    """Create ``path`` atomically with ``text`` (readers never see half of it)."""
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


def append_line(path: str, line: str) -> None:
    """Append one line with a single O_APPEND write (atomic between processes)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


class Event(tuple):
    """One handler call: (kind, instance_id, task_name, payload)."""

    kind = property(lambda self: self[0])
    instance_id = property(lambda self: self[1])
    task_name = property(lambda self: self[2])
    payload = property(lambda self: self[3])


class RecordingHandler(TaskControlHandler):
    """Records every call, with the thread and process it ran in; lets tests wait."""

    def __init__(self) -> None:
        self.events: List[Event] = []
        self.calls: List[Tuple[str, int, int]] = []  # (method, pid, thread ident)
        self._changed = threading.Condition()

    def _record(self, kind: str, control: TaskControl, payload: Any) -> None:
        with self._changed:
            self.events.append(Event((kind, control.instance_id, control.task_definition_name, payload)))
            self.calls.append((kind, os.getpid(), threading.get_ident()))
            self._changed.notify_all()

    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        self._record("log", task_control, (message, level, extra_data))

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        self._record("progress", task_control, (progress, status))

    def update_status(self, task_control: TaskControl, status: str) -> None:
        self._record("status", task_control, status)

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        self._record("state", task_control, state)

    # -- for tests ----------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[Event], bool], count: int = 1, timeout: float = WAIT_LIMIT) -> None:
        """Wait until ``count`` recorded events satisfy ``predicate``."""
        with self._changed:
            if not self._changed.wait_for(lambda: sum(map(predicate, self.events)) >= count, timeout):
                raise AssertionError(f"fewer than {count} matching events within {timeout} s: {self.events[-8:]}")

    def wait_for_status(self, status: str, instance_id: Optional[str] = None, count: int = 1) -> None:
        """Wait until ``status`` was reported (by update_status or update_progress)."""
        self.wait_for(lambda e: self.status_of(e) == status and instance_id in (None, e.instance_id), count)

    @staticmethod
    def status_of(event: Event) -> Optional[str]:
        if event.kind == "status":
            return event.payload  # type: ignore[no-any-return]
        if event.kind == "progress":
            return event.payload[1]  # type: ignore[no-any-return]
        return None

    def of(self, instance_id: str, kind: Optional[str] = None) -> List[Any]:
        """Payloads of one instance's events (of one kind), in arrival order."""
        with self._changed:
            return [e.payload for e in self.events if e.instance_id == instance_id and kind in (None, e.kind)]

    def states(self, instance_id: str) -> List[str]:
        return self.of(instance_id, "state")

    def snapshot(self) -> List[Event]:
        with self._changed:
            return list(self.events)


# -- plain tasks ------------------------------------------------------------------------
@task
def double(value: int) -> int:
    return value * 2


@task(max_parallel=4)
def double_many(value: int) -> int:
    return value * 2


@task(name="renamed-task")
def renamed(tc: TaskControl) -> str:
    return tc.task_definition_name


# -- TaskControl detection --------------------------------------------------------------
@task
def control_annotated_first(control: TaskControl, value: int) -> Tuple[bool, int]:
    return isinstance(control, TaskControl), value


@task
def control_annotated_later(value: int, other: str, control: TaskControl) -> Tuple[int, str, bool]:
    return value, other, isinstance(control, TaskControl)


@task
def control_optional(value: int, control: Optional[TaskControl] = None) -> Tuple[int, bool]:
    return value, isinstance(control, TaskControl)


@task
def control_by_name(tc, value):  # type: ignore[no-untyped-def]  # no annotations at all
    return isinstance(tc, TaskControl), value


@task
def tc_not_first(value, tc=None):  # type: ignore[no-untyped-def]  # only a FIRST `tc` is the control
    return value, tc


@task
def control_keyword_only(value: int, *, control: TaskControl) -> Tuple[int, bool]:
    return value, isinstance(control, TaskControl)


# -- errors -----------------------------------------------------------------------------
class CustomError(Exception):
    """A user-defined exception class that must come back as itself."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class FrozenError(Exception):
    """An exception whose class refuses attribute assignment (so ``exc.__traceback__ = tb``
    and pickle's way of restoring state both raise FrozenInstanceError)."""

    code: int


class ReadOnlyError(Exception):
    """Refuses every attribute assignment after construction."""

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is read-only")


@task(max_parallel=4)
def raise_blocking_assignment(kind: str) -> None:
    """Raise a FrozenError(7), or a ReadOnlyError caused by a FrozenError(1)."""
    if kind == "frozen":
        raise FrozenError(7)  # marker: the frozen raise
    try:
        raise FrozenError(1)
    except FrozenError as inner:
        raise ReadOnlyError("read-only outer") from inner


def _raise_custom(message: str, code: int) -> None:
    raise CustomError(message, code)  # marker: the raise the traceback must show


@task
def fail_custom(message: str, code: int = 7) -> None:
    _raise_custom(message, code)


@task
def fail_value_error(message: str) -> None:
    raise ValueError(message)


# -- tasks that talk to the test --------------------------------------------------------
@task(max_parallel=2)
def gated(tc: TaskControl, go_file: str, value: Any = None) -> Any:
    """Report "ready", then wait for ``go_file``; return ``value`` ("stopped" if asked to stop)."""
    tc.update_status("ready")
    deadline = time.monotonic() + WAIT_LIMIT
    while not os.path.exists(go_file):
        if tc.should_stop:
            return "stopped"
        if time.monotonic() > deadline:
            raise TimeoutError(f"{go_file} never appeared")
        time.sleep(_POLL)
    return value


@task(max_parallel=2)
def timed_run(tc: TaskControl, log_file: str, label: str, go_file: str) -> str:
    """Log "start label <ns>" / "end label <ns>" around waiting for ``go_file``."""
    append_line(log_file, f"start {label} {time.monotonic_ns()}")
    tc.update_status(f"running {label}")
    try:
        if not wait_for_file(go_file):
            raise TimeoutError(f"{go_file} never appeared")
    finally:
        append_line(log_file, f"end {label} {time.monotonic_ns()}")
    return label


@task(max_parallel=2)
def until_stopped(tc: TaskControl, ran_file: str, limit: float = WAIT_LIMIT) -> str:
    """Write ``ran_file`` (proof it ran), report "ready", loop until asked to stop
    (at most ``limit`` seconds)."""
    write_file(ran_file, tc.instance_id)
    tc.update_status("ready")
    deadline = time.monotonic() + limit
    while not tc.should_stop:
        if time.monotonic() > deadline:
            return "never asked to stop"
        time.sleep(_POLL)
    return "stopped"


@task
def gated_then_write(tc: TaskControl, go_file: str, out_file: str, value: Any) -> Any:
    """Wait for ``go_file``, then write ``out_file``; proves the task ran to its end."""
    tc.update_status("ready")
    if not wait_for_file(go_file):
        raise TimeoutError(f"{go_file} never appeared")
    write_file(out_file, repr(value))
    return value


@task
def write_and_return(path: str, value: Any) -> Any:
    """Write ``path`` (proves the task ran) and return ``value``."""
    write_file(path, repr(value))
    return value


# -- TaskControl reporting ----------------------------------------------------------------
@task
def log_at(tc: TaskControl, level: str) -> str:
    tc.log("a message", level)
    return level


@task
def progress_to(tc: TaskControl, value: Any) -> Any:
    tc.update_progress(value, f"reported {value!r}")
    return value


@task
def chatty(tc: TaskControl, count: int) -> int:
    """Log ``count`` numbered records, then report final progress right before returning."""
    for i in range(count):
        tc.log(f"record {i}", "debug" if i % 2 else "info", index=i)
    tc.update_progress(100.0, "last words")
    return count


@task
def progress_then_wait(tc: TaskControl, go_file: str) -> str:
    tc.update_progress(50.0, "halfway")
    if not wait_for_file(go_file):
        raise TimeoutError(f"{go_file} never appeared")
    return "done"


@task
def last_moment_progress(tc: TaskControl, progress: float, status: str) -> str:
    """Report progress and status as the very last thing before returning."""
    tc.update_progress(progress, status)
    return status


@task
def last_moment_status(tc: TaskControl, status: str) -> str:
    """Report a status (no progress) as the very last thing before returning."""
    tc.update_status(status)
    return status


@task
def report_everything(tc: TaskControl, go_file: str) -> int:
    """Log, report progress, wait for ``go_file`` (the test saw the progress), then
    change only the status: the handler gets each of its three methods called."""
    tc.log("logged", "warning")
    tc.update_progress(10.0, "progressing")
    if not wait_for_file(go_file):
        raise TimeoutError(f"{go_file} never appeared")
    tc.update_status("status only")
    return os.getpid()


@task
def log_extra(tc: TaskControl, extra: Dict[str, Any]) -> None:
    tc.log("with extras", "error", **extra)


@task
def identity_of(tc: TaskControl) -> Dict[str, Any]:
    return {
        "name": tc.task_definition_name,
        "instance_id": tc.instance_id,
        "should_stop": tc.should_stop,
        "pid": os.getpid(),
    }
