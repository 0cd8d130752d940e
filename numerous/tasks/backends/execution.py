"""``ExecutionBackend`` — numerous-sdk's backend interface, on both sides of our own.

Our backends run a session's jobs (``prepare``/``launch``/``request_stop``, see
:mod:`.base`). numerous-sdk's ran a callable and resolved a future it was given:
``execute(target_callable, future, args, kwargs)``. Both meet here::

    your code ── backend.execute(fn, LocalFuture(), args, kwargs) ──▶ DirectExecution
                 (the same jobs a session makes: a process per call on "local")

    Session ─── prepare/launch/request_stop ──▶ ExecutionBackendDriver
                 ── execute(run, future, args, kwargs) ──▶ a backend written for numerous-sdk
                 ── cancel_task_instance(id) on stop()

* :class:`ExecutionBackend` is the abstract interface, as numerous-sdk defined it.
* :class:`DirectExecution` gives our backends ``execute()`` and ``cancel_task_instance()``
  (``LocalExecutionBackend`` is the local process backend with it).
* :class:`ExecutionBackendDriver` lets a session run its instances on a backend that has
  only numerous-sdk's interface (registered with ``register_backend`` or found through
  the ``numerous.tasks.backends`` entry point group, see :mod:`.registry`).
"""

from __future__ import annotations

import abc
import collections
import logging
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, Optional, Tuple

from .base import Job

if TYPE_CHECKING:
    from ..control import TaskControl
    from ..future import Future

__all__ = ["DirectExecution", "ExecutionBackend", "ExecutionBackendDriver", "check_max_workers"]

logger = logging.getLogger("numerous.tasks")


class ExecutionBackend(abc.ABC):
    """numerous-sdk's interface of a backend: run a callable, resolve its future.

    Subclass it to write a backend for ``register_backend``: a session then hands it
    each instance it starts (see :class:`ExecutionBackendDriver`).
    """

    @abc.abstractmethod
    def execute(
        self, target_callable: Callable[..., Any], future: Future[Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> None:
        """Run ``target_callable(*args, **kwargs)`` and resolve ``future`` with what it
        returns or raises (``future.set_running()``, then ``set_result(value)`` or
        ``set_exception(error)``); return without waiting for it."""

    @abc.abstractmethod
    def cancel_task_instance(self, instance_id: str, session_id: Optional[str] = None) -> bool:
        """Ask the instance ``instance_id`` to stop; True if this backend knows it."""

    def startup(self) -> None:  # noqa: B027 -- optional hooks: doing nothing is right
        """Called once, when the backend is made for use (by ``get_backend`` or a session)."""

    def shutdown(self) -> None:  # noqa: B027
        """Called when the backend is no longer needed: release what it holds."""


def check_max_workers(max_workers: Optional[int]) -> Optional[int]:
    """Return ``max_workers`` if it is None or an int ≥ 1, else raise naming it."""
    if max_workers is None:
        return None
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be an int or None, not {type(max_workers).__name__}")
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, not {max_workers}")
    return max_workers


class _DirectCalls:
    """The calls one backend was given through ``execute()``: running and waiting."""

    def __init__(self, max_workers: Optional[int]) -> None:
        self.max_workers = max_workers
        self.lock = threading.Lock()
        self.jobs: Dict[str, Job] = {}  # every unfinished one, by instance id
        self.waiting: Deque[Job] = collections.deque()
        self.running = 0


_direct_lock = threading.Lock()  # makes each backend's _DirectCalls once


class DirectExecution(ExecutionBackend):
    """``execute()`` and ``cancel_task_instance()`` for one of our backends.

    Each call becomes the same kind of job a session starts: on the local backend, the
    callable runs in a worker process, gets a TaskControl if it declares one (its calls
    go to the installed handler), and ``future.cancel()`` or
    ``cancel_task_instance(id)`` stops it like ``instance.stop()``. ``max_workers``
    (set by the backend's ``__init__``) bounds how many run at once; the others wait,
    first in first out. The instance id is the future's ``instance_id``.
    """

    _max_workers: Optional[int] = None
    _direct: Optional[_DirectCalls] = None

    if TYPE_CHECKING:  # what the backend it is mixed into has (see .base.Backend)

        def prepare(self, job: Job) -> None: ...

        def launch(self, job: Job) -> None: ...

        def request_stop(self, job: Job, grace: float) -> None: ...

    def _direct_calls(self) -> _DirectCalls:
        with _direct_lock:
            if self._direct is None:
                self._direct = _DirectCalls(self._max_workers)
            return self._direct

    def execute(
        self, target_callable: Callable[..., Any], future: Future[Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> None:
        """Run ``target_callable(*args, **kwargs)`` on this backend; resolve ``future``.

        Raises:
            TypeError: ``future`` is not a :class:`~numerous.tasks.Future` (make one with
                ``LocalFuture()``), the arguments do not fit, or one cannot be pickled.
        """
        from ..future import Future

        if not isinstance(future, Future):
            raise TypeError(f"future must be a numerous.tasks Future (LocalFuture()), not {type(future).__name__}")
        job = self._direct_job(target_callable, future, tuple(args), dict(kwargs))
        calls = self._direct_calls()
        with calls.lock:
            calls.jobs[job.instance_id] = job
            launch = calls.max_workers is None or calls.running < calls.max_workers
            if launch:
                calls.running += 1
            else:
                calls.waiting.append(job)
        if launch:
            self._launch_direct(job)

    def _direct_job(
        self, target_callable: Callable[..., Any], future: Future[Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Job:
        from .._ids import random_hex
        from .._pickling import dumps_call
        from ..control import handler_task_control
        from ..task import Task

        task = target_callable if isinstance(target_callable, Task) else Task(target_callable)
        task.check_arguments(args, kwargs)
        raw_call = not getattr(self, "pickles_calls", True)
        payload = b"" if raw_call else dumps_call(task, args, kwargs)
        instance_id = future.instance_id or random_hex(6)
        job_ref: weakref.ReferenceType[Job]
        control, sink = handler_task_control(task.name, instance_id, stop_flag=lambda: _stop_asked(job_ref))
        job = Job(
            instance_id,
            task.name,
            payload,
            future,
            self._direct_finished,
            control,
            sink,
            task=task,
            call=(args, kwargs) if raw_call else None,
        )
        job_ref = weakref.ref(job)
        job.times.started_ns = time.monotonic_ns()
        sink.stopper = lambda: self.cancel_task_instance(instance_id)
        future.attach(_DirectCanceller(self, job), instance_id)
        return job

    def _launch_direct(self, job: Job) -> None:
        try:
            self.prepare(job)
        except Exception as error:  # e.g. no room for a control block: this call fails
            job.future.set_error(error)
            self._direct_finished(job)
            return
        self.launch(job)

    def _direct_finished(self, job: Job) -> None:
        """A call ended (the backend resolved its future): launch the next one waiting."""
        calls = self._direct_calls()
        with calls.lock:
            calls.jobs.pop(job.instance_id, None)
            following = calls.waiting.popleft() if calls.waiting else None
            if following is None:
                calls.running -= 1
        if following is not None:
            self._launch_direct(following)

    def cancel_task_instance(self, instance_id: str, session_id: Optional[str] = None) -> bool:
        """Stop the call ``instance_id`` was given to ``execute()``, like ``instance.stop()``
        (one still waiting is cancelled and never runs); False if there is none."""
        calls = self._direct_calls()
        with calls.lock:
            job = calls.jobs.get(instance_id)
        if job is None:
            return False
        self._stop_direct(job, job.stop_grace)
        return True

    def _stop_direct(self, job: Job, grace: float) -> bool:
        """Cancel a waiting call (True) or ask a running one to stop (False)."""
        calls = self._direct_calls()
        with calls.lock:
            waiting = job in calls.waiting
            if waiting:
                calls.waiting.remove(job)
                calls.jobs.pop(job.instance_id, None)
        if waiting:
            job.future.set_cancelled()
            return True
        if not job.future.done:
            job.times.mark_stop_requested()
            job.stop_requested = True
            self.request_stop(job, grace)
        return False

    def end_direct_calls(self, wait: bool) -> None:
        """For ``shutdown(wait)``: wait for every call given to ``execute()`` to finish;
        with ``wait=False`` first cancel those waiting and stop those running at once."""
        calls = self._direct
        if calls is None:
            return
        with calls.lock:
            jobs = sorted(calls.jobs.values(), key=lambda job: job not in calls.waiting)
        if not wait:
            for job in jobs:
                self._stop_direct(job, 0.0)
        for job in jobs:
            job.future.wait_done()


class _DirectCanceller:
    """What ``future.cancel()`` asks, for a future given to ``execute()``."""

    def __init__(self, backend: DirectExecution, job: Job) -> None:
        self.backend = backend
        self.job = job

    def request_cancel(self) -> bool:
        return self.backend._stop_direct(self.job, self.job.stop_grace)


def _stop_asked(job_ref: weakref.ReferenceType[Job]) -> bool:
    job = job_ref()
    return job is not None and job.stop_requested


class _Call:
    """What a foreign backend's ``execute()`` is given: ``run`` is the callable, and, as
    numerous-sdk's ``TaskInstance._task_runner`` was, a bound method whose ``__self__``
    has the instance's ``id``, ``task_control`` and ``task_definition_name``."""

    def __init__(self, job: Job) -> None:
        self.id = job.instance_id
        assert job.task is not None
        self.task_definition_name = job.task_name
        self.task_control: TaskControl = job.control
        self._task = job.task

    def run(self, *args: Any, **kwargs: Any) -> Any:
        """Call the task's function, with the TaskControl if it declares one."""
        return self._task.call_with_control(self.task_control, args, kwargs)


class ExecutionBackendDriver:
    """Runs a session's instances on an :class:`ExecutionBackend` that has only
    numerous-sdk's interface.

    Each instance is one ``execute(run, future, args, kwargs)`` with the arguments as
    given (nothing is pickled on the way: the backend decides how to carry them). The
    TaskControl is the instance's own, so the handler gets its calls wherever ``run``
    runs in this process, and ``should_stop`` turns True on ``stop()``, which also calls
    ``cancel_task_instance(id)``. Stopping is cooperative only: this side cannot
    terminate what the backend runs.

    Args:
        backend: the backend to drive.
        owned: whether the session made it (it is then started and shut down with the
            session) or borrows a shared, registered instance.
    """

    pickles_calls = False

    def __init__(self, backend: ExecutionBackend, owned: bool) -> None:
        self.backend = backend
        self.owned = owned

    def prepare(self, job: Job) -> None:
        """Nothing to allocate: the backend takes the call as it is."""

    def launch(self, job: Job) -> None:
        """Hand the call to ``backend.execute``; a failure there fails the instance."""
        job.future.add_done_callback(lambda _: job.on_finished(job))
        assert job.call is not None  # pickles_calls is False
        args, kwargs = job.call
        try:
            self.backend.execute(_Call(job).run, job.future, args, kwargs)
        except Exception as error:  # start() has returned (or will): the future tells it
            job.future.set_error(error)

    def request_stop(self, job: Job, grace: float) -> None:
        """Tell the backend (``should_stop`` is already True); ``grace`` cannot apply."""
        try:
            self.backend.cancel_task_instance(job.instance_id, None)
        except Exception:
            logger.exception("cancel_task_instance of %r raised", self.backend)

    def shutdown(self) -> None:
        """Shut the backend down if the session made it."""
        if self.owned:
            self.backend.shutdown()
