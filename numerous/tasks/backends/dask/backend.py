"""The Dask backend's face: :class:`DaskBackend`, one per session (see the package doc)."""

from __future__ import annotations

import logging
import os
from typing import Dict, Optional

from ...control import get_task_control_handler, wanted_resource_interval
from ...exceptions import BackendError
from ..base import Job
from ..execution import DirectExecution
from ._connect import connect
from ._dispatcher import DaskDispatcher, DaskExecution
from ._messages import WORKER_EVENTS_TOPIC, InstanceSpec, topic_name
from ._runner import close_session, run_instance

__all__ = ["MEMORY_RESOURCE", "SCATTER_THRESHOLD", "DaskBackend"]

logger = logging.getLogger("numerous.tasks")

#: Payloads (the pickled function and arguments) larger than this many bytes are
#: scattered to the cluster first instead of riding in the task graph, which Dask
#: warns about past a few MB and which would pass through the scheduler.
SCATTER_THRESHOLD = 1 << 20
#: The Dask worker resource a task's size asks memory of, in bytes
#: (``dask worker --resources MEMORY=8e9``). When some worker of the cluster declares
#: it, every instance with a memory limit is submitted with
#: ``resources={"MEMORY": limit}``, so it runs only on a worker with that much room
#: left by what runs there; on a cluster where no worker declares it, sizes do not
#: place work (they still count against ``max_workers``).
MEMORY_RESOURCE = "MEMORY"


class DaskBackend(DirectExecution):
    """Runs each instance as one Dask task that runs it through the local backend.

    Connecting happens here, so a missing or unreachable ``NUMEROUS_DASK_ADDRESS`` is
    an error at the session's first ``instance()``.

    Raises:
        DaskUnavailableError: see :func:`~._connect.connect`.
    """

    #: ``Session(max_workers="auto")`` sets no session cap here: the cluster's scheduler
    #: places the work on as many worker threads as it has (the client's CPUs say nothing
    #: about the cluster's).
    default_max_workers: Optional[int] = None

    def __init__(self) -> None:
        self._client = connect()
        self._session_id = os.urandom(8).hex()
        self._launched = False
        self._declared_memory: Optional[float] = None  # read on the first sized job
        self._declared_memory_read = False
        try:
            self._dispatcher = DaskDispatcher(self._client, self._session_id, owner=self)
            self._client.subscribe_topic(topic_name(self._session_id), self._dispatcher.on_topic)
            self._client.subscribe_topic(WORKER_EVENTS_TOPIC, self._dispatcher.on_cluster_event)
        except BaseException:
            self._client.close()
            raise

    def prepare(self, job: Job) -> None:
        """Describe the job for the worker (with the resource figures the handler wants);
        scatter a large payload ahead of it.

        Raises:
            BackendError: the job's size asks more memory than any worker declares.
        """
        resources = self._resources_for(job)
        spec = InstanceSpec(
            self._session_id,
            job.instance_id,
            job.task_name,
            job.timeout,
            job.fresh_process,
            job.stop_grace,
            # Read on the worker's host only if a handler here wants the figures.
            wanted_resource_interval(get_task_control_handler()),
            job.attempt,
        )
        remote = DaskExecution(job)
        if len(job.payload) > SCATTER_THRESHOLD:
            remote.scattered = self._client.scatter(job.payload, hash=False)
        job.backend_state = (spec, remote, resources)

    def _resources_for(self, job: Job) -> Optional[Dict[str, float]]:
        """The Dask resources to submit ``job`` with (see :data:`MEMORY_RESOURCE`)."""
        if job.memory_limit is None:
            return None
        room = self._most_memory_declared()
        if room is None:
            return None
        if job.memory_limit > room:  # it would wait for good in Dask's "no-worker" state
            raise BackendError(
                f"{job.description} cannot run on this Dask cluster: its size {job.size!r} asks "
                f"{job.memory_limit} bytes of memory and the most any worker declares is "
                f"{MEMORY_RESOURCE}={room:.0f}; start workers with --resources {MEMORY_RESOURCE}=<bytes> "
                f"large enough, or give the size less: Session(sizes={{{job.size!r}: Size(memory=...)}})"
            )
        return {MEMORY_RESOURCE: float(job.memory_limit)}

    def _most_memory_declared(self) -> Optional[float]:
        """The largest MEMORY resource a worker of the cluster declares (None: none
        does), read from the scheduler once per session."""
        if not self._declared_memory_read:
            workers = self._client.scheduler_info(n_workers=-1)["workers"].values()
            declared = [info.get("resources", {}).get(MEMORY_RESOURCE) for info in workers]
            amounts = [float(amount) for amount in declared if amount is not None]
            self._declared_memory = max(amounts) if amounts else None
            self._declared_memory_read = True
        return self._declared_memory

    def launch(self, job: Job) -> None:
        """Submit the job's Dask task; returns at once."""
        spec, remote, resources = job.backend_state
        self._dispatcher.add(remote)
        self._launched = True
        remote.dask_future = self._client.submit(
            run_instance,
            spec,
            remote.scattered if remote.scattered is not None else job.payload,
            # A retry is a new Dask task: a key of its own (the failed one's is still held).
            key=f"numerous-{job.task_name}-{job.instance_id}" + (f"-{job.attempt}" if job.attempt > 1 else ""),
            pure=False,
            retries=0,
            resources=resources,
        )
        remote.dask_future.add_done_callback(lambda _future: self._dispatcher.on_done(remote))
        if job.stop_requested:  # asked to stop between leaving the queue and now
            self._dispatcher.request_stop(job, job.stop_grace)

    def request_stop(self, job: Job, grace: float) -> None:
        """Set the instance's stop Event now and its kill Event after ``grace`` seconds."""
        self._dispatcher.request_stop(job, grace)

    def shutdown(self, wait: bool = True) -> None:
        """End the session's warm task processes on the workers, then close the client
        (after the calls given to ``execute()``: waited for, or with ``wait=False`` stopped)."""
        self.end_direct_calls(wait)
        try:
            if self._launched:
                self._client.run(close_session, self._session_id)
        except Exception as exc:  # a worker gone or going: its processes went with it
            logger.debug("numerous.tasks: closing the session on the Dask workers: %s", exc)
        finally:
            for topic in (topic_name(self._session_id), WORKER_EVENTS_TOPIC):
                try:
                    self._client.unsubscribe_topic(topic)
                except Exception:
                    pass
            self._dispatcher.close()
            self._client.close()
