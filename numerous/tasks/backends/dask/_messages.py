"""Names and encodings that the parent and the Dask worker share.

Per session, one event topic carries everything the worker reports, in order; per
instance, two Dask ``Event`` s carry the parent's stop request and, when the grace
period is over, its order to terminate. A topic message is a msgpack-able dict
``{"i": instance_id, "b": pickled batch}``; the batch is a list of items, each one of:

* :class:`Running` — the body's process runs (where);
* :class:`Log` — one ``tc.log`` record;
* :class:`Progress` and :class:`Status` — the latest values;
* :class:`~numerous.tasks.resources.ResourceFigures` — a reading of the CPU and memory
  of the body's process, taken on the worker's host, every
  ``InstanceSpec.resource_interval`` seconds (only when the parent's handler asked for
  them); the first comes before :class:`Running`.

The Dask task returns an :class:`Envelope`: ``kind`` is ``"result"`` (``body`` the value),
``"error"`` (``body`` an encoded error, see ``numerous.tasks._lifecycle``: the exception,
tblib-pickled with its frames, and a text fallback) or ``"cancelled"``; ``messages_sent``
lets the parent wait for every topic message of the instance before it settles the future.
"""

from __future__ import annotations

import pickle
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from ...resources import ResourceFigures

__all__ = [
    "WORKER_EVENTS_TOPIC",
    "Envelope",
    "InstanceSpec",
    "Item",
    "Log",
    "Progress",
    "ResourceFigures",
    "Running",
    "Status",
    "decode_batch",
    "encode_batch",
    "kill_event_name",
    "stop_event_name",
    "topic_name",
]


class InstanceSpec(NamedTuple):
    """What the Dask task is given besides the payload: the instance and its limits."""

    session_id: str
    instance_id: str
    task_name: str
    timeout: Optional[float]
    fresh_process: bool
    stop_grace: float
    #: Seconds between readings of the body's process's CPU and memory; None (a
    #: handler in the parent wants none): none are read or sent.
    resource_interval: Optional[float] = None
    #: Which run of the instance this is (``@task(retries=...)``): 1, 2, ...
    attempt: int = 1


class Running(NamedTuple):
    """The instance's body runs: on which Dask worker, in which processes."""

    worker_address: str
    worker_pid: int  # the Dask worker process
    task_pid: Optional[int]  # the local backend's worker process that runs the body


class Log(NamedTuple):
    """One ``tc.log`` record."""

    message: str
    level: str
    extra: Dict[str, Any]


class Progress(NamedTuple):
    """The latest progress, and the status with it (None: unchanged)."""

    percentage: float
    status: Optional[str]


class Status(NamedTuple):
    """The latest status text."""

    text: str


Item = Union[Running, Log, Progress, Status, ResourceFigures]


class Envelope(NamedTuple):
    """What the Dask task returns: its outcome, and how many topic messages it sent."""

    kind: str  # "result", "error" or "cancelled"
    body: Any  # the value, the encoded error, or None
    messages_sent: int
    #: It was asked to stop where it ran (its timeout, or the stop Event): never retried.
    stop_requested: bool = False


#: The scheduler's own topic on which it announces ``remove-worker``.
WORKER_EVENTS_TOPIC = "all"
_PREFIX = "numerous-tasks"


def topic_name(session_id: str) -> str:
    """The event topic a session's instances report on."""
    return f"{_PREFIX}-{session_id}"


def stop_event_name(session_id: str, instance_id: str) -> str:
    """The Dask Event the parent sets to ask an instance to stop."""
    return f"{_PREFIX}-{session_id}-{instance_id}-stop"


def kill_event_name(session_id: str, instance_id: str) -> str:
    """The Dask Event the parent sets when an instance's stop grace is over."""
    return f"{_PREFIX}-{session_id}-{instance_id}-kill"


def encode_batch(instance_id: str, items: List[Item]) -> Dict[str, Any]:
    """One topic message (msgpack-able) holding ``items`` of one instance, in order."""
    try:
        body = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # an unpicklable log extra: keep the record, describe its values
        body = pickle.dumps([_describe_extras(item) for item in items], protocol=pickle.HIGHEST_PROTOCOL)
    return {"i": instance_id, "b": body}


def _describe_extras(item: Item) -> Item:
    if isinstance(item, Log) and item.extra:
        return item._replace(extra={k: repr(v) for k, v in item.extra.items()})
    return item


def decode_batch(message: Dict[str, Any]) -> Tuple[str, List[Item]]:
    """The instance id and the items of a topic message."""
    return message["i"], pickle.loads(message["b"])
