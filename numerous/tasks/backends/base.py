"""Backends run started instances; a :class:`~numerous.tasks.Session` owns one.

A backend gets a :class:`Job` per started instance. When a ``max_parallel`` slot is
free for it, ``prepare`` and then ``launch`` run: in ``start()`` itself when the slot is
free at once (so what can fail early fails there), else when its turn comes. When
the instance ends the backend calls :meth:`Job.finish` with how it ended (see
:mod:`numerous.tasks._lifecycle`): that settles the future and frees the slot, once —
unless the attempt failed in a way the task retries (see
:mod:`numerous.tasks._lifecycle.retrying`): then the job keeps its slot, its future says
``"retrying"``, and whoever made it (``on_retry``) prepares and launches it again, as a
new attempt in a new process; the backend sees a job launched once more.

``NUMEROUS_TASK_BACKEND`` (or ``Session(backend=...)``) picks the backend by name,
through :mod:`.registry` (which imports this module, never the other way round);
modules are imported only when a session first needs one.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Protocol, Tuple

from .._lifecycle.ending import settle
from .._lifecycle.outcomes import Ending, failed
from .._lifecycle.retrying import RetryPolicy, retry_error
from ..timing import InstanceTimes

if TYPE_CHECKING:
    from ..control import HandlerSink, TaskControl
    from ..future import Future
    from ..task import Task

__all__ = ["BACKENDS", "BACKEND_ENV", "Backend", "Job", "Successors"]

BACKEND_ENV = "NUMEROUS_TASK_BACKEND"
#: Makes each job's "finished or retried?" decision once (held for that decision only).
_FINISH_LOCK = threading.Lock()
#: The built-in backend names and the module that provides each (``module:factory``);
#: :mod:`.registry` starts from these.
BACKENDS: Dict[str, str] = {
    "local": "numerous.tasks.backends.local.backend:LocalBackend",
    "inline": "numerous.tasks.backends.inline:InlineBackend",
    # A Dask distributed cluster at $NUMEROUS_DASK_ADDRESS; "remote" is the spec's name.
    "dask": "numerous.tasks.backends.dask.backend:DaskBackend",
    "remote": "numerous.tasks.backends.dask.backend:DaskBackend",
}


@dataclass(eq=False)
class Job:
    """One started instance, as the session hands it to its backend."""

    instance_id: str
    task_name: str
    payload: bytes
    future: Future[Any]
    on_finished: Callable[[Job], None]
    control: TaskControl  # what handlers are given for this instance
    sink: HandlerSink  # the backend sets ``sink.process_id`` when a process runs it
    timeout: Optional[float] = None  # seconds it may run; then stopped, then failed
    fresh_process: bool = False  # run in a new process, not reused afterwards
    stop_grace: float = 5.0  # seconds from a stop request (or the timeout) to termination
    stop_requested: bool = False  # set by whoever asks it to stop, never cleared
    #: The task, where the session has it: its ``max_parallel`` group, and the function a
    #: backend that does not pickle calls runs (a job sent to a cluster has only its name).
    task: Optional[Task[..., Any]] = field(default=None, repr=False)
    times: InstanceTimes = field(default_factory=InstanceTimes)
    backend_state: Any = field(default=None, repr=False)
    #: The arguments as given, ``(args, kwargs)``, for a backend whose ``pickles_calls``
    #: is False (``payload`` is then empty); None otherwise.
    call: Optional[Tuple[Tuple[Any, ...], Dict[str, Any]]] = field(default=None, repr=False)
    finished: bool = field(default=False, repr=False)  # finish() ran: settled, slot freed
    #: The task's retries (None: none); ``on_retry(job, error)`` runs it again after a
    #: failed attempt (the session's), on the thread that called :meth:`finish`: it
    #: moves the future to ``"retrying"`` once a cancel can find the wait for the next
    #: attempt (see ``Session._retry``).
    retry: Optional[RetryPolicy] = field(default=None, repr=False)
    on_retry: Optional[Callable[[Job, BaseException], None]] = field(default=None, repr=False)
    attempt: int = 1  # 1 for the first run, 2 for the first retry, ...
    #: The task's size and the memory its processes may use, in bytes (None: no limit),
    #: from the session's sizes (see :mod:`numerous.tasks.sizes`).
    size: str = "small"
    memory_limit: Optional[int] = None

    def __post_init__(self) -> None:
        if self.retry is not None:  # handlers read the allowance on the instance's control
            self.control._retries = self.retry.retries

    @property
    def description(self) -> str:
        """How errors name this instance."""
        return f"instance {self.instance_id} of task {self.task_name!r}"

    def finish(self, ending: Optional[Ending], *, timed_out: bool = False, terminated: bool = False) -> bool:
        """Settle the future from how the instance ended (``ending``; None: it produced
        none) and what its stop ladder says, then free its slot: exactly once, whoever
        calls first (False for every later call).

        If the task retries this failure instead, the attempt ends here: the next
        attempt will run in a new process, and ``on_retry`` takes it from there,
        moving the future to ``"retrying"`` (True; the job is not finished).

        The job lets go of its backend state here, so that nothing refers back to it
        once it is over (no reference cycle to wait for the garbage collector).
        """
        with _FINISH_LOCK:
            if self.finished:
                return False
            retry = retry_error(
                self.retry,
                self.attempt,
                ending,
                timed_out=timed_out,
                terminated=terminated,
                stop_requested=self.stop_requested,
            )
            if retry is None:
                self.finished = True
            else:
                self.backend_state = None  # this attempt's: the next one gets its own
                self.attempt += 1
        if retry is not None:
            self._retry(retry)
            return True
        try:
            settle(
                self.future,
                ending,
                description=self.description,
                timeout=self.timeout,
                timed_out=timed_out,
                terminated=terminated,
            )
        finally:
            self.backend_state = None
            self.on_finished(self)
        return True

    def _retry(self, error: BaseException) -> None:
        assert self.on_retry is not None  # whoever gave it a retry policy
        self.times.end_attempt(error)
        self.fresh_process = True  # never on the worker that failed, nor one reused after
        self.control._attempt = self.attempt
        self.on_retry(self, error)

    def fail(self, error: BaseException) -> bool:
        """It cannot run or go on (no worker could be started, a dispatcher died):
        :meth:`finish` with ``error``."""
        return self.finish(failed(error))


class Backend(Protocol):
    """What a session needs from a backend.

    A backend may also have a ``pickles_calls`` attribute: when it is False, ``start()``
    does not pickle the call and hands the arguments over in ``job.call`` instead. And a
    ``default_max_workers`` attribute: the session cap that ``Session(max_workers="auto")``
    means with it (an int, or None for no cap); without one, the usable CPUs.
    """

    def prepare(self, job: Job) -> None:
        """Allocate what the job needs to run; raise if that fails."""

    def launch(self, job: Job) -> None:
        """Start running a prepared job (a slot is free); must not block for long."""

    def request_stop(self, job: Job, grace: float) -> None:
        """Ask a launched job to stop; terminate its processes after ``grace`` seconds."""

    def shutdown(self) -> None:
        """Release everything; called once, after every launched job has finished."""


class Successors(Protocol):
    """What a session offers a backend that queues instances ahead (one with a
    ``queue_ahead_for(successors)`` method, and ``revoke_queued() -> List[Job]`` to take
    back those not started): see ``numerous.tasks._slots.Slots.reserve``."""

    def _reserve_successors(self, running: Job, limit: int, put: Callable[[List[Job]], int]) -> int:
        """Up to ``limit`` instances that will run as ``running``'s task's instances
        end, in start order, prepared and given to ``put``, which returns how many it
        queued (the rest go back); how many were queued."""

    def _hand_over(self, ended: Job, successor: Job) -> None:
        """``successor``, queued ahead, started as ``ended`` ended: it takes the slot."""

    def _give_back_reserved(self, jobs: List[Job]) -> None:
        """Instances queued ahead that never started: back to the front of the queue."""
