"""What runs on a Dask worker: one instance through the local backend, reported home.

:func:`run_instance` is the function the parent submits. In the Dask worker's task
thread it gives the instance to the session's :class:`~..local.backend.LocalBackend` in
this worker process (one per session, so warm task processes are never shared between
sessions; :func:`close_session` ends them), then waits for the local future.

    Dask task thread           local dispatcher thread        forwarder thread       worker event loop
    ----------------           -----------------------        ----------------       -----------------
    prepare + launch ───────▶  spawn / reuse a process
    watch the Events ─────────────────────────────────────────────────────────────▶ event_wait (stop, kill)
                               handler calls ─▶ _Router ─▶ outbox ─▶ log_event ────▶ batched to the scheduler
    read CPU/RSS every ─────────────────────────────▶ outbox
    resource_interval s
    local future done
    flush the outbox, return (kind, body, messages sent)

A stop request arrives as the Dask Event ``<id>-stop`` (the task sees ``should_stop``),
the end of its grace as ``<id>-kill`` (the task's process tree is terminated). The
watcher also ends the instance when Dask no longer wants its key (the parent's client
went away, or cancelled it), so work does not outlive the session that started it.

When the parent's handler wants resource figures (``InstanceSpec.resource_interval``),
the Dask task thread, which only waits for the local future otherwise, reads the CPU and
memory of the process running the body here, on its host, between waits
(:class:`_ResourceReporter`); the figures go home in the outbox with the progress.
Only on request, not always at a low rate: a reading costs ~90 µs here, but each one is
a message through the scheduler, measured at ~0.5 ms of CPU in the parent and as much
in the scheduler (8 instances read twice a second: +0.8% of a core in the parent).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

from ...control import TaskControl, TaskControlHandler, handler_task_control, set_task_control_handler
from ...future import Future
from ...resources import ProcessSampler, ResourceFigures
from ..base import Job
from ..local.backend import LocalBackend
from ._messages import (
    Envelope,
    InstanceSpec,
    Item,
    Log,
    Progress,
    Running,
    Status,
    encode_batch,
    kill_event_name,
    stop_event_name,
    topic_name,
)

__all__ = ["close_session", "run_instance"]

#: Seconds a topic message waits for more items to ride along: batches a burst of log
#: records into one message without delaying any record noticeably.
FLUSH_DELAY = 0.005
#: Seconds each long poll on a stop Event lasts before it is renewed (and before the
#: watcher re-checks that Dask still wants the instance).
EVENT_WAIT_RENEW = 2.0
#: Seconds a session's warm task processes stay on a worker with nothing to run. The
#: session's end closes them at once; this bounds how long they outlive a parent that
#: was killed before it could say so.
SESSION_IDLE_TIMEOUT = 120.0
_NEVER = float("inf")
_UNWANTED_STATES = frozenset({"cancelled", "released", "forgotten"})


# -- reports to the parent -------------------------------------------------------------
class _Outbox:
    """One instance's items waiting to go to the parent as topic messages."""

    def __init__(self, worker: Any, topic: str, instance_id: str) -> None:
        self.worker = worker
        self.topic = topic
        self.instance_id = instance_id
        self.items: List[Item] = []
        self.sent = 0  # topic messages sent so far
        self.lock = threading.Lock()

    def put(self, item: Item) -> None:
        """Queue an item; a progress, status or resource reading replaces one still
        waiting (latest wins)."""
        with self.lock:
            last = self.items[-1] if self.items else None
            if isinstance(item, ResourceFigures) and isinstance(last, ResourceFigures):
                self.items[-1] = item
            elif isinstance(item, (Progress, Status)) and isinstance(last, (Progress, Status)):
                if isinstance(item, Progress) or isinstance(last, Status):
                    self.items[-1] = item
                else:  # a status after a progress: keep the percentage, take the text
                    self.items[-1] = Progress(last.percentage, item.text)
            else:
                self.items.append(item)
            first = len(self.items) == 1
        if first:
            _forwarder().wake(self)

    def flush(self) -> None:
        """Send what waits, as one message."""
        with self.lock:
            items, self.items = self.items, []
            if not items:
                return
            self.sent += 1
            self.worker.log_event(self.topic, encode_batch(self.instance_id, items))


class _ResourceReporter:
    """Reads the CPU and memory of the process running an instance's body, on this host,
    and queues the figures for the parent.

    The first reading is taken when the body starts and queued before ``Running`` (so
    the parent knows from the start that the figures come from here); the others by the
    Dask task thread while it waits for the instance to end, one every ``interval``.
    """

    def __init__(self, outbox: _Outbox, interval: float) -> None:
        self.outbox = outbox
        self.interval = interval
        self.sampler: Optional[ProcessSampler] = None  # set once the body's process is known

    def start(self, pid: Optional[int]) -> None:
        """The body runs in ``pid``: queue the first reading (local dispatcher thread)."""
        if pid is not None:
            sampler = ProcessSampler(pid)
            self.outbox.put(sampler.read())
            self.sampler = sampler

    def wait(self, future: Future[Any]) -> None:
        """Wait until ``future`` is done, queueing a reading every ``interval``."""
        while not future.wait_done(self.interval):
            sampler = self.sampler
            if sampler is not None:
                self.outbox.put(sampler.read())


class _Forwarder:
    """One thread per worker process that flushes outboxes shortly after they fill."""

    def __init__(self) -> None:
        self._dirty: Dict[int, _Outbox] = {}
        self._lock = threading.Condition()
        threading.Thread(target=self._run, name="numerous-dask-forwarder", daemon=True).start()

    def wake(self, outbox: _Outbox) -> None:
        with self._lock:
            self._dirty[id(outbox)] = outbox
            self._lock.notify()

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: bool(self._dirty))
            time.sleep(FLUSH_DELAY)  # a batching window, not a wait for anything
            with self._lock:
                dirty, self._dirty = self._dirty, {}
            for outbox in dirty.values():
                try:
                    outbox.flush()
                except Exception:  # the worker is closing: nothing to report to
                    pass


class _Router(TaskControlHandler):
    """The worker process's handler: sends each instance's calls to its outbox."""

    def __init__(self, previous: TaskControlHandler) -> None:
        self.previous = previous
        self.outboxes: Dict[int, _Outbox] = {}

    def _outbox(self, control: TaskControl) -> Optional[_Outbox]:
        return self.outboxes.get(id(control))

    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        """Forward a log record."""
        outbox = self._outbox(task_control)
        if outbox is None:
            self.previous.log(task_control, message, level, **extra_data)
        else:
            outbox.put(Log(message, level, extra_data))

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        """Forward the latest progress."""
        outbox = self._outbox(task_control)
        if outbox is None:
            self.previous.update_progress(task_control, progress, status)
        else:
            outbox.put(Progress(progress, status))

    def update_status(self, task_control: TaskControl, status: str) -> None:
        """Forward the latest status."""
        outbox = self._outbox(task_control)
        if outbox is None:
            self.previous.update_status(task_control, status)
        else:
            outbox.put(Status(status))


class _SessionBackend:
    """A session's local backend in this worker process, and how busy it is."""

    def __init__(self) -> None:
        self.backend = LocalBackend()
        self.running = 0
        self.idle_since = time.monotonic()


_setup_lock = threading.Lock()
_forwarder_instance: Optional[_Forwarder] = None
_router: Optional[_Router] = None
_reaper_started = False
_backends: Dict[str, _SessionBackend] = {}


def _forwarder() -> _Forwarder:
    global _forwarder_instance
    with _setup_lock:
        if _forwarder_instance is None:
            _forwarder_instance = _Forwarder()
        return _forwarder_instance


def _get_router() -> _Router:
    global _router
    with _setup_lock:
        if _router is None:
            _router = _Router(set_task_control_handler(None))
            set_task_control_handler(_router)
        return _router


def _enter_session(session_id: str) -> LocalBackend:
    """The session's local backend here (made on first use), counted as busy."""
    global _reaper_started
    with _setup_lock:
        record = _backends.get(session_id)
        if record is None:
            record = _backends[session_id] = _SessionBackend()
        record.running += 1
        if not _reaper_started:
            _reaper_started = True
            threading.Thread(target=_reap_idle_sessions, name="numerous-dask-reaper", daemon=True).start()
        return record.backend


def _leave_session(session_id: str, close: bool) -> None:
    """One instance of the session ended here; ``close`` ends the session here at once
    (its parent is gone), else it may stay idle for :data:`SESSION_IDLE_TIMEOUT`."""
    with _setup_lock:
        record = _backends.get(session_id)
        if record is None:
            return
        record.running -= 1
        record.idle_since = time.monotonic()
        if not (close and record.running == 0):
            return
        del _backends[session_id]
    threading.Thread(target=record.backend.shutdown, name="numerous-dask-session-close", daemon=True).start()


def _reap_idle_sessions() -> None:
    """End sessions idle here for too long: a parent that was killed never closes them."""
    while True:
        time.sleep(SESSION_IDLE_TIMEOUT / 4)
        now = time.monotonic()
        with _setup_lock:
            idle = [
                session_id
                for session_id, record in _backends.items()
                if record.running == 0 and now - record.idle_since > SESSION_IDLE_TIMEOUT
            ]
            records = [_backends.pop(session_id) for session_id in idle]
        for record in records:
            record.backend.shutdown()


# -- stop requests -----------------------------------------------------------------------
async def _watch(worker: Any, key: Any, names: Tuple[str, str], backend: LocalBackend, job: Job, grace: float) -> None:
    """Wait on the stop and kill Events; pass them on to the local backend."""

    async def wait(name: str, stop_grace: float) -> None:
        while True:
            if await worker.scheduler.event_wait(name=name, timeout=EVENT_WAIT_RENEW):
                _request_stop(backend, job, stop_grace)
                return
            if _unwanted(worker, key) and not job.stop_requested:  # the parent is gone
                _request_stop(backend, job, grace)

    await asyncio.gather(wait(names[0], _NEVER), wait(names[1], 0.0))


def _request_stop(backend: LocalBackend, job: Job, grace: float) -> None:
    job.stop_requested = True
    backend.request_stop(job, grace)


def _unwanted(worker: Any, key: Any) -> bool:
    """Whether Dask let go of ``key`` on this worker (its client left, or cancelled it)."""
    state = getattr(worker, "state", None)
    tasks = getattr(state, "tasks", None)
    if tasks is None or key is None:
        return False
    task_state = tasks.get(key)
    return task_state is None or task_state.state in _UNWANTED_STATES


# -- the Dask task -----------------------------------------------------------------------
def run_instance(spec: InstanceSpec, payload: bytes) -> Envelope:
    """Run one instance on this Dask worker and return its outcome (see ``_messages``)."""
    from distributed import get_worker

    from ..._lifecycle.running import encode_error  # the parent decodes it with decode_error

    worker: Any = get_worker()
    session, instance_id = spec.session_id, spec.instance_id
    outbox = _Outbox(worker, topic_name(session), instance_id)
    router = _get_router()
    backend = _enter_session(session)
    control, sink = handler_task_control(spec.task_name, instance_id)
    # Settled by the local backend here; cancelled only through the stop and kill Events.
    future: Future[Any] = Future(description=f"instance {instance_id} of task {spec.task_name!r}")
    job = Job(
        instance_id,
        spec.task_name,  # the task itself is unpickled only in the task's process
        payload,
        future,
        lambda _job: None,
        control,
        sink,
        timeout=spec.timeout,
        fresh_process=spec.fresh_process,
        stop_grace=spec.stop_grace,
        attempt=spec.attempt,
    )

    interval = spec.resource_interval
    reporter = _ResourceReporter(outbox, interval) if interval is not None else None

    def on_state(state: str, error: Optional[BaseException]) -> None:
        if state == "running":
            if reporter is not None:
                reporter.start(sink.process_id)
            outbox.put(Running(worker.address, os.getpid(), sink.process_id))

    future.listener = on_state
    router.outboxes[id(control)] = outbox
    watcher: Optional[concurrent.futures.Future[None]] = None
    key = worker.get_current_task()
    try:
        try:
            backend.prepare(job)
        except Exception as exc:
            return Envelope("error", encode_error(exc, f"on the Dask worker {worker.address}"), outbox.sent)
        backend.launch(job)
        names = (stop_event_name(session, instance_id), kill_event_name(session, instance_id))
        watcher = asyncio.run_coroutine_threadsafe(
            _watch(worker, key, names, backend, job, spec.stop_grace),
            worker.loop.asyncio_loop,
        )
        if reporter is None:
            future.wait_done()
        else:
            reporter.wait(future)
    finally:
        if watcher is not None:
            watcher.cancel()
        del router.outboxes[id(control)]
        outbox.flush()
        _leave_session(session, close=_unwanted(worker, key))
    stopped = job.stop_requested
    if future.status == "completed":
        return Envelope("result", future.result(), outbox.sent, stopped)
    if future.status == "cancelled":
        return Envelope("cancelled", None, outbox.sent, stopped)
    error = future.error
    assert error is not None
    return Envelope("error", encode_error(error, "in the task"), outbox.sent, stopped)


async def close_session(session_id: str) -> None:
    """End the session's warm task processes on this worker (``client.run`` calls it)."""
    with _setup_lock:
        record = _backends.pop(session_id, None)
    if record is not None:
        await asyncio.get_running_loop().run_in_executor(None, record.backend.shutdown)
