"""The local backend: each instance in a freshly spawned process on this machine.

Data flow between the threads of the parent and a worker::

    caller thread              spawner thread            dispatcher thread        worker process
    -------------              --------------            -----------------        --------------
    start(): pickle task+args,
      create control block
    launch (slot free) ──────▶ Popen(python -c ...) ───────────────────────────▶ bootstrap, watchdog
                               write JOB ──────────── job pipe ───────────────▶ load task, args
                               register ───────────▶ select(result pipes,        run the task
                                                            pidfds, wake pipe)
    stop() ─ stop flag ─────────────────────────────────── control block ──────▶ tc.should_stop
                                                     poll progress ◀── block ── tc.update_progress
                                                     handler.log  ◀── LOGS ─── tc.log (batched)
                                                     outcome      ◀── RESULT|ERROR
                                                     pidfd readable ◀── exit
                                                     reap, unlink block, resolve Future

Every spawn happens on one long-lived thread (see ``_spawn``), every handler call and
future resolution on the dispatcher thread (see ``_dispatcher``).
"""

from __future__ import annotations

import threading
from typing import Optional

from ...exceptions import TaskError
from .. import Job
from . import _protocol
from ._dispatcher import Dispatcher
from ._execution import Execution
from ._spawn import run_on_spawner_thread, start_worker_process

__all__ = ["LocalBackend"]


class LocalBackend:
    """Runs each instance in its own spawned worker process."""

    def __init__(self) -> None:
        self._dispatcher: Optional[Dispatcher] = None
        self._dispatcher_lock = threading.Lock()  # instances may start from many threads

    def _get_dispatcher(self) -> Dispatcher:
        with self._dispatcher_lock:
            if self._dispatcher is None:
                self._dispatcher = Dispatcher()
            return self._dispatcher

    def prepare(self, job: Job) -> None:
        """Create the instance's control block.

        Raises:
            TaskError: there is no room for the block (a full ``/dev/shm``), or no
                descriptor left to open it.
        """
        try:
            job.backend_state = Execution(job)
        except OSError as exc:
            raise TaskError(
                f"cannot start {job.description}: no room for its control block in /dev/shm "
                f"({exc.strerror or exc}); free space there or raise its size"
            ) from exc

    def launch(self, job: Job) -> None:
        """Hand the job to the spawner thread; returns at once."""
        execution: Execution = job.backend_state
        dispatcher = self._get_dispatcher()
        job.future.set_running()

        def spawn() -> None:
            try:
                worker = start_worker_process()
            except Exception as exc:
                dispatcher.call_soon(lambda: execution.fail_to_launch(exc))
                return
            execution.worker = worker
            job.sink.process_id = worker.pid
            execution.reader = _protocol.FrameReader(worker.result_fd)
            body = job_body(job, execution)
            try:
                _protocol.write_frame(worker.job_fd, _protocol.JOB, body)
            except BrokenPipeError:
                pass  # it died already: the dispatcher will see its exit
            dispatcher.call_soon(lambda: dispatcher.register(execution))

        run_on_spawner_thread(spawn)

    def discard(self, job: Job) -> None:
        """Release the control block of a job that never ran."""
        execution: Execution = job.backend_state
        execution.release()

    def request_stop(self, job: Job, grace: float) -> None:
        """Raise the stop flag now; terminate the worker's tree after ``grace`` seconds."""
        execution: Execution = job.backend_state
        execution.request_stop(grace)
        if self._dispatcher is not None:
            self._dispatcher.wake()

    def shutdown(self) -> None:
        """Stop the dispatcher thread (every launched job has finished by now)."""
        with self._dispatcher_lock:
            dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.close()


def job_body(job: Job, execution: Execution) -> bytes:
    """The JOB frame's body."""
    import pickle

    return pickle.dumps(
        {"instance_id": job.instance_id, "block_name": execution.block.name, "payload": job.payload},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
