"""A task control handler that records what tasks report, for assertions in tests.

    recorder = RecordingTaskControlHandler()
    previous = set_task_control_handler(recorder)
    ...
    future = count.instance().start(3)
    future.result()
    assert recorder.states_for(future) == ["pending", "running", "completed"]
    assert recorder.logs_for(future) == ["done"]

Every ``tc.log`` record is recorded, in order, on every backend. Progress and status
may be coalesced by a backend (the local one samples them every 50 ms; the latest value
wins and the last one before an instance ends is always delivered), so assert on the
last value (``progress_for(f)[-1]``) or on membership rather than on every step.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Union

from ..control import TaskControl, TaskControlHandler

if TYPE_CHECKING:
    from .._map_progress import MapProgress
    from ..resources import ResourceFigures

__all__ = ["RecordingTaskControlHandler", "Target", "TaskEvent", "instance_id_of"]

#: Seconds ``wait_for`` waits by default: a bound on a failure, never a normal wait.
DEFAULT_WAIT = 30.0

#: What the ``*_for`` methods accept: a Future, a TaskInstance, a TaskControl, a Task
#: (all its instances), or an instance id.
Target = Any


@dataclass(frozen=True)
class TaskEvent:
    """One handler call, as recorded.

    ``kind`` is ``"log"`` (``message``, ``level``, ``extra``), ``"progress"``
    (``progress`` and ``status``), ``"status"`` (``status``) or ``"state"`` (``state``,
    and ``error`` for ``"failed"``).
    """

    kind: str
    instance_id: str
    task_name: str
    message: Optional[str] = None
    level: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)
    progress: Optional[float] = None
    status: Optional[str] = None
    state: Optional[str] = None
    error: Optional[BaseException] = None
    time: float = 0.0  # time.monotonic() when the handler was called
    thread: str = ""  # the name of the thread the handler was called on


def instance_id_of(target: Union[str, Any]) -> str:
    """The instance id of a Future, TaskInstance, TaskControl, or an id itself.

    Raises:
        TypeError: ``target`` is none of these (or a Future that was not made by
            ``TaskInstance.start()``).
    """
    if isinstance(target, str):
        return target
    if isinstance(target, TaskControl):
        return target.instance_id
    from ..future import Future
    from ..task import TaskInstance

    if isinstance(target, TaskInstance):
        return target.id
    if isinstance(target, Future) and target.instance_id:
        return target.instance_id
    raise TypeError(f"expected a Future, TaskInstance, TaskControl or instance id, not {type(target).__name__}")


class RecordingTaskControlHandler(TaskControlHandler):
    """Records every handler call per instance; passes each on to ``forward_to``.

    Args:
        forward_to: a handler that also gets every call (the pytest fixture passes the
            one it replaced, so records still reach the ``numerous.tasks`` logger and
            pytest's captured log); None records only.
    """

    def __init__(self, forward_to: Optional[TaskControlHandler] = None) -> None:
        self.forward_to = forward_to
        self._events: List[TaskEvent] = []
        self._map_reports: List[MapProgress] = []
        self._changed = threading.Condition()

    # -- the handler ----------------------------------------------------------------------
    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        """Record a log record."""
        self._record(TaskEvent("log", *_who(task_control), message=message, level=level, extra=dict(extra_data)))
        if self.forward_to is not None:
            self.forward_to.log(task_control, message, level, **extra_data)

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        """Record a progress update."""
        self._record(TaskEvent("progress", *_who(task_control), progress=progress, status=status))
        if self.forward_to is not None:
            self.forward_to.update_progress(task_control, progress, status)

    def update_status(self, task_control: TaskControl, status: str) -> None:
        """Record a status update."""
        self._record(TaskEvent("status", *_who(task_control), status=status))
        if self.forward_to is not None:
            self.forward_to.update_status(task_control, status)

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        """Record a state change."""
        self._record(TaskEvent("state", *_who(task_control), state=state, error=error))
        if self.forward_to is not None:
            self.forward_to.instance_state_changed(task_control, state, error)

    def resource_sample_interval(self) -> Optional[float]:
        """What ``forward_to`` wants (figures are passed on, not recorded)."""
        return None if self.forward_to is None else self.forward_to.resource_sample_interval()

    def resources_sampled(self, task_control: TaskControl, figures: ResourceFigures) -> None:
        """Pass the figures on to ``forward_to``."""
        if self.forward_to is not None:
            self.forward_to.resources_sampled(task_control, figures)

    def map_changed(self, progress: MapProgress) -> None:
        """Record a map's report (its chunks are instances: their calls are recorded too)."""
        with self._changed:
            self._map_reports.append(progress)
            self._changed.notify_all()
        if self.forward_to is not None:
            self.forward_to.map_changed(progress)

    def map_reports(self, target: Any = None) -> List[MapProgress]:
        """The reports of every map, or of one (a ``TaskMap`` or its id), in order; the
        last one of a finished map says how it ended (``state``, ``done``, ``failed``)."""
        map_id = getattr(target, "id", target)
        with self._changed:
            return [p for p in self._map_reports if map_id in (None, p.map_id)]

    def _record(self, event: TaskEvent) -> None:
        event = _stamped(event)
        with self._changed:
            self._events.append(event)
            self._changed.notify_all()

    # -- reading ----------------------------------------------------------------------------
    @property
    def events(self) -> List[TaskEvent]:
        """Every recorded event, in the order the handler was called."""
        with self._changed:
            return list(self._events)

    def events_for(self, target: Target, kind: Optional[str] = None) -> List[TaskEvent]:
        """The events of one instance (or of every instance of a Task), optionally of one kind."""
        match = _matcher(target)
        return [e for e in self.events if match(e) and kind in (None, e.kind)]

    def logs_for(self, target: Target, level: Optional[str] = None) -> List[str]:
        """The messages ``tc.log`` sent, in order (only those of ``level`` if given)."""
        return [e.message or "" for e in self.events_for(target, "log") if level in (None, e.level)]

    def progress_for(self, target: Target) -> List[float]:
        """The progress values delivered, in order (a backend may coalesce steps)."""
        return [e.progress for e in self.events_for(target, "progress") if e.progress is not None]

    def statuses_for(self, target: Target) -> List[str]:
        """The status texts delivered (by ``update_status`` or with a progress), in order,
        consecutive repeats collapsed."""
        statuses: List[str] = []
        for event in self.events_for(target):
            fresh = event.status is not None and (not statuses or statuses[-1] != event.status)
            if event.kind in ("status", "progress") and fresh:
                statuses.append(event.status)  # type: ignore[arg-type]
        return statuses

    def states_for(self, target: Target) -> List[str]:
        """The states the instance went through, e.g. ``["pending", "running", "completed"]``."""
        return [e.state or "" for e in self.events_for(target, "state")]

    def assert_logged(self, target: Target, message: str, level: Optional[str] = None) -> None:
        """Raise AssertionError, listing what was logged, unless ``message`` was."""
        logged = [(e.level, e.message) for e in self.events_for(target, "log")]
        if not any(m == message and level in (None, lvl) for lvl, m in logged):
            wanted = message if level is None else f"{message} (at {level})"
            raise AssertionError(f"{wanted!r} was not logged by {_name(target)}; logged: {logged}")

    def wait_for(
        self,
        target: Target,
        condition: Callable[[TaskEvent], bool] = lambda event: True,
        timeout: float = DEFAULT_WAIT,
    ) -> TaskEvent:
        """Wait until an event of ``target`` satisfies ``condition``; return that event.

        Events recorded before the call count too, so there is no race with a task
        that reports before the test starts waiting.

        Raises:
            AssertionError: none did within ``timeout`` seconds (the events so far are listed).
        """
        match = _matcher(target)
        with self._changed:
            found: List[TaskEvent] = []

            def ready() -> bool:
                found[:] = [e for e in self._events if match(e) and condition(e)][:1]
                return bool(found)

            if not self._changed.wait_for(ready, timeout):
                seen = [e for e in self._events if match(e)]
                raise AssertionError(f"no matching event from {_name(target)} within {timeout} s; events: {seen}")
            return found[0]

    def wait_for_status(self, target: Target, status: str, timeout: float = DEFAULT_WAIT) -> TaskEvent:
        """Wait until ``target`` reported ``status`` (by update_status or with a progress)."""
        return self.wait_for(target, lambda e: e.kind in ("status", "progress") and e.status == status, timeout)

    def wait_for_log(self, target: Target, message: str, timeout: float = DEFAULT_WAIT) -> TaskEvent:
        """Wait until ``target`` logged ``message``."""
        return self.wait_for(target, lambda e: e.kind == "log" and e.message == message, timeout)

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._changed:
            self._events.clear()
            self._map_reports.clear()


def _who(control: TaskControl) -> tuple[str, str]:
    return control.instance_id, control.task_definition_name


def _stamped(event: TaskEvent) -> TaskEvent:
    import dataclasses

    return dataclasses.replace(event, time=time.monotonic(), thread=threading.current_thread().name)


def _matcher(target: Target) -> Callable[[TaskEvent], bool]:
    from ..task import Task

    if isinstance(target, Task):
        name = target.name
        return lambda event: event.task_name == name
    instance_id = instance_id_of(target)
    return lambda event: event.instance_id == instance_id


def _name(target: Target) -> str:
    from ..task import Task

    if isinstance(target, Task):
        return f"task {target.name!r}"
    return f"instance {instance_id_of(target)}"
