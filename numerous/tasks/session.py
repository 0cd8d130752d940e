"""Session — the context that instances run in, and its ``max_parallel`` slots.

The current session is kept by :mod:`numerous.tasks._current` (a ``ContextVar``, with the
innermost session open in the process as the fallback for threads whose context holds
none, so threads started inside ``with Session():`` just work): a session registers
itself there when entered, and ``task.instance()`` finds it there.

Scheduling (see :mod:`numerous.tasks._slots`): per task definition, at most
``max_parallel`` instances of a session run at once, and at most ``max_workers`` across
all its tasks (default: the usable CPUs). Instances started beyond that wait as
``"pending"``, first come first served across the session, and are launched as slots
free up.
An instance whose attempt failed and is retried (``@task(retries=...)``) keeps its
slots while it waits ``retry_delay`` and runs again (see :mod:`numerous.tasks._retry_wait`).

Leaving the ``with`` block normally waits for every started instance. Leaving it by an
exception (Ctrl-C included) cancels what is pending and stops what runs: each task gets
``stop_grace`` seconds to return, then its process tree is terminated. A second Ctrl-C
while that happens terminates at once. Nothing the session started outlives it.
``async with Session():`` does the same, waiting in a thread so that the event loop keeps
running; cancelling the task that awaits that exit stops every instance, as Ctrl-C does.
:meth:`Session.close` is the same exit for a session entered without ``with``, and
:meth:`Session.unfinished` lists what it still runs.

numerous-sdk's names (``Session(name, session_id)``, ``id``, ``tasks``,
``add_task_instance`` ...) come from :class:`~numerous.tasks._session_book.SessionBook`.
"""

from __future__ import annotations

import contextvars
import os
import sys
import threading
import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Set, Tuple, Type, Union

from . import _current
from ._callbacks import refuse_to_block
from ._current import Activity
from ._ids import random_hex
from ._lifecycle.retrying import RetryPolicy
from ._options import check_timeout
from ._retry_wait import RetryWait
from ._session_book import SessionBook
from ._slots import AUTO, Slots, check_max_workers, usable_cpus
from .backends.base import Backend, Job
from .control import get_task_control_handler
from .exceptions import MaxInstancesReachedError, SessionError
from .exceptions import SessionNotFoundError as SessionNotFoundError  # numerous-sdk imported it from here
from .future import FINAL_STATES, RUNNING, Future
from .task import Task, TaskInstance

if TYPE_CHECKING:
    from .sizes import Size

__all__ = ["DEFAULT_STOP_GRACE", "Activity", "Session", "current_session", "usable_cpus"]

#: Seconds a task gets to return after a stop request before it is terminated. Long
#: enough for a loop that checks ``tc.should_stop`` every second or so to notice.
DEFAULT_STOP_GRACE = 5.0


def current_session() -> Session:
    """The session new instances join.

    Raises:
        SessionNotFoundError: no session is open.
    """
    session = _current.open_host()
    assert isinstance(session, Session)  # the only kind that enters itself there
    return session


class _InstanceLink:
    """What a started instance's future and TaskControl call back into its session
    through: the future's canceller and state listener, the control's stop flag and
    stopper — one object, holding its session and job weakly (the job holds the control,
    the session the job: strong references back would be cycles, freed only by a full
    garbage collection)."""

    __slots__ = ("_job", "_session")

    def __init__(self, session: Session, job: Job) -> None:
        self._session = weakref.ref(session)
        self._job = weakref.ref(job)

    def request_cancel(self) -> bool:
        """``future.cancel()``, and ``instance.task_control.request_stop()``: cancel the
        instance if pending (True), else stop it."""
        session, job = self._session(), self._job()
        return session is not None and job is not None and session._stop_job(job, None)

    def stop_requested(self) -> bool:
        """Whether the job (if it still exists) was asked to stop."""
        job = self._job()
        return job is not None and job.stop_requested

    def __call__(self, state: str, error: Optional[BaseException]) -> None:
        """The future's state listener: tell the task control handler."""
        job = self._job()
        if job is None:
            return
        if state in FINAL_STATES:
            job.times.finished_ns = time.monotonic_ns()
        get_task_control_handler().instance_state_changed(job.control, state, error)


class Session(SessionBook):
    """A group of task instances with shared ``max_parallel`` and ``max_workers`` accounting.

    Open it with ``with Session():``, or ``async with Session():`` in a coroutine (see
    :meth:`__aexit__`).

    Args:
        name: a label for logs and displays (default ``"session_"`` and 8 hex digits).
        session_id: the session's ``id`` (default a new UUID4 string).
        backend: the backend's name (see ``numerous.tasks.backends.registry``); default
            ``$NUMEROUS_TASK_BACKEND``, else ``set_default_backend``'s, else ``"local"``.
        stop_grace: seconds a task gets to return after a stop request before it is
            terminated (default :data:`~numerous.tasks.session.DEFAULT_STOP_GRACE`).
        display: True shows a live console display of the instances
            (:class:`numerous.tasks.display.TaskDisplay`) from entering the session until
            everything it started has finished; None (the default) follows the process
            default, off unless :func:`numerous.tasks.display.set_default` turned it on
            (``numerous-tasks run script.py`` does).
        timeline: a path; when the session ends, a picture of its instances' lives is
            saved there: an ``.svg`` image, or else a self-contained HTML page (see
            ``numerous.tasks.display.timeline``). None (the default): none, unless
            ``numerous-tasks run --timeline`` asked for one.
        max_workers: how many instances run at once across all tasks of the session
            (an int >= 1), on top of each task's ``max_parallel``; the others wait as
            ``"pending"``, first come first served (an instance held back by its own
            task's ``max_parallel`` lets a later instance of another task go ahead).
            ``"auto"`` (the default) is the backend's default: the CPUs this process may
            use (:func:`~numerous.tasks.session.usable_cpus`) on the local and inline backends, no cap on a Dask
            cluster (its scheduler places the work). None: no cap, only ``max_parallel``
            holds — for tasks that wait for each other, or mostly wait on I/O.
        sizes: what ``@task(size=...)`` means in this session, ``{size name:``
            :class:`~numerous.tasks.Size` ``}``: each size's memory limit (enforced on the
            local backend) and how many of ``max_workers`` one instance takes; sizes not
            named keep :data:`~numerous.tasks.sizes.DEFAULT_SIZES`.

    Raises:
        TypeError: an argument has the wrong type.
        ValueError: ``stop_grace`` below 0, ``max_workers`` below 1, a bad ``sizes`` entry.
    """

    def __init__(
        self,
        name: Optional[str] = None,
        session_id: Optional[str] = None,
        *,
        backend: Optional[str] = None,
        stop_grace: float = DEFAULT_STOP_GRACE,
        display: Optional[bool] = None,
        timeline: Union[str, os.PathLike[str], None] = None,
        max_workers: Union[int, str, None] = AUTO,
        sizes: Optional[Mapping[str, Size]] = None,
    ) -> None:
        self.max_workers: Union[int, str, None] = check_max_workers(max_workers)
        if sizes is not None:
            from .sizes import resolve_sizes

            resolve_sizes(sizes)  # a bad entry fails here
        self._sizes_given = sizes
        self._sizes: Dict[str, Any] = {}  # size name -> (weight, memory limit), once resolved
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a str, not {type(name).__name__}")
        _check_grace(stop_grace, "stop_grace")
        if display is not None and not isinstance(display, bool):
            raise TypeError(f"display must be True, False or None, not {type(display).__name__}")
        self._open_book(session_id)
        self.name = name or f"session_{random_hex(4)}"
        self._display_requested = display
        self._display: Any = None  # the entered TaskDisplay, if this session shows one
        self._timeline = _timeline(timeline)  # a display.timeline.Timeline, or None
        self.stop_grace = float(stop_grace)
        self._requested_backend = backend
        self._backend: Optional[Backend] = None
        # How start() pickles a call for its backend: None for one that takes the
        # arguments as they are (inline with pickling off). Set with the backend.
        self._dumps_call: Optional[Callable[..., bytes]] = None
        self._state = "new"  # new -> open -> closing -> closed
        self._lock = threading.RLock()
        self._slots = Slots()  # its max_workers is known once the backend is (adopt())
        self._unfinished: Dict[Job, TaskInstance[..., Any]] = {}  # started, not finished
        self._retrying: Dict[Job, RetryWait] = {}  # waiting for their next attempt
        self._activities: Set[Activity] = set()
        self._token: Optional[contextvars.Token[Any]] = None

    @property
    def is_open(self) -> bool:
        """True between entering and leaving the ``with`` block."""
        return self._state == "open"

    @classmethod
    def current(cls) -> Optional[Session]:
        """The session new instances join now, or None outside every session
        (numerous-sdk's name; :func:`numerous.tasks.session.current_session` raises instead)."""
        session = _current.find()
        assert session is None or isinstance(session, Session)
        return session

    # -- the with block ---------------------------------------------------------------
    def __enter__(self) -> Session:
        with self._lock:
            if self._state != "new":
                raise SessionError(f"session {self.name!r} was already entered; make a new Session()")
            self._state = "open"
        try:
            self._display = _open_display(self._display_requested)
        except BaseException:
            self._state = "closed"
            raise
        self._token = _current.enter(self)
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self._leave(None if exc_type is None else self.stop_grace)

    def close(self, grace: Optional[float] = None) -> None:
        """Leave the session where no ``with`` block does (one entered with
        ``__enter__()``, as a test fixture does), in the thread that entered it.

        With ``grace`` None this is leaving ``with`` normally: wait for every instance.
        With ``grace`` seconds it is leaving by an exception: cancel what is pending and
        stop what runs, each task getting ``grace`` seconds to return before it is
        terminated, then wait until they have ended. Does nothing if the session is not
        open (never entered, or left already).

        Raises:
            ValueError: ``grace`` is not a number of seconds >= 0.
        """
        if grace is not None:
            _check_grace(grace, "grace")
        if self.is_open:
            self._leave(grace)

    def unfinished(self) -> List[TaskInstance[..., Any]]:
        """The instances this session started that have not finished (pending ones
        included), in the order they were started: what leaving it waits for."""
        with self._lock:
            instances = [instance for job, instance in self._unfinished.items() if not job.future.done]
        return sorted(instances, key=lambda instance: instance.times.started_ns or 0)

    def _leave(self, grace: Optional[float]) -> None:
        """Wait for every instance (``grace`` None), or stop them all with that grace;
        then close, and stop being the current session here."""
        self._refuse_to_wait_here()
        try:
            self._end_instances(grace)
        finally:
            try:
                self._close()
            finally:
                self._leave_context()

    async def __aenter__(self) -> Session:
        """``async with Session():`` enters as ``with Session():`` does (without waiting)."""
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Leave ``async with Session():`` as ``with`` is left — wait for every instance,
        or stop them all when leaving by an exception — with the waiting done in a thread,
        so the event loop keeps running.

        Cancelling the task that awaits this exit (``asyncio.run`` does on Ctrl-C) stops
        every instance, as Ctrl-C does in ``with``: the first cancellation gives them
        ``stop_grace`` seconds, a further one terminates them at once. The exit still
        waits, without blocking the loop, until they have ended, then raises
        ``CancelledError``: nothing the session started outlives it.
        """
        from ._aio import await_in_thread

        self._refuse_to_wait_here()
        try:
            grace = None if exc_type is None else self.stop_grace
            await await_in_thread(lambda: self._end_instances(grace), "session-exit", self._stop_on_cancel)
        finally:
            try:
                await await_in_thread(self._close, "session-close")
            finally:
                self._leave_context()

    def _refuse_to_wait_here(self) -> None:
        with self._lock:
            unfinished = bool(self._unfinished or self._activities)
        if unfinished:
            refuse_to_block(self._backend, f"leaving session {self.name!r}")

    def _end_instances(self, grace: Optional[float]) -> None:
        """Wait for every instance (``grace`` None: leaving normally), or stop them all
        with ``grace`` (leaving by an exception)."""
        if grace is not None:
            self._abort(grace)
            return
        try:
            self._wait_all()
        except BaseException:  # Ctrl-C while waiting: stop everything instead
            self._abort(self.stop_grace)
            raise

    def _stop_on_cancel(self, cancellations: int) -> None:
        """The task awaiting ``__aexit__`` was cancelled: stop everything (no grace after
        the first time), as Ctrl-C does in ``__exit__``."""
        with self._lock:  # no new instance from here on: it would never be stopped
            self._state = "closing"
        self._stop_all(self.stop_grace if cancellations == 1 else 0.0)

    def _abort(self, grace: float) -> None:
        with self._lock:  # no new instance from here on: it would never be stopped
            self._state = "closing"
        self._stop_all(grace)
        try:
            self._wait_all()
        except KeyboardInterrupt:  # a second Ctrl-C: no more grace
            self._stop_all(0.0)
            self._wait_all()
            raise

    def _stop_all(self, grace: float) -> None:
        with self._lock:
            activities = list(self._activities)
        for activity in activities:  # first, so they start no instance the loop below misses
            activity.stop(grace)
        with self._lock:
            jobs = list(self._unfinished)
        # Pending ones first, so none is launched by a slot the others free.
        for job in sorted(jobs, key=lambda j: j.future.status != "pending"):
            self._stop_job(job, grace)

    def _wait_all(self) -> None:
        while True:
            with self._lock:
                activities = list(self._activities)
            if not activities:
                break
            for activity in activities:  # each removes itself once it is done
                activity.wait_done()
        while True:
            with self._lock:
                jobs = list(self._unfinished)
            if not jobs:
                return
            for job in jobs:
                job.future.wait_done()

    def _close(self) -> None:
        with self._lock:
            self._state = "closing"
        try:
            if self._backend is not None:
                self._backend.shutdown()
        finally:
            with self._lock:
                self._state = "closed"
            _current.close(self)
            self._close_book()
            if self._timeline is not None:
                self._timeline.save()
            display, self._display = self._display, None
            if display is not None:  # last: it shows every instance's final state
                display.__exit__(None, None, None)

    def _leave_context(self) -> None:
        """No longer the current session of the context that entered it (called there)."""
        if self._token is not None:
            _current.leave(self, self._token)
            self._token = None

    # -- used by task.map() -----------------------------------------------------------------
    def add_activity(self, activity: Activity) -> None:
        """Have leaving the session wait for ``activity`` (a normal exit) or stop it (an
        exception, Ctrl-C) before its instances; its ``wait_done()`` calls
        :meth:`remove_activity` once it has finished.

        Raises:
            SessionError: the session is not open.
        """
        with self._lock:
            if self._state != "open":
                raise SessionError(f"session {self.name!r} is {self._state}; open a new one with `with Session():`")
            self._activities.add(activity)

    def remove_activity(self, activity: Activity) -> None:
        """Forget a finished activity."""
        with self._lock:
            self._activities.discard(activity)

    # -- used by TaskInstance -------------------------------------------------------------
    def adopt(self, instance: TaskInstance[..., Any]) -> None:
        """Accept a new instance; resolves the backend on the session's first instance.

        Raises:
            SessionError: the session is not open.
            UnknownBackendError: the configured backend name is unknown.
        """
        if self._backend is not None and self._state == "open":  # as below, without the lock:
            self.add_task_instance(instance)  # start() looks at the state again under it
            return
        with self._lock:
            if self._state != "open":
                raise SessionError(f"session {self.name!r} is {self._state}; open a new one with `with Session():`")
            if self._backend is None:  # the registry (and entry points) only when one is needed
                from .backends.registry import backend_name, create_backend

                backend = create_backend(backend_name(self._requested_backend))
                self._slots.max_workers = self._worker_cap(backend)
                queue_ahead = getattr(backend, "queue_ahead_for", None)
                if queue_ahead is not None:  # it may queue instances ahead (see Slots.reserve)
                    queue_ahead(self)
                self._sizes = _resolved_sizes(self._sizes_given)
                # A backend that runs in this process may take the arguments as they are
                # (inline with pickling off); every other one gets them pickled, in start().
                if getattr(backend, "pickles_calls", True):
                    from ._pickling import dumps_call  # cloudpickle: only once a session pickles

                    self._dumps_call = dumps_call
                self._backend = backend  # last: the lock-free look above takes it as ready
        self.add_task_instance(instance)

    def start_instance(
        self, instance: TaskInstance[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Future[Any]:
        """Queue or launch ``instance`` with these arguments; return its future."""
        started_ns = time.monotonic_ns()
        task = instance.task
        dumps_call = self._dumps_call  # pickled here, so that start() raises what cannot be
        raw_call = dumps_call is None
        payload = b"" if dumps_call is None else dumps_call(task, args, kwargs)
        future: Future[Any] = Future(None, f"instance {instance.id} of task {task.name!r}", instance.id)
        future.owner = self._backend
        control, sink = instance.task_control, instance._control_sink
        job = Job(
            instance.id,
            task.name,
            payload,
            future,
            self._on_finished,
            control,
            sink,
            timeout=instance.timeout,
            fresh_process=instance.fresh_process,
            stop_grace=self.stop_grace,
            task=task,
            call=(args, kwargs) if raw_call else None,
            **self._retry_options(task),
            size=task.size,
            memory_limit=self._sizes[task.size][1],
        )
        job.times.started_ns = started_ns
        link = _InstanceLink(self, job)
        sink.stop_flag, sink.stopper = link.stop_requested, link.request_cancel
        future.attach(link, instance.id)
        future.listener = link
        instance.job = job
        backend = self._backend
        assert backend is not None
        with self._lock:
            if self._state != "open":
                raise SessionError(f"session {self.name!r} is {self._state}; open a new one with `with Session():`")
            ready = self._slots.add_then_take_all(job, self._weight(task))  # this job, if it may run now (FIFO)
            launch = job in ready
            if not launch and not instance.queue:
                self._slots.remove(job)
                raise self._refusal(job)
            self._unfinished[job] = instance  # held here while it runs, no longer by the book
            self._started(instance)
        others = [other for other in ready if other is not job]  # none: each change pumps
        if launch:
            # Prepared only when it can run: an instance that waits holds no
            # resources (its control block is made when its turn comes).
            try:
                backend.prepare(job)
            except BaseException:
                with self._lock:
                    self._unfinished.pop(job, None)
                    self._release(job)
                self._launch_taken(others)
                self._pump()  # its slots are free again
                raise
        if self._timeline is not None:
            self._timeline.add(self.name, task.name, instance.id, job.times, future)
        try:
            future.report_pending()
        finally:  # even when Ctrl-C lands in the handler: it is in the session, so it is stopped
            launched = not launch or self._launch(job)
            if not (self._launch_taken(others) and launched):
                self._pump()  # what failed gave its slots back
        return future

    def _weight(self, task: Task[..., Any]) -> int:
        """How many of the session's ``max_workers`` one instance of ``task`` takes."""
        return int(self._sizes[task.size][0])

    def _refusal(self, job: Job) -> MaxInstancesReachedError:
        """The error of a ``queue=False`` instance that cannot run at once."""
        task = job.task
        assert task is not None
        if self._slots.is_full(job):
            return MaxInstancesReachedError(task.name, task.max_parallel)
        assert self._slots.max_workers is not None
        return MaxInstancesReachedError(task.name, max_workers=self._slots.max_workers)

    def _worker_cap(self, backend: Backend) -> Optional[int]:
        """The cap in force: ``max_workers`` as given, or for ``"auto"`` the backend's
        ``default_max_workers`` if it has one (None: no cap), else the usable CPUs."""
        if not isinstance(self.max_workers, str):
            return self.max_workers
        default: Optional[int] = getattr(backend, "default_max_workers", usable_cpus())
        return default

    def stop_instance(self, instance: TaskInstance[..., Any], timeout: Optional[float]) -> None:
        """Cancel ``instance`` if pending, else ask it to stop (see ``TaskInstance.stop``)."""
        if timeout is not None and timeout != 0:
            check_timeout(timeout)
        job = instance.job
        assert isinstance(job, Job)  # start_instance() made it
        self._stop_job(job, timeout)

    def _stop_job(self, job: Job, grace: Optional[float]) -> bool:
        """Cancel a pending job, or one waiting to be retried (True), or request a
        running one to stop (False)."""
        if not job.future.done:
            job.times.mark_stop_requested()
        # A running one is on its worker (waiting, queued ahead and between attempts are
        # other statuses): it skips the checks for those, so its flag goes up first. Should
        # its attempt fail just now and be retried, the retry sees stop_requested and ends
        # it cancelled.
        if job.future.status != RUNNING and self._cancel_unstarted(job):
            return True
        if not job.future.done:
            job.stop_requested = True
            backend = self._backend
            assert backend is not None
            backend.request_stop(job, self.stop_grace if grace is None else grace)
        return False

    def _cancel_unstarted(self, job: Job) -> bool:
        """Cancel ``job`` if it waits for a slot, is queued ahead and not taken, or waits
        for its next attempt (True); False if it is running."""
        if self._cancel_retry(job):
            return True
        with self._lock:
            if self._slots.is_reserved(job):  # queued ahead: take it back unless it started
                self._revoke_reserved()
            was_pending = self._slots.remove(job)
            if was_pending:
                self._unfinished.pop(job, None)
        if was_pending:
            job.future.set_cancelled()
            self._pump()  # it may have held back those behind it (waiting for room)
        return was_pending

    # -- retries ------------------------------------------------------------------------------
    def _retry_options(self, task: Task[..., Any]) -> Dict[str, Any]:
        """The Job fields of ``task``'s retries (none when it has none)."""
        options = task.options
        if not options.retries:
            return {}
        return {"retry": RetryPolicy(options.retries, options.retry_on, options.retry_delay), "on_retry": self._retry}

    def _retry(self, job: Job, error: BaseException) -> None:
        """An attempt of ``job`` failed with ``error`` and is retried: launch it again
        after its delay (it keeps its slot meanwhile)."""
        assert job.retry is not None
        wait = RetryWait(job, job.retry.delay, self._relaunch)
        with self._lock:
            self._retrying[job] = wait
        # Said only now: whoever sees "retrying" and cancels finds the wait (cancel() True).
        job.future.set_retrying(error)
        if job.stop_requested:  # asked to stop while it was being retried
            self._cancel_retry(job)
            return
        wait.begin()

    def _relaunch(self, job: Job) -> None:
        """The next attempt of a retried job: prepare and launch it (or, if it was asked
        to stop meanwhile, end it cancelled)."""
        with self._lock:
            self._retrying.pop(job, None)
        backend = self._backend
        assert backend is not None
        if job.stop_requested:
            job.finish(None)
            return
        try:
            backend.prepare(job)
            backend.launch(job)
        except Exception as error:  # no worker for it, or the dispatcher died
            job.fail(error)

    def _cancel_retry(self, job: Job) -> bool:
        """End a job waiting for its next attempt as cancelled; False if none waits."""
        with self._lock:
            wait = self._retrying.pop(job, None)
        if wait is None:
            return False
        job.stop_requested = True  # no attempt after this one, whatever happens next
        if not wait.cancel():  # being launched: stopped as any running instance is
            return False
        job.finish(None)
        return True

    def _on_finished(self, job: Job) -> None:
        """A launched job ended: free its slots and launch what may run now (nothing, if
        it held none: it handed its slot to the instance that followed it)."""
        with self._lock:
            self._unfinished.pop(job, None)
            freed = self._release(job)
        if freed:
            self._pump()

    def _release(self, job: Job) -> bool:
        """Free ``job``'s slots (call with the lock held); False if it held none. If that
        frees anything while instances are queued ahead, those are taken back: they are
        first in line."""
        freed = self._slots.release(job)
        if freed and self._slots.has_reserved:
            self._revoke_reserved()
        return freed

    def _revoke_reserved(self) -> None:
        """Take back every instance queued ahead that has not started (lock held)."""
        revoke = getattr(self._backend, "revoke_queued", None)
        if revoke is not None:
            self._slots.give_back(revoke())

    # -- queueing ahead (a backend with queue_ahead_for, see Slots.reserve) -------------------
    def _reserve_successors(self, running: Job, limit: int, put: Callable[[List[Job]], int]) -> int:
        """Up to ``limit`` instances that will run as instances of ``running``'s task
        end, in start order, prepared and given to ``put`` to queue ahead; those it did
        not queue (it returns how many it did) go back. All under the lock, so that no
        cancel or revoke sees some reserved and not yet queued."""
        backend = self._backend
        assert backend is not None
        with self._lock:
            jobs: List[Job] = []
            while len(jobs) < limit:
                job = self._slots.reserve(running.task)
                if job is None:
                    break
                jobs.append(job)
            if not jobs:
                return 0
            try:
                for job in jobs:
                    backend.prepare(job)
                queued = put(jobs)
            except Exception:
                queued = 0
            if queued < len(jobs):
                self._slots.give_back(jobs[queued:])
            return queued

    def _hand_over(self, ended: Job, successor: Job) -> None:
        """``successor``, queued ahead, started as ``ended`` ended: it takes over the slot."""
        with self._lock:
            self._slots.transfer(ended, successor)

    def _give_back_reserved(self, jobs: List[Job]) -> None:
        """Instances queued ahead that never started (their worker died as it took
        them): back to the front of the queue, and launched if they may run now."""
        with self._lock:
            self._slots.give_back(jobs)
        self._pump()

    def _pump(self) -> None:
        """Launch every pending instance that may run now, in turn (a loop, not a
        recursion, however many wait or fail to launch)."""
        while True:
            with self._lock:
                job = self._slots.take()
            if job is None:
                return
            self._launch_taken([job])

    def _launch_taken(self, jobs: List[Job]) -> bool:
        """Prepare and launch jobs taken from the queue; False if one failed to (it
        gave its slots back: the caller pumps again)."""
        backend = self._backend
        assert backend is not None
        launched = True
        for job in jobs:
            try:
                backend.prepare(job)
            except Exception as error:  # e.g. no memory for its control block: the next tries
                self._failed_to_launch(job, error)
                launched = False
                continue
            launched = self._launch(job) and launched
        return launched

    def _launch(self, job: Job) -> bool:
        """Launch a prepared job; if the backend cannot (its dispatcher died), fail the
        job, give its slots back and return False."""
        backend = self._backend
        assert backend is not None
        try:
            backend.launch(job)
        except Exception as error:
            self._failed_to_launch(job, error)
            return False
        return True

    def _failed_to_launch(self, job: Job, error: BaseException) -> None:
        with self._lock:
            self._unfinished.pop(job, None)
            self._release(job)
        job.future.set_error(error)

    def __repr__(self) -> str:
        return f"<Session {self.name!r} {self._state}>"


def _resolved_sizes(given: Optional[Mapping[str, Size]]) -> Dict[str, Tuple[int, Optional[int]]]:
    """``{size name: (workers, memory limit in bytes or None)}`` for a session."""
    from .sizes import resolve_sizes

    return {name: (size.workers, size.memory_bytes()) for name, size in resolve_sizes(given).items()}


def _check_grace(grace: float, parameter: str) -> None:
    """Raise ValueError naming ``parameter`` unless ``grace`` is a number of seconds >= 0."""
    if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not grace >= 0:
        raise ValueError(f"{parameter} must be a number of seconds >= 0, not {grace!r}")


def _open_display(requested: Optional[bool]) -> Any:
    """An entered TaskDisplay if the session shows one, else None.

    rich is imported only then: ``numerous.tasks.display`` (which holds the process
    default) is looked up in ``sys.modules``, since nothing can have turned the default
    on without importing it.
    """
    if requested is None:
        module = sys.modules.get(__name__.rpartition(".")[0] + ".display")
        requested = module is not None and module.default_enabled()
    if not requested:
        return None
    from .display import session_display

    return session_display().__enter__()


def _timeline(requested: Union[str, os.PathLike[str], None]) -> Any:
    """The Timeline a session records into, or None; its module is imported only then
    (for None, looked up in ``sys.modules``: only it can have set a default)."""
    if requested is None:
        module = sys.modules.get(__name__.rpartition(".")[0] + ".display.timeline")
        return None if module is None else module.default_timeline()
    from .display.timeline import Timeline

    return Timeline(requested)
