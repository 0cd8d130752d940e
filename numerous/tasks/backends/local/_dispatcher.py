"""The dispatcher thread: one per local backend, owning its workers and waiting on all.

It multiplexes, in one ``selectors`` set: each worker's result pipe, each worker's exit
handle (a pidfd: readable the moment the worker dies, whoever still holds its pipe),
and a wake-up pipe that other threads use to hand it work. Between events it polls the
control blocks for progress, enforces stop deadlines and reaps what dead workers' trees
left behind. Every handler call and every future resolution of the local backend happens
here — or on a caller's thread that waits in ``result()`` for an instance and reads that
instance's worker pipe itself (:meth:`LocalDispatcher.wait_in_caller`), one thread at a
time (the *turn*) — so each instance's records reach the handler in order and before its
future resolves. Nothing a handler or callback raises stops the thread (see ``_callbacks``); if
the thread dies anyway (a bug of ours), every worker is killed and every unfinished
future fails with an error that says so, and later launches fail at once: the session
can still be left.

Workers are kept warm: a worker that finished a job cleanly says IDLE and waits for the
next one. Rules: every job gets a fresh control block; a worker that was killed, crashed,
or left a thread or a process behind is never reused (it exits; a worker finds a child
process left only after it said IDLE or CLAIMED, so the job it was given or took meanwhile
never starts there and runs elsewhere, see :func:`_never_started`); a task asking for a
``fresh_process`` gets a new worker that is not reused after it; at most
:data:`MAX_IDLE_WORKERS` wait; and they all end with the session.

While a session's workers run instances of one task and more wait, the next ones are
queued ahead in the lane (see ``_lane``): a worker that ends one takes the next at once,
and its ``CLAIMED`` frame hands the slot of the one that ended to the one it took.
"""

from __future__ import annotations

import collections
import errno
import functools
import logging
import math
import os
import select
import selectors
import signal
import sys
import threading
import time
import weakref
from typing import Any, Callable, Deque, Dict, List, Optional, Set, Tuple

from ..._callbacks import call_user_code, run_dispatcher, swap_served_owner
from ..._interrupt_gate import InterruptGate, gate_for_this_thread, remove_gate
from ...exceptions import BackendError, TaskError
from ...sizes import MEMORY_POLL_INTERVAL
from ..base import Job, Successors
from . import _protocol
from ._execution import LocalExecution
from ._lane import Lane, open_lane
from ._platform import group_has_members, reap_orphans, signal_process_tree, snapshot_tree
from ._shm import ControlBlock
from ._spawn import DESCRIPTORS_PER_WORKER, WorkerProcess, run_on_spawner_thread, start_worker_process

logger = logging.getLogger("numerous.tasks")

#: A worker as this dispatcher uses it: running an LocalExecution.
Worker = WorkerProcess[LocalExecution]

#: Seconds between progress polls of running instances: faster than a person can
#: read a progress bar, and cheap (one 8-byte read per instance when nothing changed).
PROGRESS_POLL_INTERVAL = 0.05
#: How long to keep reaping what a finished worker's tree left behind: killed
#: processes die in microseconds, but reach us only once their own parent is gone.
ORPHAN_REAP_WINDOW = 2.0
_ORPHAN_POLL_INTERVAL = 0.01
#: Idle workers a session keeps for reuse; more than the machine has cores would
#: only hold memory.
MAX_IDLE_WORKERS = max(2, os.cpu_count() or 2)
#: Jobs queued ahead in the lane per worker that may take from it: enough that a worker
#: ending tiny tasks finds the next one while the dispatcher catches up (the lane holds
#: at most what its pipe does, 64).
LANE_DEPTH_PER_WORKER = 32
#: Longest a caller's thread reading its worker's pipe sleeps before it looks again at
#: the future (settled meanwhile by the dispatcher: the worker died, say, with a pipe
#: that a process it left behind still holds open).
CALLER_POLL_INTERVAL = 0.1
_INF = float("inf")
_A_STEP = "numerous.tasks dispatcher: a step"  # how a step that raised is logged


class LocalDispatcher:
    """Assigns executions to workers and watches both until the end.

    Args:
        owner: the backend it serves (futures of that backend cannot be waited for on
            this thread: see ``numerous.tasks._callbacks``).
    """

    def __init__(self, owner: object = None, session: Optional[Successors] = None) -> None:
        self._owner = owner
        # The lane (see _lane), with the session that picks what goes into it.
        lane_ends = open_lane() if session is not None else None
        self._lane: Optional[Lane[LocalExecution]] = None if lane_ends is None else Lane(*lane_ends)
        self._session_ref = weakref.ref(session) if session is not None else None
        self._lane_lock = threading.Lock()  # which task's instances the lane is for
        self._reconcile_due = False  # a worker died with the lane's jobs unaccounted for
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._inbox: Deque[Callable[[], None]] = collections.deque()
        self._workers: Dict[int, Worker] = {}  # every live worker, by pid
        self._idle: List[Worker] = []  # reusable workers waiting for a job
        self._idle_lock = threading.Lock()  # callers take idle workers without a hop here
        self._spawning = 0  # workers asked of the spawner thread, not yet registered
        # Process groups of finished workers whose members we still reap: group id ->
        # (wall time the worker was reaped, monotonic time we give up).
        self._orphan_groups: Dict[int, Tuple[float, float]] = {}
        self._killed: Dict[int, Any] = {}  # psutil handles of terminated trees
        self._reap_until = 0.0
        self._memory_due = 0.0  # when running instances' memory is next read
        self._closing = False
        # When the loop's current wait ends (monotonic; inf: it waits for an event alone,
        # -inf: it is not waiting). Written with the idle lock held, together with the
        # look at the busy workers that decided it: see wake_by().
        self._wake_at = -_INF
        # What the thread's death must clean up, kept by every thread that hands it work:
        # executions launched and not yet finished, workers spawned and not yet registered.
        self._state_lock = threading.Lock()
        self._death: Optional[BaseException] = None  # why the thread died, once it has
        self._launched: Set[LocalExecution] = set()
        self._unregistered: Set[Worker] = set()
        # Held by whichever thread handles what workers sent: the dispatcher thread, but
        # for its wait in select(), or a caller's thread reading its worker's pipe.
        self._turn = threading.Lock()
        # Orders the changes to which workers' result pipes the selector watches (a
        # launch, on a caller's thread, puts back one that a caller's wait took out).
        self._watch_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="numerous-dispatcher", daemon=True)
        self._thread.start()

    # -- called from other threads -------------------------------------------------------
    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the dispatcher thread.

        Raises:
            TaskError: the dispatcher thread has died.
        """
        with self._state_lock:
            self._raise_if_dead()
            self._inbox.append(fn)
        self.wake()

    def _raise_if_dead(self) -> None:
        """Raise if the thread has died (call with the state lock held)."""
        if self._death is not None:
            raise TaskError(f"the local backend's dispatcher thread has died ({_describe(self._death)})")

    def wake(self) -> None:
        """Make the dispatcher look at its inbox and deadlines now."""
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass

    def wake_by(self, deadline: float) -> None:
        """Make the dispatcher look at its work no later than ``deadline`` (monotonic):
        wake it only if its current wait would outlast that. A warm launch or a stop
        then costs no thread switch while the loop polls its running instances anyway."""
        with self._idle_lock:
            late = deadline < self._wake_at
        if late:
            self.wake()

    def close(self) -> None:
        """Let idle workers go, stop the thread once nothing is left, free descriptors;
        put back the SIGINT handler that :meth:`wait_in_caller` stood in for."""
        remove_gate()
        try:
            self.call_soon(self._begin_closing)
        except TaskError:  # it died, and killed every worker it knew of; a worker still
            spawned = threading.Event()  # being spawned is killed by the spawner thread,
            run_on_spawner_thread(spawned.set)  # which runs in order: wait for it
            spawned.wait()
        self._thread.join()
        if self._lane is not None:
            self._lane.close()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _take_idle(self) -> Optional[Worker]:
        """An idle worker (call with the idle lock held). One that died while idle is
        taken off the list by its exit handler; if it dies just as it is given a job,
        that handler runs the job elsewhere (see :func:`_never_started`), so no
        liveness check (a system call per job) is needed here."""
        if self._idle and not self._closing:
            return self._idle.pop()
        return None

    def _run_on_idle(self, execution: LocalExecution) -> bool:
        """Give ``execution`` to an idle worker if it may have one and one is free."""
        if execution.job.fresh_process:
            return False
        with self._idle_lock:
            worker = self._take_idle()
            if worker is None:
                return False
            block = worker.arena.take()
            if block is None:  # every slot still held (never with one job at a time): let it go
                self._retire(worker)
                return False
            self._bind(worker, execution, block)
        self._write_job(worker, execution, block.slot)
        self._watch(worker)  # after the write: the worker starts meanwhile
        return True

    def launch(self, execution: LocalExecution) -> None:
        """Run ``execution``: on an idle worker straight from the calling thread (no
        thread hop on the way to a warm start), else on a new worker via this thread.

        Raises:
            TaskError: the dispatcher thread has died (nothing was started).
        """
        with self._state_lock:
            self._raise_if_dead()
            self._launched.add(execution)
        execution.job.future.wait_in_caller = functools.partial(self.wait_in_caller, execution)
        if not self._run_on_idle(execution):
            self.call_soon(lambda: self._spawn_for(execution))
        elif threading.current_thread() is not self._thread:  # its progress and deadlines
            self.wake_by(min(execution.next_deadline(), time.monotonic() + PROGRESS_POLL_INTERVAL))

    def wait_in_caller(self, execution: LocalExecution, deadline: Optional[float]) -> bool:
        """Wait for ``execution``'s future on the calling thread, reading its worker's
        result pipe here (``Future.result()`` calls this): the worker's write then wakes
        this thread alone, where it woke the dispatcher thread, which woke this one.

        Meanwhile the pipe is out of the dispatcher's selector, and what arrives on it is
        handled here as the dispatcher would (with its turn held: one thread at a time,
        in order; with Ctrl-C held back until the step is done). Returns True once the
        future is final; False to wait for it the usual way: the instance has no worker
        (yet, or any more), another thread reads that worker, its pipe closed, or
        ``deadline`` (monotonic) passed.
        """
        future = execution.job.future
        worker = execution.worker
        if worker is None or worker.helped or self._death is not None:  # looked at again below
            return bool(future.done)
        gate = gate_for_this_thread()
        gate.hold()
        try:
            with self._turn:
                if (
                    worker is not execution.worker
                    or worker.execution is not execution
                    or worker.helped
                    or worker.result_fd < 0
                    or worker.reader.eof
                    or self._death is not None
                    or future.done
                ):
                    return bool(future.done)
                fd = worker.result_fd
                with self._watch_lock:
                    self._unwatch(worker)
                    worker.helped = True
            try:
                return self._read_until_final(worker, execution, fd, deadline, gate)
            finally:
                with self._turn:
                    with self._watch_lock:
                        worker.helped = False
                    if worker.close_deferred:
                        worker.close()
                    elif worker.execution is not None:  # an idle one is watched by its next launch
                        self._watch(worker)
        finally:
            gate.release()  # a Ctrl-C held meanwhile is raised here

    def _read_until_final(
        self, worker: Worker, execution: LocalExecution, fd: int, deadline: Optional[float], gate: InterruptGate
    ) -> bool:
        """:meth:`wait_in_caller`'s loop, called with Ctrl-C held: wait for the pipe
        (Ctrl-C may end the wait), handle what came, until the future is final or the
        wait is over."""
        future = execution.job.future
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while True:
            wait = CALLER_POLL_INTERVAL if deadline is None else min(CALLER_POLL_INTERVAL, deadline - time.monotonic())
            if wait > 0:
                try:
                    gate.release()  # a Ctrl-C held during the last step is raised here
                    poller.poll(math.ceil(wait * 1000))
                finally:
                    gate.hold()
            with self._turn:
                if not worker.close_deferred and worker.result_fd == fd and not worker.reader.eof:
                    served = swap_served_owner(self._owner)  # its callbacks may not wait here either
                    try:
                        call_user_code(self._read_for_caller, worker, execution, description=_A_STEP)
                    finally:
                        swap_served_owner(served)
            if future.done:
                return True
            if worker.execution is not execution or worker.close_deferred or worker.reader.eof:
                return False
            if deadline is not None and time.monotonic() >= deadline:
                return False

    def _read_for_caller(self, worker: Worker, execution: LocalExecution) -> None:
        """Handle what ``worker`` sent, on a caller's thread, and what the dispatcher's
        loop would do after it: keep the lane filled, and be woken for the deadlines
        and progress of an instance the worker took from it."""
        self._read_worker(worker)
        successor = worker.execution
        if successor is not None and worker.lane_right and self._lane is not None and self._lane.task is not None:
            self.refill_lane()  # it took the next from the lane (an idle one takes none)
        if successor is not None and successor is not execution:
            self.wake_by(min(successor.next_deadline(), time.monotonic() + PROGRESS_POLL_INTERVAL))

    # -- on the dispatcher thread: assigning work ------------------------------------------
    def _spawn_for(self, execution: LocalExecution) -> None:
        """Start a new worker for ``execution`` (an idle one may have come free meanwhile)."""
        if self._run_on_idle(execution):
            return
        self._spawning += 1
        reusable = not execution.job.fresh_process

        lane_fd = self._lane.read_end if reusable and self._lane is not None else -1

        def spawn() -> None:  # on the spawner thread
            try:
                worker = start_worker_process(reusable, lane_fd)
            except Exception as exc:
                error = start_failure(exc, execution.job.description)
                try:
                    self.call_soon(lambda: self._spawn_failed(execution, error))
                except TaskError:  # died meanwhile: its death failed the execution
                    pass
                return
            with self._state_lock:
                handed_over = self._death is None
                if handed_over:
                    self._unregistered.add(worker)
                    self._inbox.append(lambda: self._spawned(worker, execution))
            if handed_over:
                self.wake()
            else:  # died meanwhile, before it could know of this worker
                _kill_and_reap(worker)

        run_on_spawner_thread(spawn)

    def _spawn_failed(self, execution: LocalExecution, error: BaseException) -> None:
        self._spawning -= 1
        with self._state_lock:
            self._launched.discard(execution)
        execution.fail(error)

    def _finish(self, execution: LocalExecution, returncode: Optional[int]) -> None:
        with self._state_lock:
            self._launched.discard(execution)
        execution.finish(returncode)

    def _spawned(self, worker: Worker, execution: LocalExecution) -> None:
        self._spawning -= 1
        self._workers[worker.pid] = worker
        with self._state_lock:
            self._unregistered.discard(worker)
        self._orphan_groups.pop(worker.pid, None)  # the number is free again, so unused
        if worker.reads_lane and self._lane is not None:
            self._lane.watch(worker.arena)
        self._watch(worker)
        if worker.exit_handle is not None:
            self._selector.register(worker.exit_handle, selectors.EVENT_READ, lambda: self._on_exit(worker))
        block = worker.arena.take()
        assert block is not None  # a new worker's arena is all free
        self._bind(worker, execution, block)
        self._write_job(worker, execution, block.slot)

    def _bind(self, worker: Worker, execution: LocalExecution, block: ControlBlock, from_lane: bool = False) -> None:
        # A job from the lane is of the lane's task and hands its slot on (put checked it).
        worker.lane_right = from_lane or self._may_take_from_lane(worker, execution.job)
        worker.execution = execution
        worker.jobs_run += 1
        execution.bind(worker, block)
        execution.job.sink.process_id = worker.pid
        execution.running(time.monotonic())
        execution.job.future.set_running()  # handlers hear "running" with the pid known

    def _write_job(self, worker: Worker, execution: LocalExecution, slot: int) -> None:
        job = execution.job
        message = _protocol.job_message(
            job.instance_id, slot, job.payload, worker.reusable, job.attempt, worker.sent_environment, worker.lane_right
        )
        worker.send(_protocol.JOB, message.encode())  # if it has died, its exit handler reruns or fails the job
        if worker.lane_right and threading.current_thread() is self._thread:
            self.refill_lane()

    # -- the lane (see _lane) --------------------------------------------------------------------
    def _successors(self) -> Optional[Successors]:
        """The session that picks what the lane queues (None: none, or it is gone)."""
        return None if self._session_ref is None else self._session_ref()

    def _may_take_from_lane(self, worker: Worker, job: Job) -> bool:
        """Whether ``worker``, given ``job``, may take its next job from the lane: the
        lane is for instances of this job's task (or free to become so) and the job
        hands its slot on when it ends (no fresh process, no retries)."""
        lane = self._lane
        if lane is None or not worker.reads_lane or not _hands_its_slot_on(job):
            return False
        with self._lane_lock:
            if lane.task is not job.task:
                if not lane.idle or any(w.lane_right for w in list(self._workers.values())):
                    return False
                lane.task = job.task
            return True

    def refill_lane(self) -> None:
        """Queue ahead the instances that follow the running ones of the lane's task
        (on any thread: the session's lock and the lane's keep the queue in order)."""
        lane, session = self._lane, self._successors()
        if lane is None or session is None or lane.task is None:
            return
        takers = [w for w in list(self._workers.values()) if w.lane_right and w.execution is not None]
        wanted = LANE_DEPTH_PER_WORKER * len(takers)
        if len(lane) >= wanted:
            return
        running = takers[0].execution
        if running is None:  # it ended meanwhile (another thread)
            return
        session._reserve_successors(running.job, wanted - len(lane), functools.partial(self._put_in_lane, lane))

    def _put_in_lane(self, lane: Lane[LocalExecution], jobs: List[Job]) -> int:
        """Queue prepared jobs ahead, in one write (the session's _reserve_successors
        calls this): up to the first that must not go there; how many went."""
        eligible = []
        for job in jobs:
            if not _hands_its_slot_on(job) or job.task is not lane.task:
                break
            eligible.append(job)
        if not eligible:
            return 0
        cwd, sys_path = os.getcwd(), list(sys.path)
        executions: List[LocalExecution] = [job.backend_state for job in eligible]
        for execution in executions:
            execution.job.future.wait_in_caller = functools.partial(self.wait_in_caller, execution)
        bodies = [
            (
                execution,
                _protocol.JobMessage(job.instance_id, -1, job.payload, cwd, sys_path, True, job.attempt, True).encode(),
            )
            for job, execution in zip(eligible, executions)
        ]
        with self._state_lock:
            if self._death is not None:
                return 0
            self._launched.update(executions)
        queued = lane.put(bodies, cwd, sys_path)
        if queued < len(executions):
            with self._state_lock:
                self._launched.difference_update(executions[queued:])
        return queued

    def revoke_queued(self) -> List[Job]:
        """Take back every job queued ahead that no worker has taken (any thread; the
        session calls it with its lock held)."""
        if self._lane is None:
            return []
        revoked = self._lane.revoke()
        with self._state_lock:
            self._launched.difference_update(revoked)
        return [execution.job for execution in revoked]

    def _claimed(self, worker: Worker, ended: LocalExecution, number: int, slot: int) -> None:
        """``worker`` ended ``ended`` and took job ``number`` from the lane into claim
        slot ``slot``: the ended job hands its slot to the taken one, is settled, and
        the taken one is bound to the worker (reported running after that settles)."""
        assert self._lane is not None
        block = worker.arena.claimed_block(slot)
        entry = self._lane.claimed(number)
        session = self._successors()
        if entry is None or session is None:  # never happens: a worker we cannot trust any more
            block.close()
            logger.error("numerous.tasks: worker %d claimed an unknown job %d; killing it", worker.pid, number)
            signal_process_tree(worker.pid, signal.SIGKILL, snapshot_tree(worker.pid))
            return
        worker.sent_environment.set(entry.cwd, entry.sys_path)
        self._follow_on(session, worker, ended, entry.execution, block)

    def _hand_first_queued(self, worker: Worker, ended: LocalExecution) -> bool:
        """``worker`` went idle as jobs were queued for it to take: give it the first
        one, which takes over the slot of the one it ended (False: none was left)."""
        assert self._lane is not None
        entry = self._lane.take_first()
        session = self._successors()
        if entry is None or session is None:
            return False
        block = worker.arena.take()
        if block is None:  # never with one job at a time: let the session take it back
            session._give_back_reserved([entry.execution.job])
            return False
        self._follow_on(session, worker, ended, entry.execution, block)
        self._write_job(worker, entry.execution, block.slot)
        return True

    def _follow_on(
        self, session: Successors, worker: Worker, ended: LocalExecution, successor: LocalExecution, block: ControlBlock
    ) -> None:
        """``successor`` follows ``ended`` on ``worker`` in ``block``: it takes the ended
        one's slot, the ended one is settled, then the successor is reported running."""
        session._hand_over(ended.job, successor.job)
        worker.execution = None
        self._finish(ended, None)
        self._bind(worker, successor, block, from_lane=True)

    def _consume(self, worker: Worker, frames: List[_protocol.ReceivedFrame]) -> None:
        """Hand a worker's frames to what they are for: each ``CLAIMED`` ends the job
        before it and begins the one it names."""
        start = 0
        for i, (kind, body) in enumerate(frames):
            if kind == _protocol.CLAIMED:
                ended = worker.execution
                assert ended is not None
                ended.handle_frames(frames[start:i])
                number, slot = _protocol.CLAIM.unpack(body)
                self._claimed(worker, ended, number, slot)
                start = i + 1
        execution = worker.execution
        if execution is not None:
            execution.handle_frames(frames[start:] if start else frames)

    def _reconcile_lane(self) -> None:
        """After a worker that reads the lane died: launch elsewhere what it took from
        the lane and never said it took (those never started)."""
        lane, session = self._lane, self._successors()
        if lane is None or session is None:
            self._reconcile_due = False
            return
        readers = [w for w in self._workers.values() if w.reads_lane]
        lost = lane.reconcile(lambda: [word for w in readers for word in w.arena.claim_words()])
        self._reconcile_due = lost is None
        if lost:
            with self._state_lock:
                self._launched.difference_update(lost)
            session._give_back_reserved([execution.job for execution in lost])

    # -- on the dispatcher thread: what workers do -----------------------------------------
    def _watch(self, worker: Worker) -> None:
        """Have the selector watch ``worker``'s result pipe, unless it does, a caller's
        thread reads it, or the worker has exited or closed it (any thread)."""
        with self._watch_lock:
            if worker.watched or worker.helped or worker.exited or worker.result_fd < 0 or worker.reader.eof:
                return
            self._selector.register(
                worker.result_fd, selectors.EVENT_READ, functools.partial(self._on_readable, worker)
            )
            worker.watched = True

    def _unwatch(self, worker: Worker) -> None:
        """Stop the selector watching ``worker``'s result pipe (watch lock held)."""
        if worker.watched:
            self._selector.unregister(worker.result_fd)
            worker.watched = False

    def _on_readable(self, worker: Worker) -> None:
        # Its exit was handled earlier in the same batch of events, or a caller's thread
        # took its pipe over since the select() that reported it.
        if worker.result_fd < 0 or worker.helped:
            return
        self._read_worker(worker)

    def _read_worker(self, worker: Worker) -> None:
        """Handle what ``worker`` sent (with the turn held)."""
        self._consume(worker, worker.reader.read_available())
        execution = worker.execution
        if execution is not None and execution.worker_idle:
            self._job_done_worker_idle(worker, execution)
        if worker.reader.eof:  # stop watching a closed pipe; the exit handle decides
            with self._watch_lock:
                self._unwatch(worker)

    def _job_done_worker_idle(self, worker: Worker, execution: LocalExecution) -> None:
        if (
            worker.lane_right
            and self._lane is not None
            and len(self._lane)
            and self._hand_first_queued(worker, execution)
        ):
            return
        worker.execution = None
        worker.lane_right = False
        with self._idle_lock:  # idle before the future resolves: the next start() finds it
            keep = not self._closing and len(self._idle) < MAX_IDLE_WORKERS
            if keep:
                self._idle.append(worker)
        if not keep:
            self._retire(worker)
        self._finish(execution, None)

    @staticmethod
    def _retire(worker: Worker) -> None:
        worker.send(_protocol.EXIT, b"")

    def _on_exit(self, worker: Worker) -> None:
        del self._workers[worker.pid]
        with self._idle_lock:
            if worker in self._idle:
                self._idle.remove(worker)
        with self._watch_lock:
            worker.exited = True  # no launch watches its pipe again
            self._unwatch(worker)
        if worker.exit_handle is not None:
            self._selector.unregister(worker.exit_handle)
        self._consume(worker, worker.reader.read_available())  # all it wrote is in the pipe by now
        execution = worker.execution
        worker.lane_right = False
        if worker.reads_lane:  # it may have taken a job from the lane and died before saying so
            if self._lane is not None:
                self._lane.unwatch(worker.arena)
            self._reconcile_lane()
        # Nothing a task started outlives it: the worker's process group first (the
        # unreaped worker still holds the group's number, so it names nobody else) and,
        # if we terminated it, what of the tree left the group.
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except OSError:
            pass
        if execution is not None and execution.descendants:
            signal_process_tree(worker.pid, signal.SIGKILL, execution.descendants)
        returncode = worker.popen.wait()  # reaps exactly our own child
        if worker.helped:  # a caller's thread polls its pipe: it closes them as it leaves
            worker.close_deferred = True
        else:
            worker.close()
        now = time.monotonic()
        if group_has_members(worker.pid):
            self._orphan_groups[worker.pid] = (time.time(), now + ORPHAN_REAP_WINDOW)
        if execution is not None and _never_started(execution, worker):
            # An idle worker died just as it was given this job: run it elsewhere.
            worker.execution = None
            execution.unbind()
            self._spawn_for(execution)
        elif execution is not None:
            if execution.descendants:
                self._killed.update((p.pid, p) for p in execution.descendants)
                self._reap_until = now + ORPHAN_REAP_WINDOW
            worker.execution = None
            self._finish(execution, returncode)

    def _reap(self, now: float) -> None:
        groups = {group: reaped_at for group, (reaped_at, _) in self._orphan_groups.items()}
        reap_orphans(groups, self._killed)
        for group, (_, give_up) in list(self._orphan_groups.items()):
            if now >= give_up or not group_has_members(group):
                del self._orphan_groups[group]
        if now >= self._reap_until:
            self._killed.clear()
        else:  # those reaped (or gone) need no more looking after
            self._killed = {pid: p for pid, p in self._killed.items() if _still_there(p)}

    def _begin_closing(self) -> None:
        with self._idle_lock:
            self._closing = True
            idle, self._idle = self._idle, []
        for worker in idle:
            self._retire(worker)

    # -- the loop ---------------------------------------------------------------------------
    def _busy(self) -> List[LocalExecution]:
        return [w.execution for w in self._workers.values() if w.execution is not None]

    def _timeout(self, busy: List[LocalExecution]) -> Optional[float]:
        if self._orphan_groups or self._killed or self._reconcile_due:
            return _ORPHAN_POLL_INTERVAL
        if not busy:
            # With warm workers waiting, a start() may hand one a job at any moment,
            # from its own thread: polling as if one ran spares that start() waking this
            # thread (a thread switch it would wait for). With none, nothing can start
            # without a message here: wait for it.
            return PROGRESS_POLL_INTERVAL if self._idle else None
        now = time.monotonic()
        deadline = min(execution.next_deadline() for execution in busy)
        return max(0.0, min(PROGRESS_POLL_INTERVAL, deadline - now))

    def _finished(self) -> bool:
        return (
            self._closing and not self._workers and not self._spawning and not self._orphan_groups and not self._killed
        )

    def _run(self) -> None:
        run_dispatcher(self._owner, self._serve, self._die, "numerous.tasks dispatcher")

    def _die(self, cause: BaseException) -> None:
        """Kill every worker, fail every unfinished execution, refuse all later work."""
        with self._turn:  # no caller's thread is in the middle of handling a worker's frames
            self._die_in_turn(cause)

    def _die_in_turn(self, cause: BaseException) -> None:
        with self._state_lock:
            self._death = cause
            self._inbox.clear()
            executions, self._launched = list(self._launched), set()
            workers = list(self._workers.values()) + list(self._unregistered)
            self._unregistered = set()
        with self._idle_lock:
            self._closing = True
            self._idle = []
        for worker in workers:
            call_user_code(_kill_and_reap, worker, description="killing a worker of the dead dispatcher")
        self._workers.clear()
        for execution in executions:
            error = TaskError(
                f"{execution.job.description} was lost: the local backend's dispatcher thread died "
                f"({_describe(cause)}); its worker was killed"
            )
            call_user_code(execution.fail, error, description=f"failing {execution.job.description}")

    def _serve(self) -> None:
        with self._turn:
            self._serve_turns()

    def _serve_turns(self) -> None:
        """The loop, with the turn held but for the wait in select()."""
        while not self._finished():
            with self._idle_lock:  # a launch binds under it: either seen here, or it sees _wake_at
                timeout = self._timeout(self._busy())
                self._wake_at = _INF if timeout is None else time.monotonic() + timeout
            self._turn.release()
            try:
                events = self._selector.select(timeout)
            finally:
                self._turn.acquire()
            self._wake_at = -_INF
            for key, _ in events:
                if key.data is None:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    self._guarded(key.data)
            while self._inbox:
                self._guarded(self._inbox.popleft())
            now = time.monotonic()
            if self._orphan_groups or self._killed:
                self._guarded(functools.partial(self._reap, now))
            if self._reconcile_due:
                self._guarded(self._reconcile_lane)
            if self._lane is not None and self._lane.task is not None:
                self._guarded(self.refill_lane)
            read_memory = now >= self._memory_due
            if read_memory:
                self._memory_due = now + MEMORY_POLL_INTERVAL
            for worker in list(self._workers.values()):
                execution = worker.execution
                if execution is not None and worker.lane_right and execution.next_deadline() <= now:
                    # A stop step is due: first read what the worker sent, lest it ended
                    # this job and took the next from the lane (the step is not for that one).
                    if worker.result_fd >= 0:  # even one a caller's thread reads (it looks again)
                        self._guarded(functools.partial(self._read_worker, worker))
                    execution = worker.execution
                if execution is not None:
                    execution.deliver_progress()
                    execution.escalate(now)
                    if read_memory:
                        self._guarded(execution.check_memory)
                if worker.exit_handle is None and worker.popen.poll() is not None:
                    self._guarded(functools.partial(self._on_exit, worker))  # no pidfd: polled

    @staticmethod
    def _guarded(fn: Callable[[], None]) -> None:
        # The dispatcher must outlive any one instance's trouble, and any callback's.
        call_user_code(fn, description=_A_STEP)


def _hands_its_slot_on(job: Job) -> bool:
    """Whether ``job`` may hand its slot to an instance queued in the lane as it ends:
    it runs on a reused worker (no fresh process), is not retried, and has a task."""
    return not job.fresh_process and job.retry is None and job.task is not None


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _kill_and_reap(worker: Worker) -> None:
    """SIGKILL a worker and its whole tree, reap it and close its descriptors."""
    signal_process_tree(worker.pid, signal.SIGKILL, snapshot_tree(worker.pid))
    worker.popen.wait()
    worker.close()


def _still_there(process: Any) -> bool:
    try:
        return bool(process.is_running())
    except Exception:
        return False


def _never_started(execution: LocalExecution, worker: Worker) -> bool:
    """Whether ``execution`` was bound to a reused worker that died before taking it.

    A worker takes a job by marking its control block taken, before it loads the
    arguments; a death after that (while loading them, say) is the job's own failure."""
    block = execution.block
    return (
        worker.jobs_run > 1
        and execution.outcome is None
        and not execution.job.stop_requested
        and block is not None
        and not block.taken
    )


def start_failure(error: Exception, description: str) -> Exception:
    """The error a future fails with when no worker could be started for it: one that
    names the cause (out of file descriptors, memory or processes) and what to do."""
    if not isinstance(error, OSError):
        return error
    if error.errno == errno.EMFILE:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        why = (
            f"too many open files (EMFILE): this process may have {soft} open at once "
            f"(RLIMIT_NOFILE) and each running worker holds {DESCRIPTORS_PER_WORKER} of them; "
            "raise the limit (`ulimit -n`, resource.setrlimit) or lower max_parallel"
        )
    elif error.errno == errno.ENFILE:
        why = "the system's table of open files is full (ENFILE)"
    elif error.errno in (errno.ENOMEM, errno.ENOSPC):
        why = f"no memory for its process or its control blocks ({error.strerror})"
    elif error.errno == errno.EAGAIN:
        why = "no process could be created (EAGAIN: the limit on processes, RLIMIT_NPROC, or memory)"
    else:
        why = f"{error.strerror or error}"
    wrapped = BackendError(f"cannot start a worker process for {description}: {why}")
    wrapped.__cause__ = error
    return wrapped
