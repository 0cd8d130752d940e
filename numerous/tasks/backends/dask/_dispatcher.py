"""The parent's dispatcher thread for the Dask backend: one per session.

Everything that touches handlers and futures happens here, in arrival order: topic
messages from the workers (``running``, logs, progress, status, resource figures), the
Dask futures' outcomes, the scheduler's ``remove-worker`` announcements, and the stop deadlines
(when an instance's grace is over, its kill Event is set). Other threads hand it work
with :meth:`DaskDispatcher.call_soon`; the Dask client's event loop only enqueues.

A future is resolved once its Dask task returned *and* every topic message that task
said it sent has been handed to the handler (or :data:`MESSAGE_GRACE` passed), so
records always arrive before ``result()`` returns.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from ..._callbacks import call_user_code, run_dispatcher
from ..._lifecycle.deadlines import Step, StopLadder
from ..._lifecycle.outcomes import Ending, decode_error, failed, returned
from ...control import deliver_progress, deliver_status, get_task_control_handler
from ...exceptions import TaskError
from ..base import Job
from ._errors import DaskWorkerDiedError
from ._messages import (
    Envelope,
    Item,
    Log,
    Progress,
    ResourceFigures,
    Running,
    Status,
    decode_batch,
    kill_event_name,
    stop_event_name,
)

__all__ = ["DaskDispatcher", "DaskExecution"]

logger = logging.getLogger("numerous.tasks")

#: Seconds to wait, after a Dask task returned, for topic messages it sent but that
#: have not arrived. They travel ahead of the result on the same streams, so this is
#: only a bound for a cluster that loses messages (a scheduler restart).
MESSAGE_GRACE = 5.0
_INF = float("inf")
_CLOSE = object()
_HANDLER_LOG = "the task control handler's log()"
_HANDLER_PROGRESS = "the task control handler's update_progress()"
_HANDLER_STATUS = "the task control handler's update_status()"
_HANDLER_RESOURCES = "the task control handler's resources_sampled()"


@dataclass(eq=False)
class DaskExecution:
    """The parent's record of one instance on the cluster."""

    job: Job
    dask_future: Any = None
    scattered: Any = None  # the payload, when it was scattered ahead of the task
    received: int = 0  # topic messages handed to the handler
    expected: Optional[int] = None  # topic messages the task said it sent
    outcome: Optional[Envelope] = None
    worker: Optional[str] = None  # the Dask worker that runs it, once it reported
    worker_pid: Optional[int] = None
    ladder: StopLadder = field(default_factory=StopLadder)  # terminating = setting the kill Event
    resolve_by: float = _INF  # monotonic: resolve then even if messages are missing
    finished: bool = False
    events_set: Set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class DaskDispatcher:
    """Delivers what workers report and resolves futures, on one thread."""

    def __init__(self, client: Any, session_id: str, owner: object = None) -> None:
        self._owner = owner
        self._death: Optional[BaseException] = None
        self._client = client
        self._session_id = session_id
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._remotes: Dict[str, DaskExecution] = {}
        self._upcoming = _INF  # the next deadline
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="numerous-dask-dispatcher", daemon=True)
        self._thread.start()

    # -- called from other threads ---------------------------------------------------------
    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the dispatcher thread."""
        self._queue.put(fn)

    def add(self, remote: DaskExecution) -> None:
        """Track an instance (before its Dask task is submitted).

        Raises:
            TaskError: the dispatcher thread has died.
        """
        if self._death is not None:
            raise TaskError(f"the Dask backend's dispatcher thread has died ({type(self._death).__name__})")
        self._remotes[remote.job.instance_id] = remote

    def on_topic(self, event: Tuple[float, Any]) -> None:
        """The session's topic handler (runs on the client's event loop: enqueue only)."""
        message = event[1]
        self._queue.put(lambda: self._on_batch(message))

    def on_cluster_event(self, event: Tuple[float, Any]) -> None:
        """The scheduler's ``all`` topic handler: notice workers that left."""
        message = event[1]
        if isinstance(message, dict) and message.get("action") == "remove-worker":
            address = message.get("worker")
            self._queue.put(lambda: self._on_worker_removed(address))

    def on_done(self, remote: DaskExecution) -> None:
        """The Dask future of ``remote`` finished (called on a Dask callback thread)."""
        self._queue.put(lambda: self._on_done(remote))

    def request_stop(self, job: Job, grace: float) -> None:
        """Set the stop Event now, and the kill Event after ``grace`` seconds."""
        remote = self._remotes.get(job.instance_id)
        if remote is None:
            return
        self._set_event(remote, stop_event_name(self._session_id, job.instance_id))
        remote.ladder.request_stop(time.monotonic(), grace)
        self.call_soon(self._check_deadlines_now)  # a grace of 0 terminates at once

    def close(self) -> None:
        """Stop the thread (every instance has finished by now)."""
        self._queue.put(_CLOSE)
        self._thread.join()

    # -- on the dispatcher thread ------------------------------------------------------------
    def _event(self, name: str) -> Any:
        """The Dask ``Event`` called ``name``, through this session's client."""
        import distributed

        factory: Any = distributed.Event
        return factory(name, client=self._client)

    def _set_event(self, remote: DaskExecution, name: str) -> None:
        with remote.lock:  # never after the instance finished: the Event would stay set
            if remote.finished or name in remote.events_set:
                return
            remote.events_set.add(name)
            try:
                self._event(name).set()
            except Exception:
                logger.exception("numerous.tasks: could not ask %s to stop", remote.job.description)

    def _on_batch(self, message: Any) -> None:
        instance_id, items = decode_batch(message)
        remote = self._remotes.get(instance_id)
        if remote is None or remote.finished:
            return
        remote.received += 1
        for item in items:
            self._deliver(remote, item)
        self._maybe_resolve(remote)

    def _deliver(self, remote: DaskExecution, item: Item) -> None:
        job, handler = remote.job, get_task_control_handler()
        if isinstance(item, Running):
            remote.worker, remote.worker_pid, job.sink.process_id = item
            job.times.running_ns = time.monotonic_ns()
            job.future.set_running()
        elif isinstance(item, Log):
            call_user_code(handler.log, job.control, item.message, item.level, description=_HANDLER_LOG, **item.extra)
        elif isinstance(item, Progress):
            call_user_code(
                deliver_progress, handler, job.control, item.percentage, item.status, description=_HANDLER_PROGRESS
            )
        elif isinstance(item, Status):
            call_user_code(deliver_status, handler, job.control, item.text, description=_HANDLER_STATUS)
        elif isinstance(item, ResourceFigures):  # read on the worker's host
            call_user_code(handler.resources_sampled, job.control, item, description=_HANDLER_RESOURCES)

    def _on_done(self, remote: DaskExecution) -> None:
        if remote.finished:
            return
        future = remote.dask_future
        status = future.status
        if status == "finished":
            try:
                envelope: Envelope = future.result()
            except Exception as exc:  # the outcome could not be fetched or unpickled
                self._finish(remote, failed(TaskError(f"the outcome of {remote.job.description} was lost: {exc}")))
                return
            remote.outcome, remote.expected = envelope, envelope.messages_sent
            remote.resolve_by = time.monotonic() + MESSAGE_GRACE
            self._maybe_resolve(remote)
        elif status == "error":
            self._finish(remote, failed(self._dask_error(remote)))
        else:  # cancelled: the scheduler restarted, or lost the client
            self._finish(remote, failed(TaskError(f"the Dask cluster dropped {remote.job.description} ({status})")))

    def _dask_error(self, remote: DaskExecution) -> BaseException:
        """The error of a Dask task that raised (run_instance itself, or KilledWorker)."""
        future = remote.dask_future
        exc: BaseException = future.exception()
        if type(exc).__name__ == "KilledWorker":
            last = getattr(exc, "last_worker", None)
            address = remote.worker or getattr(last, "address", None) or "?"
            return DaskWorkerDiedError(remote.job.task_name, remote.job.description, address, remote.worker_pid)
        try:
            return exc.with_traceback(future.traceback())
        except Exception:
            return exc

    def _on_worker_removed(self, address: Any) -> None:
        for remote in list(self._remotes.values()):
            if remote.finished or remote.worker != address:
                continue
            if remote.outcome is not None:  # its result is in: only messages were lost
                self._resolve(remote)
                continue
            # Stop a rerun Dask may already have started elsewhere, and let go of it.
            self._set_event(remote, kill_event_name(self._session_id, remote.job.instance_id))
            try:
                remote.dask_future.cancel()
            except Exception:
                pass
            job = remote.job
            self._finish(
                remote, failed(DaskWorkerDiedError(job.task_name, job.description, address, remote.worker_pid))
            )

    def _maybe_resolve(self, remote: DaskExecution) -> None:
        if remote.outcome is None or remote.finished:
            return
        assert remote.expected is not None
        if remote.received >= remote.expected:
            self._resolve(remote)

    def _resolve(self, remote: DaskExecution) -> None:
        assert remote.outcome is not None
        kind, body, _, stopped = remote.outcome
        if stopped:  # its timeout asked it to stop, on the worker: that is no failure to retry
            remote.job.stop_requested = True
        if remote.received < (remote.expected or 0):
            logger.warning(
                "numerous.tasks: %d of %d messages of %s did not arrive",
                remote.expected - remote.received,  # type: ignore[operator]
                remote.expected,
                remote.job.description,
            )
        if kind == "result":
            self._finish(remote, returned(body))
        elif kind == "cancelled":
            self._finish(remote, None)  # terminated on the worker: cancelled
        else:
            self._finish(remote, failed(decode_error(body, remote.job.description)))

    def _finish(self, remote: DaskExecution, ending: Optional[Ending]) -> None:
        """Settle the future, release what the instance held on the cluster, free its slot."""
        with remote.lock:
            remote.finished = True
            events = list(remote.events_set)
        self._remotes.pop(remote.job.instance_id, None)
        # Once its kill Event was set, it ends cancelled whatever it reported.
        remote.job.finish(ending, terminated=remote.ladder.terminated)
        self._release(remote, events)

    def _release(self, remote: DaskExecution, events: List[str]) -> None:
        for held in (remote.dask_future, remote.scattered):
            if held is not None:
                try:
                    held.release()
                except Exception:
                    pass
        remote.dask_future = remote.scattered = None
        for name in events:  # a set Event stays on the scheduler until cleared
            try:
                self._event(name).clear()
            except Exception:
                pass

    def _check_deadlines_now(self) -> None:
        self._upcoming = _INF  # if checking fails, wait for the next item
        self._upcoming = self._check_deadlines()

    def _check_deadlines(self) -> float:
        """Act on passed deadlines; return the next one."""
        now, upcoming = time.monotonic(), _INF
        for remote in list(self._remotes.values()):
            if remote.finished:
                continue
            if remote.ladder.due(now) is Step.TERMINATE:
                self._set_event(remote, kill_event_name(self._session_id, remote.job.instance_id))
            if remote.resolve_by <= now:
                self._resolve(remote)
                continue
            upcoming = min(upcoming, remote.ladder.next_at(), remote.resolve_by)
        return upcoming

    def _run(self) -> None:
        run_dispatcher(self._owner, self._serve, self._die, "numerous.tasks Dask dispatcher")

    def _die(self, cause: BaseException) -> None:
        """Fail every unfinished instance (each asked to end on the cluster)."""
        self._death = cause
        for remote in list(self._remotes.values()):
            if not remote.finished:
                error = TaskError(
                    f"{remote.job.description} was lost: the Dask backend's dispatcher thread died "
                    f"({type(cause).__name__}: {cause}); it was asked to end on the cluster"
                )
                self._set_event(remote, kill_event_name(self._session_id, remote.job.instance_id))
                call_user_code(self._finish, remote, failed(error), description="failing an instance")

    def _serve(self) -> None:
        upcoming = _INF
        while True:
            timeout = None if upcoming == _INF else max(0.0, upcoming - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is _CLOSE:
                return
            if item is not None:  # the dispatcher must outlive any one instance's trouble
                call_user_code(item, description="numerous.tasks dask dispatcher: a step")
            call_user_code(self._check_deadlines_now, description="numerous.tasks dask dispatcher: deadlines")
            upcoming = self._upcoming
