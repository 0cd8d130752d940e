"""Starting worker processes, always from one long-lived thread.

The kernel's parent-death signal (``PR_SET_PDEATHSIG``, armed by the worker) fires when
the *thread* that forked the worker exits, not the process. Spawning from whichever
thread happened to call ``start()`` would kill workers when that thread ends, so every
spawn in the process runs on :class:`_SpawnerThread`, which lives as long as the process.

Workers are fresh interpreters (``subprocess`` fork+exec, never a bare ``fork``) in a new
session, so Ctrl-C in the terminal reaches only the parent.
"""

from __future__ import annotations

import fcntl
import json
import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Optional, TypeVar

from ._platform import become_child_subreaper, open_exit_handle
from ._protocol import FrameReader, SentEnvironment, write_frame
from ._shm import Arena

__all__ = ["DESCRIPTORS_PER_WORKER", "WorkerProcess", "run_on_spawner_thread", "start_worker_process"]

#: Descriptors the parent holds per live worker: its job pipe, its result pipe, its exit
#: handle (pidfd) and, below Python 3.13, the one ``mmap`` keeps for its arena.
DESCRIPTORS_PER_WORKER = 3 if sys.version_info >= (3, 13) else 4

_F_SETPIPE_SZ = 1031  # Linux: pipes bigger than the 64 KiB default, so that
_JOB_PIPE_SIZE = 1 << 18  # a typical job is written without waiting for the worker,
_RESULT_PIPE_SIZE = 1 << 20  # and a large result is read in fewer wake-ups (100 MB: ~250 ms, not ~370).
# Together 1.25 MiB a worker: the kernel counts pipe capacity per user (64 MiB by
# default, fs.pipe-user-pages-soft); past that the enlarging fails and the default stays.


#: What a worker runs (``python -c BOOTSTRAP job_fd result_fd parent_pid arena_fd lane_fd``): the
#: parent's ``sys.path`` first, then the worker's entry point (``_worker.main``); never the
#: parent's ``__main__``.
BOOTSTRAP = (
    "import json, os, sys; "
    "sys.path[:] = json.loads(os.environ.pop('NUMEROUS_TASKS_SYS_PATH')); "
    "from numerous.tasks.backends.local._worker import main; main()"
)

#: What a worker is running (the dispatcher's record of an instance).
E = TypeVar("E")


@dataclass(eq=False)
class WorkerProcess(Generic[E]):
    """A started worker, the parent's ends of its pipes, its arena of control blocks,
    and what it is doing."""

    popen: subprocess.Popen[bytes]
    job_fd: int  # parent writes jobs here
    result_fd: int  # parent reads frames here
    exit_handle: Optional[int]  # readable once the worker exited (pidfd), or None
    reusable: bool  # may run another job after this one
    arena: Arena  # the control blocks of the instances it runs
    reader: FrameReader = field(init=False)
    execution: Optional[E] = None  # what it runs; None while idle
    jobs_run: int = 0
    #: It reads the dispatcher's lane (see ``_lane``): it was given its read end.
    reads_lane: bool = False
    #: Its current job lets it take the next from the lane when it ends.
    lane_right: bool = False
    #: A caller's thread waiting for its instance reads its result pipe (which is out of
    #: the dispatcher's selector meanwhile: see ``LocalDispatcher.wait_in_caller``).
    helped: bool = False
    #: Its result pipe is in the dispatcher's selector (not while helped, nor while idle
    #: after a helped job: its next launch puts it back).
    watched: bool = False
    #: Its exit was handled: its pipe is never watched again.
    exited: bool = False
    #: It exited while helped: that thread closes its descriptors as it leaves.
    close_deferred: bool = False
    #: The working directory and import path it was last sent (see ``job_message``).
    sent_environment: SentEnvironment = field(init=False, default_factory=SentEnvironment)
    # A caller's thread writes a job to a warm worker while the dispatcher may be
    # closing that worker's descriptors because it just died: the lock orders the two,
    # so a write never reaches a closed (or since reused) descriptor number.
    _job_pipe_lock: threading.Lock = field(init=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.reader = FrameReader(self.result_fd)

    def send(self, kind: bytes, body: bytes) -> bool:
        """Write one frame to the worker's job pipe; False if the worker has gone."""
        with self._job_pipe_lock:
            if self.job_fd < 0:  # reaped and closed: its exit handler saw to the job
                return False
            try:
                write_frame(self.job_fd, kind, body)
            except BrokenPipeError:  # it died already: its exit handle will tell
                return False
            return True

    @property
    def pid(self) -> int:
        """The worker's process id (also its process group id)."""
        return self.popen.pid

    def close(self) -> None:
        """Close the parent's descriptors of a worker that has been reaped (idempotent);
        its arena goes once the last instance it ran has given its slot back."""
        self.arena.retire()
        with self._job_pipe_lock:
            for fd in (self.job_fd, self.result_fd, self.exit_handle):
                if fd is not None and fd >= 0:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            self.job_fd = self.result_fd = -1
            self.exit_handle = None


def start_worker_process(reusable: bool, lane_fd: int = -1) -> WorkerProcess[Any]:
    """Spawn one worker, with its arena of control blocks; call only on the spawner thread.

    Raises:
        OSError: the process could not be started (no descriptor, memory or process
            left); nothing is left behind.
    """
    arena = Arena.create()
    try:
        job_r, job_w = os.pipe()
    except BaseException:
        arena.retire()
        raise
    try:
        result_r, result_w = os.pipe()
    except BaseException:
        arena.retire()
        for fd in (job_r, job_w):
            os.close(fd)
        raise
    try:
        for fd, size in ((job_w, _JOB_PIPE_SIZE), (result_r, _RESULT_PIPE_SIZE)):
            try:
                fcntl.fcntl(fd, _F_SETPIPE_SZ, size)
            except OSError:  # over the user's pipe-buffer limit: the default size works too
                pass
        env = dict(os.environ)
        env["NUMEROUS_TASKS_SYS_PATH"] = json.dumps(sys.path)
        popen = subprocess.Popen(
            [sys.executable, "-c", BOOTSTRAP, str(job_r), str(result_w), str(os.getpid()), str(arena.fd), str(lane_fd)],
            pass_fds=(job_r, result_w, arena.fd) + ((lane_fd,) if lane_fd >= 0 else ()),
            stdin=subprocess.DEVNULL,
            cwd=os.getcwd(),
            env=env,
            start_new_session=True,
        )
    except BaseException:
        for fd in (job_w, result_r):
            os.close(fd)
        arena.retire()
        raise
    finally:
        for fd in (job_r, result_w):
            os.close(fd)
    arena.close_fd()  # the worker has its own copy now
    worker: WorkerProcess[Any] = WorkerProcess(popen, job_w, result_r, open_exit_handle(popen.pid), reusable, arena)
    worker.reads_lane = lane_fd >= 0
    return worker


class _SpawnerThread:
    def __init__(self) -> None:
        self.pid = os.getpid()
        # What a dying worker's tree orphans comes to us, not to pid 1 (which may
        # never reap): see _platform.reap_orphans for what we reap of it.
        become_child_subreaper()
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        thread = threading.Thread(target=self._run, name="numerous-spawner", daemon=True)
        thread.start()

    def _run(self) -> None:
        while True:
            self._queue.get()()

    def submit(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)


_spawner: Optional[_SpawnerThread] = None
_spawner_lock = threading.Lock()


def run_on_spawner_thread(fn: Callable[[], None]) -> None:
    """Run ``fn`` on the process's spawner thread (started on first use).

    ``fn`` must not raise: it reports its own failures.
    """
    global _spawner
    with _spawner_lock:
        if _spawner is None or _spawner.pid != os.getpid():  # also after a fork
            _spawner = _SpawnerThread()
        spawner = _spawner
    spawner.submit(fn)
