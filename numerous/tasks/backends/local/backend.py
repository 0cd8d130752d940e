"""The local backend: each instance in a worker process of its own on this machine.

Workers are spawned fresh interpreters, kept warm and reused for later instances of
the same session when they end clean (see ``_dispatcher`` for the rules).

Data flow between the threads of the parent and a worker::

    caller thread         dispatcher thread                spawner thread      worker process
    -------------         -----------------                --------------      --------------
    start(): pickle task
      + args
    launch (slot free):
      idle worker? ─ yes ─ take a slot of its arena,
                           write JOB ─────────────────── job pipe ──────────▶ mark slot taken,
                                                                              load task, args
                   ─ no ─▶ spawn_for ─────────────────▶ arena (memfd) +
                                                        Popen(python -c) ──▶ bootstrap, map
                           register, take slot,                               the arena,
                           write JOB ◀───────────────────────┘                watchdog
    stop() ─ stop flag ──────────────────────────────── control block ───────▶ tc.should_stop
                          poll progress ◀─────────────── control block ─────── tc.update_progress
                          handler.log   ◀─────────────── LOGS ──────────────── tc.log (batched)
                          outcome + IDLE ◀────────────── RESULT | ERROR, IDLE (clean: reuse it)
    more of the same      queue ahead ── lane (one pipe, ─────────────────▶ clean and the lane
    task waiting:                        every worker reads it)              holds one: take it
                          outcome + CLAIMED ◀──────────── RESULT | ERROR, CLAIMED: its slot
                                                          goes to the job taken, which runs
                          or pidfd readable ◀─────────── exit: reap, kill its group
                          give the slot back, resolve Future

Every spawn happens on one long-lived thread (see ``_spawn``), every handler call and
future resolution on the dispatcher thread (see ``_dispatcher``) — or, for an instance
whose caller waits in ``result()`` while it runs on a warm worker, on that caller's
thread, which reads the worker's pipe itself meanwhile (one wake-up instead of two).

It is also numerous-sdk's ``LocalExecutionBackend``: ``execute(fn, LocalFuture(), args,
kwargs)`` runs ``fn`` in a worker the same way (see ``..execution.DirectExecution``).
"""

from __future__ import annotations

import threading
from typing import List, Optional

from ...exceptions import TaskError
from ..base import Job, Successors
from ..execution import DirectExecution, check_max_workers
from ._dispatcher import LocalDispatcher
from ._execution import LocalExecution

__all__ = ["LocalBackend", "LocalExecutionBackend"]


class LocalBackend(DirectExecution):
    """Runs each instance in a worker process of its own (spawned, reused when clean).

    Args:
        max_workers: how many callables given to ``execute()`` run at once (the others
            wait their turn); None: no limit. Sessions limit theirs with ``max_parallel``.
    """

    def __init__(self, max_workers: Optional[int] = None) -> None:
        self._max_workers = check_max_workers(max_workers)
        self._dispatcher: Optional[LocalDispatcher] = None
        self._dispatcher_lock = threading.Lock()  # instances may start from many threads
        self._session: Optional[Successors] = None

    def _get_dispatcher(self) -> LocalDispatcher:
        with self._dispatcher_lock:
            if self._dispatcher is None:
                self._dispatcher = LocalDispatcher(owner=self, session=self._session)
            return self._dispatcher

    def queue_ahead_for(self, session: Successors) -> None:
        """Let the dispatcher queue ``session``'s next instances ahead, for busy workers
        to take as they end one (see ``_lane``); the session picks which
        (``Session._reserve_successors``). Called once, before the first launch."""
        self._session = session

    def revoke_queued(self) -> List[Job]:
        """Take back the instances queued ahead that no worker has taken yet."""
        dispatcher = self._dispatcher
        return [] if dispatcher is None else dispatcher.revoke_queued()

    def prepare(self, job: Job) -> None:
        """Make the instance's parent-side record (its control block comes with its
        worker: a slot of that worker's arena)."""
        job.backend_state = LocalExecution(job)

    def launch(self, job: Job) -> None:
        """Hand the job to the dispatcher, which gives it a worker; returns at once.

        Raises:
            TaskError: the dispatcher thread has died; the job holds nothing any more.
        """
        execution: LocalExecution = job.backend_state
        try:
            self._get_dispatcher().launch(execution)
        except TaskError:  # its dispatcher thread died: nothing was started
            execution.release()
            job.backend_state = None
            raise

    def request_stop(self, job: Job, grace: float) -> None:
        """Raise the stop flag now; terminate the worker's tree after ``grace`` seconds."""
        execution: Optional[LocalExecution] = job.backend_state
        if execution is None:  # not prepared yet: it sees job.stop_requested when it is
            return
        execution.request_stop(grace)
        if self._dispatcher is not None:  # its stop ladder's next step (the task sees the flag at once)
            self._dispatcher.wake_by(execution.next_deadline())

    def shutdown(self, wait: bool = True) -> None:
        """Stop the dispatcher thread once every launched job has finished (a session's
        have by now; calls given to ``execute()`` are waited for, or with ``wait=False``
        stopped at once)."""
        self.end_direct_calls(wait)
        with self._dispatcher_lock:
            dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.close()


#: numerous-sdk's name for the local backend.
LocalExecutionBackend = LocalBackend
