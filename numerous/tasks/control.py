"""TaskControl — what a running task uses to report and to learn it should stop.

A task asks for a :class:`TaskControl` by declaring a parameter annotated with it (or a
first parameter named ``tc``). Where the task runs decides where its calls go:

* called directly, or seen by a handler in the parent: straight to the current
  :class:`TaskControlHandler`;
* in a worker process: progress and status into the instance's shared-memory block,
  log records down the instance's pipe, both delivered to the parent's handler by the
  backend's dispatcher thread.

Handlers always run in the process that set them. The default handler writes to the
standard ``logging`` logger ``numerous.tasks``.

A TaskControl also keeps the latest ``progress`` and ``status`` it reported (in the
worker) or that were delivered for it (the one handlers get, which is also
``instance.task_control`` in the parent); ``request_stop()`` asks its task to stop.
"""

from __future__ import annotations

import math
import numbers
import threading
import weakref
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional, Protocol, Tuple

if TYPE_CHECKING:
    import logging

    from ._map_progress import MapProgress
    from .resources import ResourceFigures

__all__ = [
    "FROM_LOGGING",
    "LOG_LEVELS",
    "RESERVED_EXTRAS",
    "LocalTaskControlHandler",
    "LoggingTaskControlHandler",
    "PoCMockRemoteTaskControlHandler",
    "TaskControl",
    "TaskControlHandler",
    "get_task_control_handler",
    "set_task_control_handler",
]

#: The levels ``tc.log`` accepts, mapped to the stdlib ``logging`` levels (the values of
#: ``logging.DEBUG`` ... ``logging.ERROR``; ``logging`` itself is imported only by the
#: default handler, to keep workers' start-up short).
LOG_LEVELS: Dict[str, int] = {"debug": 10, "info": 20, "warning": 30, "error": 40}

#: The extra that marks a record a task sent through the stdlib ``logging`` module (in a
#: worker) rather than ``tc.log``: the name of the logger it was emitted on.
FROM_LOGGING = "logger_name"
#: The other extras such a record carries, named like the ``logging.LogRecord``
#: attributes they come from: ``levelno``, ``pathname``, ``lineno`` and ``funcName``
#: always; ``exc_text`` (the formatted exception) and ``stack_info`` when the record had
#: them. Fields the task passed with ``extra=`` follow (values other than str, int,
#: float, bool and None as their ``repr()``).
LOGGING_RECORD_EXTRAS = ("levelno", "pathname", "lineno", "funcName", "exc_text", "stack_info")


def level_name(levelno: int) -> str:
    """The ``tc.log`` level for a ``logging`` level number: the highest of debug, info,
    warning and error not above it (CRITICAL is "error"; a custom 25 is "info")."""
    return "error" if levelno >= 40 else "warning" if levelno >= 30 else "info" if levelno >= 20 else "debug"


class ControlSink(Protocol):
    """Where a :class:`TaskControl` sends its calls (a backend detail, not public API)."""

    def should_stop(self) -> bool:
        """Whether a stop has been requested."""

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        """Deliver one validated log record."""

    def update_progress(self, progress: float, status: Optional[str]) -> None:
        """Deliver a validated progress (0-100) and, if not None, a status."""

    def update_status(self, status: str) -> None:
        """Deliver a status text."""

    @property
    def process_id(self) -> Optional[int]:
        """The id of the process running the task, or None before it runs."""

    def request_stop(self) -> None:
        """Make ``should_stop`` True (and, where the sink stands for an instance, stop it)."""


def check_level(level: str) -> str:
    """Return ``level`` if ``tc.log`` accepts it, else raise ValueError listing the levels."""
    if level not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(map(repr, LOG_LEVELS))}, not {level!r}")
    return level


#: Names a log extra cannot have: the handler's ``log(self, task_control, message,
#: level, **extra_data)`` takes them itself.
RESERVED_EXTRAS = frozenset({"self", "task_control", "message", "level"})


def check_extras(extra_data: Dict[str, Any]) -> None:
    """Raise TypeError if an extra is named like a parameter of the handler's ``log``."""
    clashes = sorted(RESERVED_EXTRAS.intersection(extra_data))
    if clashes:
        raise TypeError(
            f"tc.log extras cannot be named {', '.join(map(repr, clashes))}: "
            "the handler's log() takes those names itself"
        )


def check_progress(percentage: float) -> float:
    """Validate a progress percentage and clamp it into 0..100.

    Raises:
        TypeError: ``percentage`` is not a real number (strings and bools are refused;
            numpy scalars and fractions are accepted).
        ValueError: ``percentage`` is NaN or infinite.
    """
    if isinstance(percentage, bool) or not isinstance(percentage, numbers.Real):
        raise TypeError(f"progress must be a number from 0 to 100, not {type(percentage).__name__}")
    try:
        value = float(percentage)
    except OverflowError:  # an int or Fraction beyond float's range: clamped like any other
        return 100.0 if percentage > 0 else 0.0
    if not math.isfinite(value):
        raise ValueError(f"progress must be a finite number from 0 to 100, not {value!r}")
    # Out-of-range values are clamped, not refused: a task that overshoots by
    # rounding (100.00000001) must not fail at its very last step.
    return 0.0 if value < 0.0 else 100.0 if value > 100.0 else value


def check_status(status: object) -> str:
    """Return ``status`` if it is a string, else raise TypeError."""
    if not isinstance(status, str):
        raise TypeError(f"status must be a str, not {type(status).__name__}")
    return status


class TaskControl:
    """The handle a task uses to log, report progress and check for a stop request.

    Args:
        instance_id: the id of the running instance (``"direct"`` for a direct call).
        task_definition_name: the name of the task (``@task(name=...)`` or the function's).
        sink: where the calls go; supplied by the library. Without one (a TaskControl
            made by hand, e.g. to call a task's function in a test) calls go to the
            installed handler and ``should_stop`` turns True on ``request_stop()``.
    """

    __slots__ = (
        "__weakref__",
        "_attempt",
        "_instance_id",
        "_progress",
        "_retries",
        "_sink",
        "_status",
        "_task_definition_name",
    )

    def __init__(self, instance_id: str, task_definition_name: str, *, sink: Optional[ControlSink] = None) -> None:
        self._task_definition_name = task_definition_name
        self._instance_id = instance_id
        self._progress = 0.0
        self._status = ""
        self._attempt = 1
        self._retries = 0
        if sink is None:
            handler_sink = HandlerSink()
            handler_sink.bind(self)
            sink = handler_sink
        self._sink = sink

    @property
    def task_definition_name(self) -> str:
        """The task's name (``@task(name=...)``, or the decorated function's name)."""
        return self._task_definition_name

    @property
    def instance_id(self) -> str:
        """The id of this instance, unique within the process that created it."""
        return self._instance_id

    @property
    def should_stop(self) -> bool:
        """True once a stop was requested (``instance.stop()``, ``future.cancel()``)."""
        return self._sink.should_stop()

    @property
    def process_id(self) -> Optional[int]:
        """The id of the process that runs the task (None while it waits to start)."""
        return self._sink.process_id

    @property
    def attempt(self) -> int:
        """The number of this run of the instance, 1 for the first and 2 for the first
        retry (see ``@task(retries=...)``); a handler told ``"retrying"`` reads the coming one."""
        return self._attempt

    @property
    def retries(self) -> int:
        """How many retries the task allows (``@task(retries=...)``; 0 by default)."""
        return self._retries

    @property
    def progress(self) -> float:
        """The latest progress reported (0.0 before any)."""
        return self._progress

    @property
    def status(self) -> str:
        """The latest status text reported ("" before any)."""
        return self._status

    def request_stop(self) -> None:
        """Ask the task to stop: ``should_stop`` becomes True.

        On ``instance.task_control`` (the TaskControl handlers get) this is
        ``instance.stop()``; asked before ``start()``, the instance is stopped as soon as
        it starts. Inside a task it raises the task's own flag.
        """
        self._sink.request_stop()

    def log(self, message: str, level: str = "info", **extra_data: Any) -> None:
        """Send a log record to the handler.

        Args:
            message: the text; anything else is converted with ``str()``.
            level: one of ``"debug"``, ``"info"``, ``"warning"``, ``"error"``.
            **extra_data: picklable values passed on to the handler's ``log``.

        Raises:
            ValueError: ``level`` is not one of the four levels.
            TypeError: an extra is named like a parameter of the handler's ``log``.
        """
        if extra_data and not RESERVED_EXTRAS.isdisjoint(extra_data):
            check_extras(extra_data)
        self._sink.log(str(message), check_level(level), extra_data)

    def update_progress(self, percentage: float, status: Optional[str] = None) -> None:
        """Report progress (0-100; values outside are clamped) and optionally a status.

        Raises:
            TypeError: ``percentage`` is not a number, or ``status`` is not a str.
            ValueError: ``percentage`` is NaN or infinite.
        """
        if type(percentage) is not float or not 0.0 <= percentage <= 100.0:
            percentage = check_progress(percentage)
        if status is not None:
            self._status = status if type(status) is str else check_status(status)
        self._progress = percentage
        self._sink.update_progress(percentage, status)

    def update_status(self, status: str) -> None:
        """Report a status text without changing the progress."""
        self._status = check_status(status)
        self._sink.update_status(status)

    def __repr__(self) -> str:
        return f"<TaskControl task={self._task_definition_name!r} instance={self._instance_id!r}>"


class TaskControlHandler:
    """Receives what tasks report. Subclass it and override what you need.

    All methods run in the process that installed the handler (the parent). ``log``,
    ``update_progress`` and ``update_status`` run on the backend's dispatcher thread for
    instances (or, on the local backend, on a thread waiting in ``result()`` for that
    instance while it reads the instance's worker itself; never two threads at once) and
    in the calling thread for direct calls; ``instance_state_changed`` runs on the thread
    that caused the change (see there). The base class ignores everything.
    """

    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        """A task logged ``message`` at ``level`` (debug, info, warning or error)."""

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        """A task reported ``progress`` (0-100) and its current ``status``."""

    def update_status(self, task_control: TaskControl, status: str) -> None:
        """A task reported a new status text."""

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        """An instance entered ``state``: ``"pending"`` (started, waiting for a slot),
        ``"running"``, then one of ``"completed"``, ``"failed"`` (with ``error``) or
        ``"cancelled"``. A task with ``retries`` may also report ``"retrying"`` (with the
        error of the attempt that failed; ``task_control.attempt`` is the attempt to
        come, ``task_control.retries`` the task's allowance), then ``"running"`` again.

        "pending" is reported on the thread calling ``start()``, before it returns;
        "running" on the thread that hands the instance a worker (``start()``'s or the
        dispatcher's); "retrying" and final states on the dispatcher thread (or the thread
        waiting in ``result()`` that reads the instance's worker), or on the
        thread that cancels a pending (or retrying) instance. The final state is reported before ``result()``
        returns."""

    def map_changed(self, progress: MapProgress) -> None:
        """A ``task.map()`` started, moved on or ended: ``progress`` says how far it is.

        Each chunk of a map is also an instance, with calls of its own to the methods
        above; ``progress.chunks`` names the chunks that run (started and not finished),
        so a handler can show the map as one line. Called on the map's own thread
        (``numerous-map-<id>``; the first time on the thread calling ``task.map()``), in
        order: a chunk is in ``chunks`` before its instance reports ``"pending"``, and
        the final call (``progress.state`` completed, failed or cancelled) comes after
        every chunk has finished."""

    def resource_sample_interval(self) -> Optional[float]:
        """Seconds between the CPU and memory figures this handler wants of each running
        instance's process, through :meth:`resources_sampled`; None (the base class) wants
        none, and then none are read.

        Asked once per instance, in this process, when a backend hands it its process;
        a handler that passes calls on to another should also ask that one and return
        the shorter interval. Only backends whose task processes run elsewhere (Dask)
        sample and call :meth:`resources_sampled` so far; locally the process is on this
        machine (``task_control.process_id``) for the handler to read itself."""
        return None

    def resources_sampled(self, task_control: TaskControl, figures: ResourceFigures) -> None:
        """A reading of the CPU and memory of the process running an instance, taken
        where it runs (see :class:`~numerous.tasks.resources.ResourceFigures`).

        Called on the backend's dispatcher thread about every
        :meth:`resource_sample_interval` seconds while the instance runs. The first
        reading comes *before* the instance is reported ``"running"``, so a handler
        that reads processes itself knows from the start not to read this one (its
        ``process_id`` may be a pid on another machine)."""


def deliver_progress(
    handler: TaskControlHandler, task_control: TaskControl, progress: float, status: Optional[str]
) -> None:
    """Hand a task's progress to ``handler``, first recording it on ``task_control``
    (what backends call for the TaskControl of an instance running elsewhere)."""
    task_control._progress = progress
    if status is not None:
        task_control._status = status
    handler.update_progress(task_control, progress, status)


def deliver_status(handler: TaskControlHandler, task_control: TaskControl, status: str) -> None:
    """Hand a task's status to ``handler``, first recording it on ``task_control``."""
    task_control._status = status
    handler.update_status(task_control, status)


#: The shortest interval between resource figures a backend honours: ten readings a
#: second per instance is already more than a person can read, and each crosses the
#: network on a cluster.
MIN_RESOURCE_INTERVAL = 0.1


def wanted_resource_interval(handler: TaskControlHandler) -> Optional[float]:
    """Seconds between the resource figures ``handler`` wants (at least
    :data:`MIN_RESOURCE_INTERVAL`), or None for none.

    What backends call when they hand an instance its process. A handler whose
    ``resource_sample_interval()`` raises, or returns anything but a positive number of
    seconds (or None), gets none; that is logged on the ``numerous.tasks`` logger.
    """
    try:
        interval = handler.resource_sample_interval()
        if interval is None:
            return None
        if isinstance(interval, bool) or not isinstance(interval, numbers.Real) or not 0 < interval < math.inf:
            raise ValueError(f"it returned {interval!r}, not a number of seconds > 0 or None")
    except Exception:
        import logging

        logging.getLogger("numerous.tasks").exception(
            "the task control handler's resource_sample_interval() failed: no resource figures are read"
        )
        return None
    return max(MIN_RESOURCE_INTERVAL, float(interval))


class LoggingTaskControlHandler(TaskControlHandler):
    """The default handler: records go to the standard ``logging`` module.

    ``tc.log`` records, progress and status (both at DEBUG) go to the ``numerous.tasks``
    logger. A record a task sent through ``logging`` in a worker is handled here by the
    logger of the same name (``logging.getLogger("myapp.db")`` in the task: the
    ``myapp.db`` logger here), so its levels, filters, handlers and propagation apply as
    if it had been logged in this process; it keeps its own level, source location and
    exception text, and also carries ``logger_name`` (the same name, as before).

    Every record carries ``task_name`` and ``instance_id`` as extra attributes;
    :class:`numerous.tasks.logs.TaskFormatter` fills them in for the records that lack
    them, so a format string can use them.
    """

    def __init__(self) -> None:
        import logging

        self._logging = logging
        self._logger = logging.getLogger("numerous.tasks")
        # Keys a LogRecord already has: passing them as ``extra`` makes logging raise.
        self._reserved = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
            "message",
            "asctime",
        }

    def _extra(self, task_control: TaskControl) -> Dict[str, Any]:
        return {
            "task_name": task_control.task_definition_name,
            "instance_id": task_control.instance_id,
        }

    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        """Emit ``message`` on the ``numerous.tasks`` logger at ``level``.

        A record the task sent through ``logging`` (it has a ``logger_name`` extra) keeps
        its exact level number, its source location (``pathname``, ``lineno``,
        ``funcName``) and its exception and stack text, which formatters print as usual.
        """
        extra = self._extra(task_control)
        if FROM_LOGGING in extra_data:
            self._emit_from_logging(extra, message, level, extra_data)
            return
        extra.update((k, v) for k, v in extra_data.items() if k not in self._reserved)
        self._logger.log(LOG_LEVELS[level], message, extra=extra)

    def _emit_from_logging(
        self, identity: Dict[str, Any], message: str, level: str, extra_data: Dict[str, Any]
    ) -> None:
        levelno = extra_data.get("levelno")
        if isinstance(levelno, bool) or not isinstance(levelno, int):
            levelno = LOG_LEVELS[level]
        logger = self._same_logger(extra_data[FROM_LOGGING])
        if not logger.isEnabledFor(levelno):
            return
        fields = {k: v for k, v in extra_data.items() if k not in self._reserved}
        fields.update(identity)  # the task's name and id win over the record's own fields
        lineno = extra_data.get("lineno")
        record = logger.makeRecord(
            logger.name,
            levelno,
            str(extra_data.get("pathname") or "(worker)"),
            lineno if isinstance(lineno, int) else 0,
            message,
            (),
            None,
            func=extra_data.get("funcName"),
            extra=fields,
            sinfo=extra_data.get("stack_info") or None,
        )
        record.exc_text = extra_data.get("exc_text") or None
        logger.handle(record)

    def _same_logger(self, name: object) -> logging.Logger:
        """This process's logger named like the worker's (``numerous.tasks`` for a name
        that is not one)."""
        if not isinstance(name, str) or not name:
            return self._logger
        return self._logging.getLogger(name)  # "root" is the root logger (3.9+)

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        """Log the progress at DEBUG."""
        self._logger.debug("%.1f%% %s", progress, status or "", extra=self._extra(task_control))

    def update_status(self, task_control: TaskControl, status: str) -> None:
        """Log the status at DEBUG."""
        self._logger.debug("%s", status, extra=self._extra(task_control))

    def map_changed(self, progress: MapProgress) -> None:
        """Log how far a map is at DEBUG (its id as the ``instance_id``)."""
        if self._logger.isEnabledFor(self._logging.DEBUG):
            extra = {"task_name": progress.task_name, "instance_id": progress.map_id}
            self._logger.debug("map %s: %s", progress.state, progress.describe(), extra=extra)


#: numerous-sdk's name for the default handler.
LocalTaskControlHandler = LoggingTaskControlHandler


class PoCMockRemoteTaskControlHandler(TaskControlHandler):
    """Prints every call on stdout, one line each (numerous-sdk's stand-in for a remote
    handler; a quick way to watch tasks without configuring logging)::

        [count/3f2a9c0d81be] LOG INFO: started
        [count/3f2a9c0d81be] PROGRESS 50.00% half way
        [count/3f2a9c0d81be] STATUS writing
    """

    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        """Print the record, with its extras if it has any."""
        extras = f" {extra_data}" if extra_data else ""
        self._print(task_control, f"LOG {level.upper()}: {message}{extras}")

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        """Print the progress and the status."""
        self._print(task_control, f"PROGRESS {progress:.2f}% {status or ''}".rstrip())

    def update_status(self, task_control: TaskControl, status: str) -> None:
        """Print the status."""
        self._print(task_control, f"STATUS {status}")

    @staticmethod
    def _print(task_control: TaskControl, text: str) -> None:
        print(f"[{task_control.task_definition_name}/{task_control.instance_id}] {text}", flush=True)


_handler_lock = threading.Lock()
_handler: Optional[TaskControlHandler] = None  # None: the default, made on first use


def set_task_control_handler(handler: Optional[TaskControlHandler]) -> TaskControlHandler:
    """Install ``handler`` for this process and return the one it replaces.

    ``None`` restores the default :class:`~numerous.tasks.control.LoggingTaskControlHandler`.

    Raises:
        TypeError: ``handler`` is not a :class:`TaskControlHandler`.
    """
    global _handler
    if handler is None:
        handler = LoggingTaskControlHandler()
    if not isinstance(handler, TaskControlHandler):
        raise TypeError(f"handler must be a TaskControlHandler instance, not {type(handler).__name__}")
    get_task_control_handler()  # the default exists from here on, so previous is set
    with _handler_lock:
        previous, _handler = _handler, handler
    assert previous is not None
    return previous


def get_task_control_handler() -> TaskControlHandler:
    """The handler currently installed in this process."""
    global _handler
    handler = _handler
    if handler is None:
        with _handler_lock:
            if _handler is None:
                _handler = LoggingTaskControlHandler()
            handler = _handler
    return handler


class HandlerSink:
    """A sink that hands every call straight to the installed handler.

    Used for direct calls (``should_stop`` False until ``request_stop()``) and, with a
    ``stop_flag`` and a ``stopper`` callable, for the parent-side view of an instance.
    """

    __slots__ = ("_control_ref", "_stop_requested", "process_id", "stop_flag", "stopper")

    def __init__(
        self,
        stop_flag: Optional[StopFlag] = None,
        process_id: Optional[int] = None,
        stopper: Optional[Callable[[], object]] = None,
    ) -> None:
        self._control_ref: Optional[weakref.ReferenceType[TaskControl]] = None
        self._stop_requested = False
        #: Whether the instance was asked to stop (read by ``should_stop``).
        self.stop_flag = stop_flag
        #: What ``request_stop()`` calls; None: it only raises this sink's own flag.
        self.stopper = stopper
        self.process_id = process_id

    def bind(self, control: TaskControl) -> None:
        """Remember the TaskControl that handlers should be given (weakly: the control
        holds this sink, and calls reach the sink only through it)."""
        self._control_ref = weakref.ref(control)

    @property
    def _control(self) -> TaskControl:
        control = self._control_ref() if self._control_ref is not None else None
        assert control is not None, "the sink is used only through its TaskControl"
        return control

    def should_stop(self) -> bool:
        """Whether the bound instance (or this control) was asked to stop."""
        return self._stop_requested or (self.stop_flag is not None and self.stop_flag())

    @property
    def stop_requested_here(self) -> bool:
        """Whether ``request_stop()`` was called while no ``stopper`` was set."""
        return self._stop_requested

    def request_stop(self) -> None:
        """Call the ``stopper``, or raise this sink's own flag when there is none."""
        stopper = self.stopper
        if stopper is not None:
            stopper()
        else:
            self._stop_requested = True

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        """Call the handler's ``log``."""
        get_task_control_handler().log(self._control, message, level, **extra)

    def update_progress(self, progress: float, status: Optional[str]) -> None:
        """Call the handler's ``update_progress``."""
        get_task_control_handler().update_progress(self._control, progress, status)

    def update_status(self, status: str) -> None:
        """Call the handler's ``update_status``."""
        get_task_control_handler().update_status(self._control, status)


class StopFlag(Protocol):
    """A callable that says whether a stop was requested."""

    def __call__(self) -> bool:
        """True once a stop was requested."""


def handler_task_control(
    task_definition_name: str,
    instance_id: str,
    stop_flag: Optional[StopFlag] = None,
    process_id: Optional[int] = None,
) -> Tuple[TaskControl, HandlerSink]:
    """Build a TaskControl whose calls go straight to the installed handler."""
    sink = HandlerSink(stop_flag, process_id)
    control = TaskControl(instance_id, task_definition_name, sink=sink)
    sink.bind(control)
    return control, sink
