"""The parent's record of one instance on the local backend, and how it ends.

An :class:`LocalExecution` is created when its instance can run — in ``start()`` when a slot
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
from typing import Any, List, Optional, Tuple, Union

from ..._callbacks import call_user_code, report_raised
from ..._lifecycle.deadlines import Step, StopLadder
from ..._lifecycle.messages import Outcome
from ..._lifecycle.outcomes import decode, failed
from ...control import deliver_progress, deliver_status, get_task_control_handler
from ...exceptions import MemoryLimitError, WorkerDiedError
from ..base import Job
from . import _protocol
from ._platform import signal_process_tree, snapshot_tree, tree_memory
from ._shm import ControlBlock
from ._spawn import WorkerProcess

#: Seconds between SIGTERM and SIGKILL of a task that ignored its stop request.
TERMINATE_GRACE = 0.5
#: Seconds a worker may take to exit after sending its result before it is killed
#: (atexit handlers run there; one that hangs must not hold the future forever).
EXIT_GRACE = 5.0

_INF = float("inf")
_HANDLER_LOG = "the task control handler's log()"


class LocalExecution:
    """One instance's parent-side state (touched only by the thread holding the
    dispatcher's turn, except for the stop request fields, which other threads set
    before waking it)."""

    def __init__(self, job: Job) -> None:
        self.job = job
        self.block: Optional[ControlBlock] = None  # given with the worker
        self.control = job.control
        self.worker: Optional[WorkerProcess[LocalExecution]] = None
        self.worker_idle = False  # the worker said IDLE after the outcome: it is reusable
        self.outcome: Optional[Outcome] = None
        self.ladder = StopLadder(terminate_grace=TERMINATE_GRACE, exit_grace=EXIT_GRACE)
        self.descendants: List[Any] = []  # the tree as it was when we terminated it
        self._delivered: Tuple[Optional[float], Optional[str]] = (None, None)
        self._seen_seq = 0
        self.peak_memory = 0  # bytes: the most its worker's tree held at a reading
        self.memory_error: Optional[MemoryLimitError] = None  # set when it was killed for it
        if job.stop_requested:  # asked to stop between leaving the queue and now
            self.request_stop(job.stop_grace)

    def bind(self, worker: WorkerProcess[LocalExecution], block: ControlBlock) -> None:
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
        self.ladder.start_clock(now, self.job.timeout)

    def request_stop(self, grace: float) -> None:
        """Raise the stop flag now; the dispatcher terminates after ``grace`` seconds."""
        self.job.stop_requested = True
        self.job.times.mark_stop_requested()
        block = self.block
        if block is not None:  # else bind() raises the flag
            block.request_stop()
        self.ladder.request_stop(time.monotonic(), grace)

    def escalate(self, now: float) -> None:
        """Take the step of the stop ladder whose deadline has passed, if any."""
        worker = self.worker
        if worker is None:
            return
        step = self.ladder.due(now)
        if step is Step.TIMEOUT:
            self.request_stop(self.job.stop_grace)
        elif step is Step.TERMINATE:
            self.descendants = snapshot_tree(worker.pid)
            signal_process_tree(worker.pid, signal.SIGTERM, self.descendants)
        elif step is Step.KILL:
            signal_process_tree(worker.pid, signal.SIGKILL, self.descendants)

    def check_memory(self) -> None:
        """Read its worker tree's memory; over the size's limit, kill the tree at once
        (it may be growing fast) and remember why: :meth:`finish` fails the future with it."""
        limit, worker = self.job.memory_limit, self.worker
        if limit is None or worker is None or self.memory_error is not None or self.outcome is not None:
            return
        used = tree_memory(worker.pid)
        self.peak_memory = max(self.peak_memory, used)
        if used <= limit:
            return
        self.memory_error = MemoryLimitError(self.job.description, self.job.size, limit, self.peak_memory)
        self.descendants = snapshot_tree(worker.pid)
        signal_process_tree(worker.pid, signal.SIGKILL, self.descendants)

    def next_deadline(self) -> float:
        """When :meth:`escalate` next has something to do (``inf``: nothing planned)."""
        return _INF if self.worker is None else self.ladder.next_at()

    # -- what the worker sends ------------------------------------------------------------
    def handle_frames(self, frames: List[_protocol.ReceivedFrame]) -> None:
        """Act on frames the worker sent for this instance."""
        for kind, body in frames:
            if kind == _protocol.LOGS:
                self._deliver_logs(body)
            elif kind in _protocol.OUTCOME_KINDS:
                self.outcome = Outcome(_protocol.OUTCOME_KINDS[kind], body)
                self.ladder.outcome_arrived(time.monotonic())
            elif kind == _protocol.IDLE:
                self.worker_idle = True

    def _deliver_logs(self, body: Union[bytes, bytearray]) -> None:
        log, control = get_task_control_handler().log, self.control
        records = iter(pickle.loads(body))  # flat: message, level, extras or None, ...
        triples = zip(records, records, records)
        # One try around the loop, not a call_user_code per record: after a raise,
        # the loop resumes with the next record of the same iterator.
        while True:
            try:
                for message, level, extra in triples:
                    if extra is None:
                        log(control, message, level)
                    else:
                        log(control, message, level, **extra)
                return
            except BaseException as exc:
                report_raised(exc, _HANDLER_LOG)

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
        give the block back, settle the future and free the slot."""
        self.deliver_progress()
        self.release()
        job = self.job
        if self.memory_error is not None:
            ending = failed(self.memory_error)
        elif self.outcome is not None:
            ending = decode(self.outcome, job.description)
        else:
            assert self.worker is not None
            ending = failed(WorkerDiedError(job.task_name, self.worker.pid, returncode))
        # Settled first, then the slot freed: the next instance is reported running only
        # after this one's final state, so no one sees max_parallel exceeded.
        job.finish(ending, timed_out=self.ladder.timed_out, terminated=self.ladder.terminated)

    def fail(self, error: BaseException) -> None:
        """It cannot run or go on (no worker could be started, the dispatcher died)."""
        self.release()
        self.job.fail(error)

    def release(self) -> None:
        """Give the control block's slot back to its worker's arena (idempotent)."""
        block, self.block = self.block, None
        if block is not None:
            block.close()
