"""The parent's record of one instance on the local backend, and how it ends.

An :class:`Execution` is created when its instance can run — in ``start()`` when a slot
is free at once, else when its turn comes. It is given a :class:`~._spawn.WorkerProcess`
and a control block (a slot of that worker's arena) when the dispatcher assigns it a
worker, is fed frames and progress by the dispatcher thread, and turns the worker's last
message — or its death — into the future's one final state. The worker itself (its
descriptors, its reaping, its reuse) belongs to the dispatcher.
"""

from __future__ import annotations

import pickle
import signal
import time
from typing import Any, Dict, List, Optional, Tuple, Union

from ..._callbacks import call_user_code
from ...control import deliver_progress, deliver_status, get_task_control_handler
from ...exceptions import TaskFailedError, TaskTimeoutError, WorkerDiedError
from ..base import Job
from . import _protocol
from ._platform import signal_process_tree, snapshot_tree
from ._shm import ControlBlock
from ._spawn import WorkerProcess

#: Seconds between SIGTERM and SIGKILL of a task that ignored its stop request.
TERMINATE_GRACE = 0.5
#: Seconds a worker may take to exit after sending its result before it is killed
#: (atexit handlers run there; one that hangs must not hold the future forever).
EXIT_GRACE = 5.0

_INF = float("inf")
_HANDLER_LOG = "the task control handler's log()"


class Execution:
    """One instance's parent-side state (touched only by the dispatcher thread, except
    for the stop request fields, which other threads set before waking it)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.block: Optional[ControlBlock] = None  # given with the worker
        self.control = job.control
        self.worker: Optional[WorkerProcess] = None
        self.worker_idle = False  # the worker said IDLE after the outcome: it is reusable
        self.outcome: Optional[_protocol.ReceivedFrame] = None
        self.timeout_deadline = _INF  # monotonic: stop request when passed
        self.stop_deadline = _INF  # monotonic: SIGTERM when passed
        self.exit_deadline = _INF  # monotonic: SIGTERM when passed (result in, no exit)
        self.kill_deadline = _INF  # monotonic: SIGKILL when passed
        self.timed_out = False
        self.terminated_by_us = False
        self.descendants: List[Any] = []  # the tree as it was when we terminated it
        self.concluded = False  # job.on_finished was called: the slot is free again
        self._delivered: Tuple[Optional[float], Optional[str]] = (None, None)
        self._seen_seq = 0
        if job.stop_requested:  # asked to stop between leaving the queue and now
            self.request_stop(job.stop_grace)

    def bind(self, worker: WorkerProcess, block: ControlBlock) -> None:
        """It runs on ``worker``, its control block a slot of that worker's arena."""
        self.worker, self.block = worker, block
        if self.job.stop_requested:  # asked before it had a block: the flag goes up now
            block.request_stop()

    def unbind(self) -> None:
        """Its worker died before taking it: give the slot back, to run elsewhere."""
        self.release()
        self.worker = None

    # -- stopping ------------------------------------------------------------------------
    def running(self, now: float) -> None:
        """The worker is registered with the dispatcher: its timeout starts counting."""
        if self.job.timeout is not None:
            self.timeout_deadline = now + self.job.timeout

    def request_stop(self, grace: float) -> None:
        """Raise the stop flag now; the dispatcher terminates after ``grace`` seconds."""
        self.job.stop_requested = True
        self.job.times.mark_stop_requested()
        block = self.block
        if block is not None:  # else bind() raises the flag
            block.request_stop()
        self.stop_deadline = min(self.stop_deadline, time.monotonic() + max(0.0, grace))

    def escalate(self, now: float) -> None:
        """Act on whichever deadline has passed: timeout, stop grace, exit grace, kill."""
        worker = self.worker
        if worker is None:
            return
        if now >= self.kill_deadline:
            self.kill_deadline = _INF
            signal_process_tree(worker.pid, signal.SIGKILL, self.descendants)
        elif self.outcome is not None:
            if now >= self.exit_deadline and self.kill_deadline == _INF:
                self._terminate(now)
        elif now >= self.stop_deadline:
            self.stop_deadline = _INF
            self.terminated_by_us = True
            self._terminate(now)
        elif now >= self.timeout_deadline:
            self.timeout_deadline = _INF
            self.timed_out = True
            self.request_stop(self.job.stop_grace)

    def _terminate(self, now: float) -> None:
        assert self.worker is not None
        self.descendants = snapshot_tree(self.worker.pid)
        signal_process_tree(self.worker.pid, signal.SIGTERM, self.descendants)
        self.kill_deadline = now + TERMINATE_GRACE

    def next_deadline(self) -> float:
        """When :meth:`escalate` next has something to do (``inf``: nothing planned)."""
        if self.worker is None:
            return _INF
        if self.outcome is not None:
            return min(self.kill_deadline, self.exit_deadline)
        return min(self.kill_deadline, self.stop_deadline, self.timeout_deadline)

    # -- what the worker sends ------------------------------------------------------------
    def handle_frames(self, frames: List[_protocol.ReceivedFrame]) -> None:
        """Act on frames the worker sent for this instance."""
        for kind, body in frames:
            if kind == _protocol.LOGS:
                self._deliver_logs(body)
            elif kind in (_protocol.RESULT, _protocol.ERROR):
                self.outcome = (kind, body)
                self.exit_deadline = time.monotonic() + EXIT_GRACE
            elif kind == _protocol.IDLE:
                self.worker_idle = True

    def _deliver_logs(self, body: Union[bytes, bytearray]) -> None:
        log, control = get_task_control_handler().log, self.control
        for message, level, extra, _created in pickle.loads(body):
            if extra:
                call_user_code(log, control, message, level, description=_HANDLER_LOG, **extra)
            else:
                call_user_code(log, control, message, level, description=_HANDLER_LOG)

    def deliver_progress(self) -> None:
        """Hand the handler what changed in the control block since the last call."""
        block = self.block
        if block is None:
            return
        times = self.job.times
        if times.running_ns is None:
            times.running_ns = block.running_ns
        seq = block.seq
        if seq == self._seen_seq:
            return
        snapshot = block.read()
        if snapshot is None:
            return
        self._seen_seq = snapshot.seq
        handler = get_task_control_handler()
        if snapshot.progress is not None and snapshot.progress != self._delivered[0]:
            call_user_code(
                deliver_progress,
                handler,
                self.control,
                snapshot.progress,
                snapshot.status,
                description="the task control handler's update_progress()",
            )
        elif snapshot.status is not None and snapshot.status != self._delivered[1]:
            call_user_code(
                deliver_status,
                handler,
                self.control,
                snapshot.status,
                description="the task control handler's update_status()",
            )
        self._delivered = (snapshot.progress, snapshot.status)

    # -- the end ---------------------------------------------------------------------------
    def finish(self, returncode: Optional[int]) -> None:
        """The worker exited (``returncode``) or went idle (None): deliver what is left,
        release the block, free the slot and resolve the future."""
        self.deliver_progress()
        self.release()
        # Resolve first, then free the slot: the next instance is reported running
        # only after this one's final state, so no one sees max_parallel exceeded.
        self._resolve(returncode)
        self._conclude()

    def _conclude(self) -> None:
        """Free the job's slot, once; the job no longer refers back to us (no cycle left)."""
        if not self.concluded:
            self.concluded = True
            self.job.backend_state = None
            self.job.on_finished(self.job)

    def _resolve(self, returncode: Optional[int]) -> None:
        future, job = self.job.future, self.job
        assert self.worker is not None
        kind, body = self.outcome if self.outcome is not None else (None, b"")
        if self.timed_out and (kind == _protocol.RESULT or self.terminated_by_us):
            assert job.timeout is not None
            future.set_error(TaskTimeoutError(job.description, job.timeout, self.terminated_by_us))
        elif self.terminated_by_us:  # whatever it sent after our SIGTERM (a handler's SystemExit)
            future.set_cancelled()
        elif kind == _protocol.RESULT:
            try:
                value = pickle.loads(body)
            except BaseException as exc:
                future.set_error(
                    TaskFailedError(
                        type(exc).__name__,
                        str(exc),
                        "",
                        f"the result of {job.description} could not be unpickled in the parent",
                    )
                )
            else:
                future.set_result(value)
        elif kind == _protocol.ERROR:
            future.set_error(decode_error(body, job))
        else:
            future.set_error(WorkerDiedError(job.task.name, self.worker.pid, returncode))

    def fail(self, error: BaseException) -> None:
        """It cannot run or go on (no worker could be started, the dispatcher died):
        fail the future (if nothing else ended it), free the slot."""
        self.release()
        self.job.future.set_error(error)
        self._conclude()

    def release(self) -> None:
        """Give the control block's slot back to its worker's arena (idempotent)."""
        block, self.block = self.block, None
        if block is not None:
            block.close()


def decode_error(body: Union[bytes, bytearray], job: Job) -> BaseException:
    """Turn an ERROR frame into the exception ``result()`` raises."""
    info: Dict[str, Any] = pickle.loads(body)
    reason = f"{job.description} raised it {info['phase']}"
    exc: Optional[BaseException] = None
    if info["exception"] is not None:
        try:
            exc = pickle.loads(info["exception"])
        except BaseException as load_exc:
            reason += f"; it could not be unpickled in the parent ({type(load_exc).__name__}: {load_exc})"
    else:
        reason += f"; it could not be pickled in the worker ({info['pickle_error']})"
    if exc is not None and info["phase"] != "in the task":
        exc = _with_context(exc, info, reason)
    if exc is not None and not isinstance(exc, Exception):
        # SystemExit, KeyboardInterrupt, GeneratorExit: re-raising them in the parent
        # would exit or interrupt the caller's program. Report them instead.
        reason += "; it is reported as TaskFailedError rather than raised in the parent"
        exc = None
    if exc is None:
        return TaskFailedError(info["type_name"], info["message"], info["traceback"], reason)
    return exc


def _with_context(exc: BaseException, info: Dict[str, Any], reason: str) -> BaseException:
    """An error outside the task body (loading arguments, pickling the result) is
    wrapped so its message says where it happened; the original is the cause."""
    wrapped = TaskFailedError(info["type_name"], info["message"], info["traceback"], reason)
    wrapped.__cause__ = exc
    return wrapped
