"""``wait`` and ``as_completed`` for task futures, as ``concurrent.futures`` has them.

Same names, arguments, constants and results as the standard library's, so code written
for an executor reads the same::

    from numerous.tasks import FIRST_COMPLETED, Session, as_completed, wait

    with Session():
        futures = [crawl.instance().start(site) for site in sites]
        for future in as_completed(futures, timeout=60):
            print(future.result())

A task :class:`~numerous.tasks.Future` is a ``concurrent.futures.Future``, so both are the
standard library's own ``wait`` and ``as_completed`` underneath (and take the futures of
an executor in the same call); what is added here: a NaN or negative timeout is a
ValueError, waiting on the dispatcher thread that would finish a future raises
RuntimeError instead of hanging, ``as_completed`` times out with
:class:`~numerous.tasks.ResultTimeoutError`, and the results are typed for task futures.
``timeout=0`` only looks: it never waits, so it is allowed on a dispatcher thread too.
"""

from __future__ import annotations

import concurrent.futures
import sys
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION
from typing import TYPE_CHECKING, Any, Generic, Iterable, Iterator, List, NamedTuple, Optional, Set, TypeVar, cast

from ._callbacks import refuse_to_block
from .exceptions import ResultTimeoutError
from .future import Future, check_wait_timeout

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


def _refuse_to_wait_for_this_thread(futures: Iterable[Future[Any]], what: str) -> None:
    """Raise RuntimeError if one of the unfinished futures can only be finished by the
    calling thread (a dispatcher thread running a handler or done-callback)."""
    for owner in {getattr(f, "owner", None) for f in futures if not _is_done(f)}:
        refuse_to_block(owner, what)


def _is_done(future: concurrent.futures.Future[Any]) -> bool:
    """Asked the base class's way, so that an executor's futures in the mix count too."""
    return concurrent.futures.Future.done(future)


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
    if timeout == 0:  # a look, not a wait
        done = {f for f in futures if _is_done(f)}
        return DoneAndNotDoneFutures(done, futures - done)
    _refuse_to_wait_for_this_thread(futures, "numerous.tasks.wait()")
    done_now, not_done = concurrent.futures.wait(futures, timeout, return_when)
    return DoneAndNotDoneFutures(cast(Set[Future[R]], done_now), cast(Set[Future[R]], not_done))


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
    futures = set(fs)
    if timeout == 0:  # a look, not a wait
        finished = [f for f in futures if _is_done(f)]
        unfinished, total = len(futures) - len(finished), len(futures)
        del futures  # hold no future once it is yielded (CPython issue 14406)
        yield from _hand_out(finished)
        if unfinished:
            raise ResultTimeoutError(f"{unfinished} (of {total}) futures unfinished")
        return
    _refuse_to_wait_for_this_thread(futures, "numerous.tasks.as_completed()")
    completing = concurrent.futures.as_completed(futures, timeout)
    del futures  # the standard generator alone holds them, and lets each go once yielded
    try:
        yield from cast(Iterator[Future[R]], completing)
    except concurrent.futures.TimeoutError as exc:
        raise ResultTimeoutError(str(exc)) from None


def _hand_out(finished: List[Future[R]]) -> Iterator[Future[R]]:
    """Yield ``finished`` from its end, holding no reference to what it yielded."""
    while finished:
        yield finished.pop()
