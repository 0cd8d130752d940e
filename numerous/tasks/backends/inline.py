"""The inline backend: each instance in a thread of the calling process.

Meant for tests (``NUMEROUS_TASK_BACKEND=inline`` or ``Session(backend="inline")``):
no process is spawned, so a test starts in microseconds and a debugger or coverage sees
the task's code. Futures, handler calls, ``max_parallel`` queueing, timeouts and stop
requests behave as on the local backend, with one difference that threads impose:

**Stopping is cooperative only.** A thread cannot be killed. A task that ignores
``tc.should_stop`` past the grace period has its future end as on the local backend
(``cancelled``, or :class:`~numerous.tasks.TaskTimeoutError` after a timeout), its slot
is freed and nothing it reports afterwards reaches the handler, but its thread is left
running: renamed ``numerous-inline-abandoned-<id>`` and logged as a warning on the
``numerous.tasks`` logger, so a leak check (the pytest plugin's ``task_session``) fails.

Arguments and results still cross a pickle boundary by default, the way they would
between processes, so a test catches what the local backend would refuse:

    caller thread             runner thread numerous-inline-<id>     supervisor thread
    -------------             ----------------------------------     -----------------
    start(): cloudpickle
      task + args (TypeError
      names the culprit)
    launch: "running" ──────▶ unpickle task + args
                              run the task: tc.log / progress ──▶ handler (this thread)
    stop() ─ job.stop_requested ─▶ tc.should_stop                     grace deadline:
                              pickle + unpickle result or error       still running? future
                              resolve the future, free the slot       ends, thread abandoned

``NUMEROUS_INLINE_PICKLE=0`` (or ``InlineBackend(pickle=False)``) passes arguments,
results and exceptions by reference instead: a test can then hand a task a
``threading.Event`` or a mock.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
import traceback
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

from .._callbacks import call_user_code, serve_from_this_thread
from ..control import TaskControl, TaskControlHandler, deliver_progress, deliver_status, get_task_control_handler
from ..exceptions import TaskFailedError, TaskTimeoutError
from .base import Job
from .execution import DirectExecution

__all__ = ["PICKLE_ENV", "InlineBackend"]

logger = logging.getLogger("numerous.tasks")

#: ``0`` passes arguments, results and exceptions by reference instead of through pickle.
PICKLE_ENV = "NUMEROUS_INLINE_PICKLE"
_FALSE = {"0", "false", "no", "off"}
_TRUE = {"", "1", "true", "yes", "on"}
#: Seconds ``shutdown`` waits for a finished instance's thread to end: it has resolved
#: its future already and only returns from its done callbacks, so this is a bound on a
#: callback that hangs, never a normal wait.
JOIN_LIMIT = 5.0
_INF = float("inf")
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def pickle_enabled(value: Optional[bool] = None) -> bool:
    """Whether calls round-trip through pickle: ``value``, else ``$NUMEROUS_INLINE_PICKLE``.

    Raises:
        ValueError: the variable holds something other than 0/1, true/false, yes/no, on/off.
    """
    if value is not None:
        return bool(value)
    text = os.environ.get(PICKLE_ENV, "").strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{PICKLE_ENV}={text!r}: use 1 (round-trip through pickle, the default) or 0")


class _InlineSink:
    """What a task's TaskControl calls, in its runner thread: straight to the handler,
    guarded like the local backend's dispatcher, and silent once the instance ended."""

    __slots__ = ("_run_ref", "_stop_requested", "process_id")

    def __init__(self, run: _Run) -> None:
        # Weakly: the run holds this sink; while the task runs, its thread holds the run.
        self._run_ref = weakref.ref(run)
        self._stop_requested = False
        self.process_id: Optional[int] = os.getpid()

    def should_stop(self) -> bool:
        """Whether the instance was asked to stop (or is over), or asked itself to."""
        run = self._run_ref()
        return run is None or run.job.stop_requested or self._stop_requested

    def request_stop(self) -> None:
        """The task asked itself to stop (``tc.request_stop()``): raise its own flag."""
        self._stop_requested = True

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        """Hand the record to the handler (extras round-trip through pickle when on)."""
        run = self._run_ref()
        if extra and run is not None and run.pickle:
            extra = _round_trip_extras(extra)
        self._call("log", _deliver_log, message, level, **extra)

    def update_progress(self, progress: float, status: Optional[str]) -> None:
        """Hand the progress to the handler."""
        self._call("update_progress", deliver_progress, progress, status)

    def update_status(self, status: str) -> None:
        """Hand the status to the handler."""
        self._call("update_status", deliver_status, status)

    def _call(self, method: str, deliver: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """``deliver(handler, control, ...)``: the handler's ``method`` gets the call."""
        run = self._run_ref()
        if run is None or run.finished:  # ended (or abandoned): it reports no more
            return
        try:
            deliver(get_task_control_handler(), run.job.control, *args, **kwargs)
        except BaseException:  # a handler's bug (SystemExit too) must not fail the task,
            logger.exception("the task control handler's %s() raised", method)  # as on the local backend


def _deliver_log(handler: TaskControlHandler, control: TaskControl, message: str, level: str, **extra: Any) -> None:
    handler.log(control, message, level, **extra)


def _round_trip_extras(extra: Dict[str, Any]) -> Dict[str, Any]:
    try:
        return pickle.loads(pickle.dumps(extra, protocol=pickle.HIGHEST_PROTOCOL))  # type: ignore[no-any-return]
    except Exception:  # the local backend sends what cannot be pickled as its repr
        return {key: repr(value) for key, value in extra.items()}


class _Run:
    """One instance on the inline backend: its thread, its deadlines, its one ending."""

    def __init__(self, job: Job, pickle_calls: bool, owner: object) -> None:
        self.job = job
        self.owner = owner
        self.pickle = pickle_calls
        self.lock = threading.Lock()
        self.finished = False  # set once, by whoever ends the future first
        self.abandoned = False
        self.timed_out = False
        self.timeout_deadline = _INF  # monotonic: stop request when passed
        self.stop_deadline = _INF  # monotonic: give up on the thread when passed
        self.sink = _InlineSink(self)
        self.thread = threading.Thread(target=self._main, name=f"numerous-inline-{job.instance_id}", daemon=True)

    # -- stopping (any thread) -----------------------------------------------------------
    def request_stop(self, grace: float) -> None:
        """Raise the stop flag; give up on the thread after ``grace`` seconds."""
        self.job.stop_requested = True
        self.job.times.mark_stop_requested()
        self.stop_deadline = min(self.stop_deadline, time.monotonic() + max(0.0, grace))

    def next_deadline(self) -> float:
        """When :meth:`escalate` next has something to do."""
        return _INF if self.finished else min(self.stop_deadline, self.timeout_deadline)

    def escalate(self, now: float) -> None:
        """Act on a passed deadline: the timeout asks for a stop, the grace abandons."""
        if self.finished:
            return
        if now >= self.stop_deadline:
            self.stop_deadline = _INF
            self._abandon()
        elif now >= self.timeout_deadline:
            self.timeout_deadline = _INF
            self.timed_out = True
            self.request_stop(self.job.stop_grace)

    def _abandon(self) -> None:
        job = self.job
        with self.lock:
            if self.finished:
                return
            self.finished = self.abandoned = True
        self.thread.name = f"numerous-inline-abandoned-{job.instance_id}"
        logger.warning(
            "%s ignored its stop request; the inline backend cannot terminate a thread, so "
            "its future ends now and its thread (%s) is left running",
            job.description,
            self.thread.name,
        )
        if self.timed_out:
            assert job.timeout is not None
            job.future.set_error(TaskTimeoutError(job.description, job.timeout, True))
        else:
            job.future.set_cancelled()
        job.backend_state = None  # the job no longer refers back to this run: no cycle left
        job.on_finished(job)

    # -- the runner thread -----------------------------------------------------------------
    def _main(self) -> None:
        ok, outcome = self._execute()
        # From here on this thread resolves the future and runs its done-callbacks:
        # nothing they raise may keep the slot from being freed.
        serve_from_this_thread(self.owner)
        job = self.job
        with self.lock:
            if self.finished:  # abandoned meanwhile: its outcome goes nowhere
                return
            self.finished = True
        if self.timed_out and ok:
            assert job.timeout is not None
            job.future.set_error(TaskTimeoutError(job.description, job.timeout, False))
        elif ok:
            job.future.set_result(outcome)
        else:
            job.future.set_error(outcome)
        job.backend_state = None  # the job no longer refers back to this run: no cycle left
        job.on_finished(job)

    def _execute(self) -> Tuple[bool, Any]:
        """Run the task; return (True, value) or (False, the exception result() raises)."""
        job = self.job
        if self.pickle:
            try:
                task, args, kwargs = pickle.loads(job.payload)
            except BaseException as exc:
                return False, self._error(exc, "while loading the task's arguments")
        else:
            assert job.call is not None
            task, (args, kwargs) = job.task, job.call
        job.times.running_ns = time.monotonic_ns()
        try:
            value = task.call_with_control(TaskControl(job.instance_id, task.name, sink=self.sink), args, kwargs)
        except BaseException as exc:
            return False, self._error(exc, "in the task")
        if not self.pickle:
            return True, value
        try:
            body = _dumps_result(value)
        except BaseException as exc:
            return False, self._error(exc, "while pickling the task's result")
        try:
            return True, pickle.loads(body)
        except BaseException as exc:
            reason = f"the result of {job.description} could not be unpickled"
            return False, TaskFailedError(type(exc).__name__, _safe_str(exc), "", reason)

    def _error(self, exc: BaseException, phase: str) -> BaseException:
        """The exception ``result()`` raises for ``exc``, as the local backend makes it."""
        _trim_traceback(exc)
        reason = f"{self.job.description} raised it {phase}"
        copy: Optional[BaseException] = exc
        if self.pickle:
            copy, problem = _round_trip_error(exc)
            if problem:
                reason += f"; {problem}"
        if copy is not None and phase != "in the task":
            wrapped = _failed(exc, reason)
            wrapped.__cause__ = copy
            return wrapped
        if copy is not None and not isinstance(copy, Exception):
            # SystemExit, KeyboardInterrupt, GeneratorExit: raised again in the caller,
            # they would exit or interrupt the test run. Reported instead.
            reason += "; it is reported as TaskFailedError rather than raised in the caller"
            copy = None
        return _failed(exc, reason) if copy is None else copy


def _dumps_result(value: Any) -> bytes:
    """Plain pickle when it can, cloudpickle when it must (as the worker does)."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        from .._pickling import dumps

        return dumps(value)


def _round_trip_error(exc: BaseException) -> Tuple[Optional[BaseException], str]:
    """``exc`` after pickling and unpickling (with its frames, through tblib), or None
    and what went wrong."""
    try:
        from .._pickling import dumps_exception

        body = dumps_exception(exc)
    except BaseException as problem:
        return None, f"it could not be pickled ({type(problem).__name__}: {_safe_str(problem)})"
    try:
        return pickle.loads(body), ""
    except BaseException as problem:
        return None, f"it could not be unpickled ({type(problem).__name__}: {_safe_str(problem)})"


def _failed(exc: BaseException, reason: str) -> TaskFailedError:
    try:
        formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        formatted = "<the traceback could not be formatted>\n"
    type_name = f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", "")
    return TaskFailedError(type_name, _safe_str(exc), formatted, reason)


def _trim_traceback(exc: BaseException) -> None:
    """Drop the library's own leading frames: the traceback starts in the task."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    if tb is not None:
        exc.with_traceback(tb)  # C-level; `exc.__traceback__ = tb` calls __setattr__, which a frozen dataclass refuses


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<str() of the {type(exc).__name__} failed>"


class InlineBackend(DirectExecution):
    """Runs each instance in a thread of this process (see the module docstring).

    Args:
        pickle: round-trip arguments, results and exceptions through pickle (the
            default, from ``$NUMEROUS_INLINE_PICKLE``) or pass them by reference.
    """

    def __init__(self, pickle: Optional[bool] = None) -> None:
        #: Read by the session: whether ``start()`` pickles the call into ``job.payload``
        #: (else it hands the arguments over as they are, in ``job.call``).
        self.pickles_calls = pickle_enabled(pickle)
        self._runs: List[_Run] = []
        self._changed = threading.Condition()
        self._supervisor: Optional[threading.Thread] = None
        self._closing = False

    def prepare(self, job: Job) -> None:
        """Make the instance's runner thread (not started yet)."""
        job.backend_state = _Run(job, self.pickles_calls, owner=self)
        job.sink.process_id = os.getpid()
        if job.stop_requested:  # asked to stop between leaving the queue and now
            job.backend_state.request_stop(job.stop_grace)

    def launch(self, job: Job) -> None:
        """Report the instance running and start its thread; returns at once."""
        run: _Run = job.backend_state
        if job.timeout is not None:
            run.timeout_deadline = time.monotonic() + job.timeout
        with self._changed:
            self._runs = [r for r in self._runs if r.thread.is_alive() or not r.finished]
            self._runs.append(run)
            self._ensure_supervisor()
            self._changed.notify_all()
        job.future.set_running()
        run.thread.start()

    def request_stop(self, job: Job, grace: float) -> None:
        """Raise the stop flag now; give up on the thread after ``grace`` seconds."""
        run: Optional[_Run] = job.backend_state
        if run is None:  # not prepared yet: it sees job.stop_requested when it is
            return
        with self._changed:
            run.request_stop(grace)
            self._changed.notify_all()

    def shutdown(self, wait: bool = True) -> None:
        """End the supervisor; wait for the threads of finished instances to end (and
        first for calls given to ``execute()``, or with ``wait=False`` stop them)."""
        self.end_direct_calls(wait)
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            supervisor, runs = self._supervisor, list(self._runs)
        if supervisor is not None:
            supervisor.join()
        current = threading.current_thread()
        for run in runs:
            if run.abandoned or run.thread is current or run.thread.ident is None:
                continue
            run.thread.join(JOIN_LIMIT)
            if run.thread.is_alive():
                logger.warning("%s: its thread did not end after its future resolved", run.job.description)
        with self._changed:
            self._runs = []  # each holds its job: let them go with the session

    # -- the supervisor thread: timeouts and stop deadlines ----------------------------------
    def _ensure_supervisor(self) -> None:
        """Start the supervisor (call with ``_changed`` held)."""
        if self._supervisor is None:
            self._supervisor = threading.Thread(target=self._supervise, name="numerous-inline-supervisor", daemon=True)
            self._supervisor.start()

    def _supervise(self) -> None:
        serve_from_this_thread(self)
        while True:
            with self._changed:
                if self._closing:
                    return
                deadline = min((run.next_deadline() for run in self._runs), default=_INF)
                wait = None if deadline == _INF else max(0.0, deadline - time.monotonic())
                if wait is None or wait > 0:
                    self._changed.wait(wait)
                now = time.monotonic()
                due = [run for run in self._runs if run.next_deadline() <= now]
            for run in due:  # outside the lock: ending a future calls handlers and callbacks
                call_user_code(run.escalate, now, description="numerous.tasks inline supervisor: a stop deadline")
