"""Names and encodings that the parent and the Dask worker share.

Per session, one event topic carries everything the worker reports, in order; per
instance, two Dask ``Event`` s carry the parent's stop request and, when the grace
period is over, its order to terminate. A topic message is a msgpack-able dict
``{"i": instance_id, "b": pickled batch}``; the batch is a list of items:

* ``("running", worker_address, worker_pid, task_pid)`` — the body's process runs;
* ``("log", message, level, extra)`` — one ``tc.log`` record;
* ``("progress", percentage, status)`` and ``("status", text)`` — the latest values.

The Dask task returns an :data:`Envelope` ``(kind, body, messages_sent)``: ``kind`` is
``"result"`` (``body`` the value), ``"error"`` (``body`` the local backend's encoded
error: the exception, tblib-pickled with its frames, and a text fallback) or
``"cancelled"``. ``messages_sent`` lets the parent wait for every topic message of the
instance before it resolves the future.
"""

from __future__ import annotations

import pickle
from typing import Any, Dict, List, Tuple

__all__ = [
    "WORKER_EVENTS_TOPIC",
    "Envelope",
    "Item",
    "decode_batch",
    "encode_batch",
    "kill_event_name",
    "stop_event_name",
    "topic_name",
]

Item = Tuple[Any, ...]
Envelope = Tuple[str, Any, int]

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
    if item[0] == "log" and item[3]:
        return item[:3] + ({k: repr(v) for k, v in item[3].items()},)
    return item


def decode_batch(message: Dict[str, Any]) -> Tuple[str, List[Item]]:
    """The instance id and the items of a topic message."""
    return message["i"], pickle.loads(message["b"])
