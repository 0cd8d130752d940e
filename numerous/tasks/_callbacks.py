"""User code that the library calls back, and the library threads that call it.

Handlers (``TaskControlHandler`` methods), done-callbacks and state listeners run on a
backend's *dispatcher* thread: the one thread that also resolves that backend's futures
(or, one at a time with it, on a caller's thread that waits in ``result()`` and reads its
instance's worker itself: for that moment it does the dispatcher's work).
Two rules keep such a thread alive and the program out of deadlock:

* nothing a callback raises stops the thread or leaves the library half-way through a
  step: an ``Exception`` is logged, and so is a ``SystemExit``, a ``pytest.fail()`` or any
  other ``BaseException`` — on every thread, since some callbacks run on the user's
  (a pending instance's handler call in ``start()``, a callback added to a finished
  future). The one exception that propagates is ``KeyboardInterrupt`` on the main
  thread: that is Ctrl-C, and it is the user's;
* a callback cannot wait for a future that only its own thread can resolve:
  ``result()``, ``wait_done()``, ``wait()``, ``as_completed()`` and leaving the session
  raise :class:`RuntimeError` at once instead of hanging forever.

A dispatcher thread calls :func:`serve_from_this_thread` with the backend it serves
(its *owner*); futures know their owner, so only a wait that would really deadlock is
refused — a handler may still run a session of its own and wait for it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Optional

__all__ = [
    "call_user_code",
    "refuse_to_block",
    "report_raised",
    "serve_from_this_thread",
    "served_owner",
    "swap_served_owner",
]

logger = logging.getLogger("numerous.tasks")

_local = threading.local()


def serve_from_this_thread(owner: object) -> None:
    """Mark the calling thread as the dispatcher thread of ``owner`` (a backend)."""
    _local.owner = owner


def run_dispatcher(owner: object, serve: Callable[[], None], die: Callable[[BaseException], None], name: str) -> None:
    """Run a backend's dispatcher loop (``serve``) as ``owner``'s dispatcher thread.

    Should the loop ever raise (a bug of ours: every user callback it calls goes through
    :func:`call_user_code`), the error is logged as critical and handed to ``die``, which
    fails what the dispatcher was looking after, so that no future waits for good.
    """
    serve_from_this_thread(owner)
    try:
        serve()
    except BaseException as exc:
        logger.critical("%s thread died; failing its instances", name, exc_info=True)
        die(exc)


def swap_served_owner(owner: Optional[object]) -> Optional[object]:
    """Mark the calling thread as doing ``owner``'s dispatcher work from now on (None:
    no backend's) and return the owner it served before: a caller's thread that reads
    its worker's pipe does that work for a moment, and its callbacks then may not wait
    for ``owner``'s futures either."""
    previous: Optional[object] = getattr(_local, "owner", None)
    _local.owner = owner
    return previous


def served_owner() -> Optional[object]:
    """The backend whose dispatcher thread this is, or None on any other thread."""
    return getattr(_local, "owner", None)


def refuse_to_block(owner: Optional[object], what: str) -> None:
    """Raise if waiting here would wait for the calling thread itself.

    Args:
        owner: the backend whose dispatcher thread finishes what the caller waits for.
        what: the call being refused, e.g. ``"Future.result()"``.

    Raises:
        RuntimeError: the calling thread is ``owner``'s dispatcher thread.
    """
    if owner is not None and served_owner() is owner:
        raise RuntimeError(
            f"{what} was called while this thread ({threading.current_thread().name}) does the work of the "
            "dispatcher thread, which runs task control handlers and done-callbacks and finishes these futures: "
            "waiting there would deadlock. Use future.add_done_callback(...) to act when an instance "
            "finishes, or wait from another thread."
        )


def call_user_code(fn: Callable[..., Any], *args: Any, description: str, **kwargs: Any) -> None:
    """Call ``fn(*args, **kwargs)``, a handler or callback; log what it raises.

    Every exception is logged and swallowed (``SystemExit`` included), so a dispatcher
    thread keeps serving every other instance and no library step stops half-way;
    ``KeyboardInterrupt`` on the main thread (Ctrl-C) propagates.
    """
    try:
        fn(*args, **kwargs)
    except BaseException as exc:
        report_raised(exc, description)


def report_raised(exc: BaseException, description: str) -> None:
    """Log ``exc``, just raised by user code described by ``description``, as
    :func:`call_user_code` does; call it in the ``except`` block that caught ``exc``.

    Raises:
        KeyboardInterrupt: ``exc`` itself, when it is one and this is the main thread.
    """
    if isinstance(exc, Exception):
        logger.error("%s raised", description, exc_info=exc)
        return
    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
        raise exc
    logger.error("%s raised %s; ignored", description, type(exc).__name__, exc_info=exc)
