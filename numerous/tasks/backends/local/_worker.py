"""The worker's entry point: what runs inside each spawned interpreter.

The parent starts ``python -c BOOTSTRAP job_fd result_fd parent_pid arena_fd lane_fd`` in
a new session (its own process group); ``lane_fd`` is the dispatcher's lane (``_lane``),
-1 for a worker that is not reused. BOOTSTRAP sets ``sys.path`` to the parent's and calls
:func:`main`. The user's ``__main__`` is never imported: functions defined there travel
by value inside the job. The worker maps its arena of control blocks once (``_shm``);
each job names its slot.

    main thread                            watchdog thread
    -----------                            ---------------
    map the arena (arena_fd)               poll(job_fd EOF, parent pidfd)
    read JOB from job_fd  ◀─────────┐      └─ parent gone: kill every descendant,
    mark its slot taken             │         then our whole process group
    load task + arguments           │
    mark the body's start time      │
    run the task ──▶ tc.log ──▶ log batcher thread ──▶ LOGS frames
                 ──▶ tc.update_progress/status ──▶ control block (seqlock)
    send RESULT or ERROR (tblib)    │
    clean (no threads or children   │
    left, job allows reuse)? ─ yes: a job in the lane for us? ─ yes: send
                             │      RESULT + CLAIMED, run it (back to "mark its slot")
                             │                                ─ no:  send IDLE
                             ─ no:  kill what the task left below us, exit

A worker is reused only when nothing of the last task is left running in it: no thread
it started, no child process. Module state the task changed stays, as with
``ProcessPoolExecutor``; a task that must not share a process asks for a fresh one.
"""

from __future__ import annotations

import atexit
import os
import pickle
import select
import signal
import sys
import threading
import types
from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Tuple, Union

from ..._lifecycle.messages import Outcome
from ..._lifecycle.running import Call, capture, load_call
from ...control import LOG_LEVELS, TaskControl, check_extras, check_level
from ...exceptions import InstanceEndedError
from . import _protocol, _worker_logging
from ._lane import read_packet
from ._platform import (
    become_child_subreaper,
    kill_own_descendants,
    open_exit_handle,
    reap_own_children,
    set_parent_death_signal,
)
from ._protocol import JobMessage
from ._shm import Arena, ControlBlock

EXIT_PARENT_GONE = 75  # the parent died before we could even start
_TRACEBACK_KEEP = 60  # frames kept at each end of a very deep traceback
_WATCHDOG_POLL_MS = 1000  # fallback re-check of getppid() where pidfd is missing
#: Seconds a worker that ends spends reaping the processes its task left (killed first).
_REAP_LIMIT = 2.0

_worker_pid = 0  # this worker's pid (set in main): a forked child of a task is not the worker
_dying = threading.Lock()  # held by whichever thread or handler takes the process down
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _die_with_group() -> None:
    """Our parent is gone: take every process below us down (those that left our
    process group or were re-parented to us included), then our group and ourselves.

    Runs in a signal handler (possibly several times over, nested: the parent's death
    sends SIGHUP more than once) and on the watchdog thread, maybe both at once: the
    first caller does the work, any other returns at once. It imports nothing (the
    handler may have interrupted an import) and kills the descendants first, so none
    survives our own death.
    """
    if not _dying.acquire(blocking=False):
        return
    kill_own_descendants()
    os.killpg(0, signal.SIGKILL)


def _is_worker() -> bool:
    """False in a process a task forked from the worker (it inherits our handlers)."""
    return os.getpid() == _worker_pid


def _default_action(signum: int) -> None:
    """What the signal would have done without our handler (in a forked child)."""
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _on_parent_death(signum: int, frame: Optional[types.FrameType]) -> None:
    if not _is_worker():
        _default_action(signum)
        return
    _die_with_group()


def _ignore_sigint(signum: int, frame: Optional[types.FrameType]) -> None:
    """Ctrl-C is the parent's to handle. A Python handler, unlike SIG_IGN, is not
    inherited across exec, so the task's own subprocesses keep the default."""


def _watch_parent(parent_pid: int, job_fd: int) -> None:
    poller = select.poll()
    # Only hang-up is watched (it is always reported): the job itself is still unread
    # in the pipe when this thread starts.
    poller.register(job_fd, 0)
    pidfd = open_exit_handle(parent_pid)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    while True:
        if poller.poll(_WATCHDOG_POLL_MS) or os.getppid() != parent_pid:
            _die_with_group()
            return  # another thread (or the SIGHUP handler) is already at it


class _Discard(List[Any]):
    """The record list of a process forked from the worker: appending keeps nothing."""

    def __iadd__(self, other: Iterable[Any]) -> _Discard:  # type: ignore[misc]
        return self


class _Ended:
    """What a :class:`WorkerTaskControl` that a task kept past its instance reaches from
    then on, in place of its sink, its stop-flag view and the worker's channel: those now
    serve another instance, so each call raises :class:`InstanceEndedError`, except
    ``request_stop()``, which does nothing (stopping a finished instance does nothing)."""

    __slots__ = ("_owner", "process_id")

    batcher_asleep = False

    def __init__(self, instance_id: str, task_name: str, process_id: Optional[int]) -> None:
        self._owner = (instance_id, task_name)
        self.process_id = process_id

    def _refuse(self) -> NoReturn:
        raise InstanceEndedError(*self._owner)

    def __getitem__(self, index: int) -> bool:
        """``tc.should_stop``: refused."""
        self._refuse()

    @property
    def records(self) -> List[Any]:
        """``tc.log``: refused."""
        self._refuse()

    def wake_batcher(self) -> None:
        """Never reached (no record is taken)."""

    def should_stop(self) -> bool:
        """Refused."""
        self._refuse()

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        """Refused."""
        self._refuse()

    def update_progress(self, progress: float, status: Optional[str]) -> None:
        """Refused."""
        self._refuse()

    def update_status(self, status: str) -> None:
        """Refused."""
        self._refuse()

    def request_stop(self) -> None:
        """Nothing to stop: the instance has ended."""


class _Channel:
    """The worker's half of the pipe: log batching and the final message.

    A record is three items appended to :attr:`records` (message, level, extras or
    None) in one ``+=``, which the GIL makes atomic: a logging thread takes no lock and
    makes no call. The batcher thread sleeps until a record arrives (whoever appends
    while :attr:`batcher_asleep` wakes it), then sends what is there as one ``LOGS``
    frame and looks again; it takes records by copying the list and deleting as many
    items from its front, so records appended in between stay for the next batch.
    """

    __slots__ = ("_fd", "_send_lock", "_wake", "batcher_asleep", "records")

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._send_lock = threading.Lock()  # one batch taken and written at a time, in order
        self.records: List[Any] = []
        self.batcher_asleep = False
        self._wake = threading.Event()
        threading.Thread(target=self._flush_loop, name="numerous-log-batcher", daemon=True).start()

    def disown(self) -> None:
        """In a process forked from the worker: close our end of the pipe and drop what
        is logged from here on (no frame of the child may interleave with the worker's)."""
        fd, self._fd = self._fd, -1
        self.records = _Discard()
        try:
            os.close(fd)
        except OSError:
            pass

    def log(self, message: str, level: str, extra: Optional[Dict[str, Any]]) -> None:
        """Queue a record for the next batch (``WorkerTaskControl.log`` does the same inline)."""
        records = self.records
        records += (message, level, extra or None)
        if self.batcher_asleep:
            self.wake_batcher()

    def wake_batcher(self) -> None:
        """A record arrived while the batcher slept."""
        self.batcher_asleep = False
        self._wake.set()

    def _flush_loop(self) -> None:
        while True:
            # Asleep is announced before looking: a record appended after the look
            # finds the flag up and wakes us; one appended before it is seen.
            self.batcher_asleep = True
            if not self.records:
                self._wake.wait()
            self._wake.clear()
            self.batcher_asleep = False
            self.flush()

    def _take(self) -> List[Any]:
        records = self.records
        batch = records[:]
        del records[: len(batch)]
        return batch

    def flush(self) -> None:
        """Send every pending log record now, in order."""
        with self._send_lock:
            batch = self._take()
            if batch:
                self._write(_protocol.LOGS, _pickle_logs(batch))

    def send(self, *frames: Tuple[bytes, bytes]) -> None:
        """Flush the logs, then send these frames, all in one write when they are small."""
        with self._send_lock:
            batch = self._take() if self.records else None
            if batch:
                frames = ((_protocol.LOGS, _pickle_logs(batch)),) + frames
            if self._fd < 0:
                return
            try:
                _protocol.write_frames(self._fd, list(frames))
            except BrokenPipeError:  # the parent is gone; the watchdog ends us
                pass

    def _write(self, kind: bytes, body: bytes) -> None:
        if self._fd < 0:
            return
        try:
            _protocol.write_frame(self._fd, kind, body)
        except BrokenPipeError:  # the parent is gone; the watchdog ends us
            pass


def _pickle_logs(batch: List[Any]) -> bytes:
    """A ``LOGS`` body: the flat list of records (message, level, extras or None, ...)."""
    try:
        return pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an unpicklable extra: keep the record, describe the values
        safe = list(batch)
        for i in range(2, len(safe), 3):
            if safe[i]:
                safe[i] = {k: repr(v) for k, v in safe[i].items()}
        return pickle.dumps(safe, protocol=pickle.HIGHEST_PROTOCOL)


class WorkerSink:
    """Where a TaskControl's calls go inside the worker."""

    __slots__ = ("_block", "channel", "process_id", "stop_view")

    def __init__(self, block: ControlBlock, channel: _Channel) -> None:
        self._block = block
        self.stop_view = block.stop_flag_view()
        self.channel = channel
        self.process_id = _worker_pid

    def release(self) -> None:
        """Unmap the block once the task is over (its TaskControl has ended first)."""
        self.stop_view.release()
        self._block.close()

    def should_stop(self) -> bool:
        """Read the stop flag from shared memory."""
        return self.stop_view[0]

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        """Queue a record for the next batch."""
        self.channel.log(message, level, extra)

    def update_progress(self, progress: float, status: Optional[str]) -> None:
        """Write progress (and status) into the control block."""
        self._block.write_progress(progress, status)

    def update_status(self, status: str) -> None:
        """Write the status into the control block."""
        self._block.write_status(status)

    def request_stop(self) -> None:
        """The task asked itself to stop (``tc.request_stop()``): raise the block's stop
        flag from this side, the one write to it the worker makes."""
        self._block.request_stop()


class WorkerTaskControl(TaskControl):
    """The TaskControl a task gets in a worker: ``should_stop`` is one shared-memory
    read, with no call in between (tasks poll it in their innermost loops)."""

    __slots__ = ("_channel", "_stop_view")

    def __init__(self, instance_id: str, task_definition_name: str, *, sink: WorkerSink) -> None:
        super().__init__(instance_id, task_definition_name, sink=sink)
        self._stop_view: Union[memoryview[bool], _Ended] = sink.stop_view
        self._channel: Union[_Channel, _Ended] = sink.channel

    @property
    def should_stop(self) -> bool:
        """True once a stop was requested (``instance.stop()``, ``future.cancel()``).

        Raises:
            InstanceEndedError: the instance has ended (a task kept its TaskControl).
        """
        return self._stop_view[0]

    def end(self) -> None:
        """The instance has ended: every call that would reach its control block or the
        worker's channel raises :class:`InstanceEndedError` from now on (call before the
        sink releases the block)."""
        self._sink = self._stop_view = self._channel = _Ended(
            self.instance_id, self.task_definition_name, self._sink.process_id
        )

    def log(self, message: str, level: str = "info", **extra_data: Any) -> None:
        """Send a log record to the handler (see :meth:`TaskControl.log`)."""
        if level not in LOG_LEVELS:
            check_level(level)
        if extra_data:
            check_extras(extra_data)
        # _Channel.log inline: a call less per record (tasks log in their inner loops)
        channel = self._channel
        records = channel.records
        records += (message if type(message) is str else str(message), level, extra_data or None)
        if channel.batcher_asleep:
            channel.wake_batcher()


class _Environment:
    """The parent's working directory and import path as last sent: taken on before a job
    that sends them (a job that sends None keeps the last ones), and put back after each
    job, once its outcome is on its way (a task may have changed either)."""

    def __init__(self) -> None:
        self.cwd: Optional[str] = None
        self.sys_path: List[str] = []

    def apply(self, job: JobMessage) -> None:
        """Take on what ``job`` sends. The directory is already the last one sent
        (:meth:`restore` saw to it): only a different one costs a system call. A job
        from the lane sends both every time."""
        if job.cwd is not None and job.cwd != self.cwd:
            self.cwd = job.cwd
            os.chdir(job.cwd)
        if job.sys_path is not None:
            self.sys_path = job.sys_path
            sys.path[:] = job.sys_path

    def restore(self) -> None:
        """Undo what the last task changed (a system call: off the caller's path)."""
        if self.cwd is not None and os.getcwd() != self.cwd:
            os.chdir(self.cwd)
        if sys.path != self.sys_path:
            sys.path[:] = self.sys_path


_environment = _Environment()


def run_job(job: JobMessage, slot: int, arena: Arena, channel: _Channel) -> Tuple[Outcome, Callable[[], None]]:
    """Run one instance in the control block ``slot``; return its outcome (not yet sent)
    and what to call once it is sent: it takes the body's logging forwarder down and
    releases the control block."""
    block = arena.block(slot)
    block.mark_taken()  # from here on a death is this job's failure, not a reason to rerun it
    _environment.apply(job)
    sink = WorkerSink(block, channel)
    outputs: List[_worker_logging.TaskOutput] = []
    controls: List[WorkerTaskControl] = []

    def load() -> Call:
        return load_call(job.payload)

    def run(call: Call) -> Any:
        task, args, kwargs = call
        control = WorkerTaskControl(job.instance_id, task.name, sink=sink)
        control._attempt, control._retries = job.attempt, task.options.retries
        controls.append(control)
        block.mark_running()  # the parent reads it from the block: no message, no wake-up
        # stdlib logging (and print() with capture_output) into the task's log, body only
        output = _worker_logging.forward_task_output(sink, getattr(task, "capture_output", False))
        outputs.append(output)
        try:
            return task.call_with_control(control, args, kwargs)
        finally:
            output.end_capture()  # its last partial line goes before the outcome

    def after_sending() -> None:
        for output in outputs:
            output.close()
        for control in controls:  # one a task kept refuses every call from now on
            control.end()
        sink.release()
        _environment.restore()

    return capture(load, run), after_sending


def _left_a_child() -> bool:
    """Whether the last task left a child process behind (running or not yet reaped; a
    descendant of ours whose parent died is re-parented to us, so it counts too)."""
    try:  # one system call: ECHILD means no child at all; WNOWAIT reaps nothing
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def _end_what_the_task_left() -> None:
    """Kill every process the tasks left below us, daemons included, and reap them."""
    if kill_own_descendants():
        reap_own_children(_REAP_LIMIT)


def _claim_from_lane(lane_fd: int, arena: Arena) -> Optional[Tuple[int, int, JobMessage]]:
    """Take the next job from the lane, if it holds one and a claim slot is free: its
    lane number, its claim slot and the job (see ``_lane`` for why in this order).
    With the parent's hint down, the lane is empty: not read at all."""
    if not arena.lane_may_hold_jobs:
        return None
    slot = arena.begin_claim()
    if slot is None:  # the parent still reads every claim slot: let it catch up
        return None
    packet = read_packet(lane_fd)
    if packet is None:
        arena.end_claim(slot, None)
        return None
    number, body = packet
    arena.end_claim(slot, number)
    return number, slot, JobMessage.decode(body)


def _run_jobs(
    job: JobMessage, arena: Arena, channel: _Channel, lane_fd: int, baseline_threads: int, forked: List[bool]
) -> bool:
    """Run ``job``, then each job it is given leave to take from the lane; send each
    outcome. True if the worker stays for another job (it said IDLE), False if it must
    exit (a job did not end cleanly, or left a thread or a process behind).

    Whether a task left a child process is a system call, made once the outcome is on
    its way: if it did, the worker exits instead of running what it said it would take
    next (the job the parent gives it meanwhile, or the one it claimed from the lane),
    which never started and so runs elsewhere (see ``_dispatcher._never_started``)."""
    slot = job.slot
    while True:
        outcome, after_sending = run_job(job, slot, arena, channel)
        if forked:  # a child the task forked returned from the task: not ours to report
            os._exit(0)
        frame = (_protocol.OUTCOME_FRAMES[outcome.kind], bytes(outcome.body))
        if not (job.reusable and outcome.ended_normally and threading.active_count() <= baseline_threads):
            channel.send(frame)
            after_sending()
            return False
        claim = _claim_from_lane(lane_fd, arena) if job.lane and lane_fd >= 0 else None
        if claim is None:
            channel.send(frame, (_protocol.IDLE, b""))  # outcome and IDLE in one write: the parent wakes once
        else:  # the outcome and the claim in one write; the next job starts at once
            number, slot, job = claim
            channel.send(frame, (_protocol.CLAIMED, _protocol.CLAIM.pack(number, slot)))
        after_sending()
        if _left_a_child():
            return False
        if claim is None:
            return True


def main() -> None:
    """Entry point of a worker process (called by ``_spawn.BOOTSTRAP``)."""
    job_fd, result_fd, parent_pid, arena_fd, lane_fd = (int(value) for value in sys.argv[1:6])
    sys.argv = sys.argv[:1]
    global _worker_pid
    _worker_pid = os.getpid()
    # What a task double-forks (a daemon) is re-parented to us, not to the user's
    # program: it stays findable, and dies with the worker.
    become_child_subreaper()
    for fd in (job_fd, result_fd, lane_fd):  # inherited to reach us; the task's children get none
        if fd < 0:
            continue
        os.set_inheritable(fd, False)
    signal.signal(signal.SIGINT, _ignore_sigint)
    # SIGTERM keeps its default action, with no Python handler: a child the task forks
    # inherits handlers, and one that receives SIGTERM before its at-fork hook ran would
    # lose it (multiprocessing's fork Pool terminates its workers that way). Whoever
    # terminates us, the parent kills our process group when it reaps us.
    # SIGHUP, not SIGTERM: a dead parent cannot kill what ignores SIGTERM, so this path
    # SIGKILLs the whole group. (No terminal sends us SIGHUP: we lead our own session.)
    signal.signal(signal.SIGHUP, _on_parent_death)
    set_parent_death_signal(signal.SIGHUP)
    if os.getppid() != parent_pid:  # the parent died before PDEATHSIG was armed
        os._exit(EXIT_PARENT_GONE)
    threading.Thread(target=_watch_parent, args=(parent_pid, job_fd), name="numerous-watchdog", daemon=True).start()
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    channel = _Channel(result_fd)
    arena = Arena.attach(arena_fd)

    def forked_by_the_task() -> None:  # in a child a task forked (os.fork, a fork Pool)
        # It is not the worker: our handlers must not act there, it must not read jobs,
        # and what it writes must not interleave with our frames.
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        channel.disown()
        os.close(job_fd)
        if lane_fd >= 0:
            os.close(lane_fd)
        forked.append(True)

    forked: List[bool] = []  # not empty in a child the task forked (no getpid() per job)
    os.register_at_fork(after_in_child=forked_by_the_task)
    jobs = _protocol.BlockingFrameReader(job_fd)
    baseline_threads = threading.active_count()
    while True:
        try:
            kind, body = jobs.read_frame()
        except EOFError:  # the parent closed the pipe before a whole job arrived
            os._exit(EXIT_PARENT_GONE)
        if kind == _protocol.EXIT:
            break
        if not _run_jobs(JobMessage.decode(body), arena, channel, lane_fd, baseline_threads, forked):
            break
    # Exit now, without waiting for threads the task may have left running: the
    # parent resolves the future once we are reaped. atexit handlers still run.
    atexit._run_exitfuncs()
    _end_what_the_task_left()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)
