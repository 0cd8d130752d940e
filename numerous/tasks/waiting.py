"""``wait`` and ``as_completed`` for task futures, as ``concurrent.futures`` has them.

Same names, arguments, constants and results as the standard library's, so code written
for an executor reads the same::

    from numerous.tasks import FIRST_COMPLETED, Session, as_completed, wait

    with Session():
        futures = [crawl.instance().start(site) for site in sites]
        for future in as_completed(futures, timeout=60):
            print(future.result())

How it waits: every unfinished future gets one waiter (a callback that the thread
finishing the future calls) registered atomically with the check that it is unfinished,
so no completion falls between looking and listening. Waiters are removed again when the
call returns, so calling ``wait`` in a loop does not pile callbacks up on long-running
futures.
"""

from __future__ import annotations

import sys
import threading
import time
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION
from typing import TYPE_CHECKING, Any, Generic, Iterable, Iterator, List, NamedTuple, Optional, Set, TypeVar

from ._callbacks import refuse_to_block
from .exceptions import ResultTimeoutError
from .future import FAILED, Future, check_wait_timeout

__all__ = ["ALL_COMPLETED", "FIRST_COMPLETED", "FIRST_EXCEPTION", "DoneAndNotDoneFutures", "as_completed", "wait"]

R = TypeVar("R")

_RETURN_WHEN = (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED)

if TYPE_CHECKING or sys.version_info >= (3, 11):  # generic NamedTuples need 3.11 at run time

    class DoneAndNotDoneFutures(NamedTuple, Generic[R]):
        """What :func:`wait` returns: the futures that finished, and those that did not."""

        done: Set[Future[R]]
        not_done: Set[Future[R]]

else:

    class DoneAndNotDoneFutures(NamedTuple):
        """What :func:`wait` returns: the futures that finished, and those that did not."""

        done: Set[Future[Any]]
        not_done: Set[Future[Any]]


class _Waiter:
    """Collects futures as they finish and sets ``event`` when the caller may go on.

    ``pending`` counts the futures still to finish before ``event`` is set (1 sets it on
    every finish); a failure sets it at once when ``stop_on_failure`` (FIRST_EXCEPTION).
    A cancelled future is not a failure, as in ``concurrent.futures``.
    """

    def __init__(self, pending: int, stop_on_failure: bool = False) -> None:
        self.event = threading.Event()
        self.lock = threading.Lock()
        self.finished: List[Future[Any]] = []
        self.pending = pending
        self.stop_on_failure = stop_on_failure

    def add(self, future: Future[Any]) -> None:
        with self.lock:
            self.finished.append(future)
            self.pending -= 1
            if self.pending <= 0 or (self.stop_on_failure and future.status == FAILED):
                self.event.set()

    def take(self) -> List[Future[Any]]:
        """The futures finished since the last call, in the order they finished."""
        with self.lock:
            finished, self.finished = self.finished, []
            self.event.clear()
            return finished


def _install(waiter: _Waiter, futures: Iterable[Future[Any]]) -> None:
    for future in futures:
        if not future._add_callback_unless_done(waiter.add):
            waiter.add(future)  # finished since we looked: count it now


def _uninstall(waiter: _Waiter, futures: Iterable[Future[Any]]) -> None:
    for future in futures:
        future._remove_callback(waiter.add)


def _failed(future: Future[Any]) -> bool:
    return future.status == FAILED


def _refuse_to_wait_for_this_thread(futures: Iterable[Future[Any]], what: str) -> None:
    """Raise RuntimeError if one of the futures can only be finished by the calling
    thread (a dispatcher thread running a handler or done-callback)."""
    for owner in {f.owner for f in futures}:
        refuse_to_block(owner, what)


def wait(
    fs: Iterable[Future[R]], timeout: Optional[float] = None, return_when: str = ALL_COMPLETED
) -> DoneAndNotDoneFutures[R]:
    """Wait until the futures finished, as ``return_when`` says, or ``timeout`` passed.

    Args:
        fs: the futures to wait for (any iterable; duplicates count once).
        timeout: seconds to wait at most; None waits as long as it takes. Running out
            of time is not an error: the unfinished futures are in ``not_done``.
        return_when: ``FIRST_COMPLETED`` (any future finished: completed, failed or
            cancelled), ``FIRST_EXCEPTION`` (any future failed, a cancellation is not a
            failure; if none fails, the same as ``ALL_COMPLETED``) or ``ALL_COMPLETED``
            (the default). The constants are those of ``concurrent.futures``.

    Returns:
        ``DoneAndNotDoneFutures(done, not_done)``, two sets. A future that finishes while
        ``wait`` returns may be in ``done`` although it did not cause the return.

    Raises:
        ValueError: ``return_when`` is none of the three constants, or ``timeout`` is
            NaN or negative.
        RuntimeError: it would wait on the dispatcher thread that finishes one of the
            futures (inside a task control handler or done-callback): a deadlock.
    """
    if return_when not in _RETURN_WHEN:
        raise ValueError(f"Invalid return condition: {return_when!r}")
    timeout = check_wait_timeout(timeout)
    futures = set(fs)
    done = {f for f in futures if f.done}
    not_done = futures - done
    if return_when == FIRST_COMPLETED and done:
        return DoneAndNotDoneFutures(done, not_done)
    if return_when == FIRST_EXCEPTION and any(map(_failed, done)):
        return DoneAndNotDoneFutures(done, not_done)
    if not not_done:
        return DoneAndNotDoneFutures(done, not_done)
    if timeout != 0:
        _refuse_to_wait_for_this_thread(not_done, "numerous.tasks.wait()")
    pending = 1 if return_when == FIRST_COMPLETED else len(not_done)
    waiter = _Waiter(pending, stop_on_failure=return_when == FIRST_EXCEPTION)
    try:
        _install(waiter, not_done)
        waiter.event.wait(timeout)
    finally:
        _uninstall(waiter, not_done)
    done.update(waiter.take())
    return DoneAndNotDoneFutures(done, futures - done)


def as_completed(fs: Iterable[Future[R]], timeout: Optional[float] = None) -> Iterator[Future[R]]:
    """Yield the futures as they finish: those already finished first, then each as
    it completes, fails or is cancelled.

    Args:
        fs: the futures (any iterable; duplicates are yielded once).
        timeout: seconds, counted from the first ``next()``, after which iterating
            raises; None waits as long as it takes.

    Raises:
        TimeoutError: ``timeout`` passed with futures unfinished (a
            :class:`~numerous.tasks.ResultTimeoutError`, also
            ``concurrent.futures.TimeoutError``, saying ``"N (of M) futures unfinished"``).
            The unfinished tasks keep running.
        ValueError: ``timeout`` is NaN or negative.
        RuntimeError: it would wait on the dispatcher thread that finishes one of the
            futures (inside a task control handler or done-callback): a deadlock.
    """
    timeout = check_wait_timeout(timeout)
    end_time = None if timeout is None else time.monotonic() + timeout
    futures = set(fs)
    total = len(futures)
    finished = [f for f in futures if f.done]
    pending = futures.difference(finished)
    if timeout != 0:
        _refuse_to_wait_for_this_thread(pending, "numerous.tasks.as_completed()")
    waiter = _Waiter(1)  # wake on every finish: the count stays at or below zero from then on
    try:
        _install(waiter, pending)
        # Hand out futures without holding on to them: once yielded, a future is no
        # longer referenced here, so the caller can let it go.
        yield from _hand_out(finished, futures)
        while pending:
            wait_timeout = None
            if end_time is not None:
                wait_timeout = end_time - time.monotonic()
                if wait_timeout < 0:
                    raise ResultTimeoutError(f"{len(pending)} (of {total}) futures unfinished")
            waiter.event.wait(wait_timeout)
            finished = waiter.take()
            finished.reverse()  # _hand_out pops from the end: keep the finishing order
            yield from _hand_out(finished, futures, pending)
    finally:
        _uninstall(waiter, futures)


def _hand_out(finished: List[Future[R]], *holders: Set[Future[R]]) -> Iterator[Future[R]]:
    """Yield ``finished`` from its end, first dropping each from ``holders``."""
    while finished:
        for holder in holders:
            holder.discard(finished[-1])
        yield finished.pop()
