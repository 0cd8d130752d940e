"""The inline backend: each instance in a thread of the calling process.

Meant for tests (``NUMEROUS_TASK_BACKEND=inline`` or ``Session(backend="inline")``):
no process is spawned, so a test starts in microseconds and a debugger or coverage sees
the task's code. Futures, handler calls, ``max_parallel`` queueing, timeouts and stop
requests behave as on the local backend, with one difference that threads impose:

**A retry** (``@task(retries=...)``) runs in a new thread, like any attempt: there is no
process to replace, so what the failed attempt left in this process stays.

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
import weakref
from typing import Any, Callable, Dict, List, Optional, Tuple

from .._callbacks import call_user_code, serve_from_this_thread
from .._lifecycle.deadlines import Step, StopLadder
from .._lifecycle.outcomes import Ending, capture_by_reference, decode
from .._lifecycle.running import capture, load_call
from ..control import TaskControl, TaskControlHandler, deliver_progress, deliver_status, get_task_control_handler
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

    __slots__ = ("_execution_ref", "_stop_requested", "process_id")

    def __init__(self, execution: InlineExecution) -> None:
        # Weakly: the execution holds this sink; while the task runs, its thread holds the execution.
        self._execution_ref = weakref.ref(execution)
        self._stop_requested = False
        self.process_id: Optional[int] = os.getpid()

    def should_stop(self) -> bool:
        """Whether the instance was asked to stop (or is over), or asked itself to."""
        execution = self._execution_ref()
        return execution is None or execution.job.stop_requested or self._stop_requested

    def request_stop(self) -> None:
        """The task asked itself to stop (``tc.request_stop()``): raise its own flag."""
        self._stop_requested = True

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        """Hand the record to the handler (extras round-trip through pickle when on)."""
        execution = self._execution_ref()
        if extra and execution is not None and execution.pickle:
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
        execution = self._execution_ref()
        if execution is None or execution.finished:  # ended (or abandoned): it reports no more
            return
        try:
            deliver(get_task_control_handler(), execution.job.control, *args, **kwargs)
        except BaseException:  # a handler's bug (SystemExit too) must not fail the task,
            logger.exception("the task control handler's %s() raised", method)  # as on the local backend


def _deliver_log(handler: TaskControlHandler, control: TaskControl, message: str, level: str, **extra: Any) -> None:
    handler.log(control, message, level, **extra)


def _round_trip_extras(extra: Dict[str, Any]) -> Dict[str, Any]:
    try:
        return pickle.loads(pickle.dumps(extra, protocol=pickle.HIGHEST_PROTOCOL))  # type: ignore[no-any-return]
    except Exception:  # the local backend sends what cannot be pickled as its repr
        return {key: repr(value) for key, value in extra.items()}


class InlineExecution:
    """One instance on the inline backend: its thread, its stop ladder, its one ending."""

    def __init__(self, job: Job, pickle_calls: bool, owner: object) -> None:
        self.job = job
        self.owner = owner
        self.pickle = pickle_calls
        self.abandoned = False
        # Terminating a thread is impossible: the ladder's terminate step abandons it.
        self.ladder = StopLadder()
        self.sink = _InlineSink(self)
        self.thread = threading.Thread(target=self._main, name=f"numerous-inline-{job.instance_id}", daemon=True)

    @property
    def finished(self) -> bool:
        """Its future is final, or its attempt is over and retried (by another execution):
        its outcome, if it comes later, goes nowhere."""
        return self.job.finished or self.job.backend_state is not self

    # -- stopping (any thread) -----------------------------------------------------------
    def request_stop(self, grace: float) -> None:
        """Raise the stop flag; give up on the thread after ``grace`` seconds."""
        self.job.stop_requested = True
        self.job.times.mark_stop_requested()
        self.ladder.request_stop(time.monotonic(), grace)

    def next_deadline(self) -> float:
        """When :meth:`escalate` next has something to do."""
        return _INF if self.finished else self.ladder.next_at()

    def escalate(self, now: float) -> None:
        """Take the ladder's step: the timeout asks for a stop, terminating abandons."""
        if self.finished:
            return
        step = self.ladder.due(now)
        if step is Step.TIMEOUT:
            self.request_stop(self.job.stop_grace)
        elif step is Step.TERMINATE:
            self._abandon()

    def _abandon(self) -> None:
        job = self.job
        name = f"numerous-inline-abandoned-{job.instance_id}"
        if not job.finish(None, timed_out=self.ladder.timed_out, terminated=True):
            return  # it returned meanwhile
        self.abandoned = True
        self.thread.name = name
        logger.warning(
            "%s ignored its stop request; the inline backend cannot terminate a thread, so "
            "its future ended and its thread (%s) is left running",
            job.description,
            name,
        )

    # -- the runner thread -----------------------------------------------------------------
    def _main(self) -> None:
        ending = self._run_body()
        # From here on this thread settles the future and runs its done-callbacks:
        # nothing they raise may keep the slot from being freed.
        serve_from_this_thread(self.owner)
        self.job.finish(ending, timed_out=self.ladder.timed_out)  # a no-op if abandoned meanwhile

    def _run_body(self) -> Ending:
        """Run the task; its ending as the local backend would make it: through pickle
        (arguments, result, exception) or, with pickling off, by reference."""
        job = self.job

        def run(call: Tuple[Any, Tuple[Any, ...], Dict[str, Any]]) -> Any:
            task, args, kwargs = call
            job.times.running_ns = time.monotonic_ns()
            control = TaskControl(job.instance_id, task.name, sink=self.sink)
            control._attempt, control._retries = job.attempt, job.control.retries
            return task.call_with_control(control, args, kwargs)

        if self.pickle:
            return decode(capture(lambda: load_call(job.payload), run), job.description)
        assert job.call is not None and job.task is not None
        call = (job.task, *job.call)
        return capture_by_reference(lambda: call, run, job.description)


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
        self._executions: List[InlineExecution] = []
        self._changed = threading.Condition()
        self._supervisor: Optional[threading.Thread] = None
        self._closing = False

    def prepare(self, job: Job) -> None:
        """Make the instance's runner thread (not started yet)."""
        job.backend_state = InlineExecution(job, self.pickles_calls, owner=self)
        job.sink.process_id = os.getpid()
        if job.stop_requested:  # asked to stop between leaving the queue and now
            job.backend_state.request_stop(job.stop_grace)

    def launch(self, job: Job) -> None:
        """Report the instance running and start its thread; returns at once."""
        execution: InlineExecution = job.backend_state
        execution.ladder.start_clock(time.monotonic(), job.timeout)
        with self._changed:
            self._executions = [e for e in self._executions if e.thread.is_alive() or not e.finished]
            self._executions.append(execution)
            self._ensure_supervisor()
            self._changed.notify_all()
        job.future.set_running()
        execution.thread.start()

    def request_stop(self, job: Job, grace: float) -> None:
        """Raise the stop flag now; give up on the thread after ``grace`` seconds."""
        execution: Optional[InlineExecution] = job.backend_state
        if execution is None:  # not prepared yet: it sees job.stop_requested when it is
            return
        with self._changed:
            execution.request_stop(grace)
            self._changed.notify_all()

    def shutdown(self, wait: bool = True) -> None:
        """End the supervisor; wait for the threads of finished instances to end (and
        first for calls given to ``execute()``, or with ``wait=False`` stop them)."""
        self.end_direct_calls(wait)
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            supervisor, executions = self._supervisor, list(self._executions)
        if supervisor is not None:
            supervisor.join()
        current = threading.current_thread()
        for execution in executions:
            if execution.abandoned or execution.thread is current or execution.thread.ident is None:
                continue
            execution.thread.join(JOIN_LIMIT)
            if execution.thread.is_alive():
                logger.warning("%s: its thread did not end after its future resolved", execution.job.description)
        with self._changed:
            self._executions = []  # each holds its job: let them go with the session

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
                deadline = min((execution.next_deadline() for execution in self._executions), default=_INF)
                wait = None if deadline == _INF else max(0.0, deadline - time.monotonic())
                if wait is None or wait > 0:
                    self._changed.wait(wait)
                now = time.monotonic()
                due = [execution for execution in self._executions if execution.next_deadline() <= now]
            for execution in due:  # outside the lock: ending a future calls handlers and callbacks
                call_user_code(execution.escalate, now, description="numerous.tasks inline supervisor: a stop deadline")
