"""The session new instances join, and what a task asks of it (:class:`InstanceHost`).

    with Session():  ── enter(session) ──▶  the context's session  ◀── open_host() ── task.instance()
    session closed   ── close(session) ──▶  the process's open ones               task.map()
    back in context  ── leave(session) ──▶  (innermost last)

The current session lives in a ``contextvars.ContextVar`` (correct for nesting and for
asyncio tasks). A thread whose context holds no open session uses the innermost session
still open in the process, so threads started inside ``with Session():`` just work.

:mod:`numerous.tasks.session` imports :mod:`numerous.tasks.task` (a session lists the
instances it made), so the task side cannot import the session: ``task.instance()`` and
``task.map()`` reach it here, as an :class:`InstanceHost`, the part of
:class:`~numerous.tasks.Session` they use. Nothing in this module imports either.
"""

from __future__ import annotations

import contextvars
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Protocol, Tuple, TypeVar

from .exceptions import SessionNotFoundError

if TYPE_CHECKING:
    from .future import Future
    from .timing import InstanceTimes

__all__ = ["Activity", "InstanceHost", "InstanceRecord", "close", "enter", "find", "leave", "open_host"]

#: The instance type a host takes (a :class:`~numerous.tasks.TaskInstance`).
Instance = TypeVar("Instance", contravariant=True)


class Activity(Protocol):
    """Work that starts instances of its own over time (a ``task.map()``): leaving the
    session waits for it, or stops it, together with the instances."""

    def stop(self, timeout: Optional[float] = None) -> None:
        """Start no more instances; stop those it started (``timeout``: their grace)."""

    def wait_done(self, timeout: Optional[float] = None) -> bool:
        """Wait until it has finished, every instance it started included."""


class InstanceRecord(Protocol):
    """What a session records of a started instance (``instance.job``; a
    :class:`~numerous.tasks.backends.base.Job`), as far as the instance reads it."""

    #: When it was started, began running, was asked to stop and finished.
    times: InstanceTimes


class InstanceHost(Protocol[Instance]):
    """What instances and maps need of the session they run in
    (:class:`~numerous.tasks.Session` is the one implementation)."""

    #: A label for logs and displays.
    name: str
    #: numerous-sdk's session id.
    id: str

    @property
    def is_open(self) -> bool:
        """True between entering and leaving the ``with`` block."""

    def adopt(self, instance: Instance) -> None:
        """Accept a new instance (``task.instance()``)."""

    def start_instance(self, instance: Instance, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Future[Any]:
        """Queue or launch ``instance`` with these arguments; return its future."""

    def stop_instance(self, instance: Instance, timeout: Optional[float]) -> None:
        """Cancel ``instance`` if pending, else ask it to stop."""

    def add_activity(self, activity: Activity) -> None:
        """Have leaving the session wait for ``activity``, or stop it."""

    def remove_activity(self, activity: Activity) -> None:
        """Forget a finished activity."""


_context_host: contextvars.ContextVar[Optional[InstanceHost[Any]]] = contextvars.ContextVar(
    "numerous_tasks_session", default=None
)
_open: List[InstanceHost[Any]] = []  # entered and not yet left, innermost last
_open_lock = threading.Lock()


def enter(host: InstanceHost[Any]) -> contextvars.Token[Optional[InstanceHost[Any]]]:
    """Make ``host`` the current session of this context, and an open one of the
    process; pass the token to :func:`leave`."""
    with _open_lock:
        _open.append(host)
    return _context_host.set(host)


def leave(host: InstanceHost[Any], token: contextvars.Token[Optional[InstanceHost[Any]]]) -> None:
    """``host`` is no longer the current session of the context that entered it (call
    this there, with :func:`enter`'s token)."""
    try:
        _context_host.reset(token)
    except ValueError:  # left in another context than entered
        if _context_host.get() is host:
            _context_host.set(None)


def close(host: InstanceHost[Any]) -> None:
    """``host`` is no longer open in the process (it stays its context's until
    :func:`leave`: :func:`find` passes over it, since it is not open any more)."""
    with _open_lock:
        if host in _open:
            _open.remove(host)


def find() -> Optional[InstanceHost[Any]]:
    """The session new instances join now: this context's, if it is open, else the
    innermost one open in the process; None outside every session."""
    host = _context_host.get()
    if host is not None and host.is_open:
        return host
    with _open_lock:
        return _open[-1] if _open else None


def open_host() -> InstanceHost[Any]:
    """:func:`find`'s session.

    Raises:
        SessionNotFoundError: no session is open.
    """
    host = find()
    if host is None:
        raise SessionNotFoundError(
            "no Session is open: create task instances inside `with Session():` "
            "(or call the task directly to run it in this process)"
        )
    return host
