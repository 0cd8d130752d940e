"""Future — the result of a started task instance, available later.

States move one way: ``pending → running → completed | failed | cancelled`` (a pending
instance may also go straight to ``cancelled``). The three final states are set exactly
once; whoever sets one first wins and later attempts are ignored, so a stop that races
the task's completion leaves exactly one outcome.

A future is also awaitable: ``await future`` inside a running event loop suspends the
coroutine (never the loop) until the instance finishes, and cancelling the awaiting
asyncio task cancels a pending instance or asks a running one to stop, like
:meth:`Future.cancel`. :func:`numerous.tasks.wait` and :func:`numerous.tasks.as_completed`
are the ``concurrent.futures`` counterparts for threads.

numerous-sdk's names are here too: :class:`TaskStatus` holds the five states, and
``LocalFuture`` is :class:`Future` itself — ``LocalFuture()`` makes a future that a
backend resolves with ``set_running()``, ``set_result(value)`` and ``set_exception(error)``.
"""

from __future__ import annotations

import math
import threading
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Generator, Generic, List, Optional, Protocol, TypeVar

from ._callbacks import call_user_code, refuse_to_block
from .exceptions import ResultTimeoutError, TaskCancelledError

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "PENDING",
    "RUNNING",
    "Future",
    "LocalFuture",
    "TaskStatus",
    "check_wait_timeout",
]

R = TypeVar("R")

PENDING = "pending"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
FINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED})


class TaskStatus:
    """The states of an instance and its future, as string constants."""

    PENDING = PENDING
    RUNNING = RUNNING
    COMPLETED = COMPLETED
    FAILED = FAILED
    CANCELLED = CANCELLED


if TYPE_CHECKING:
    import asyncio


class _Canceller(Protocol):
    def request_cancel(self) -> bool:
        """Cancel if still pending (True), else request a stop (False)."""


def check_wait_timeout(timeout: Optional[float], parameter: str = "timeout") -> Optional[float]:
    """Return how long a wait may take: None (no limit) or a number of seconds >= 0.

    Raises:
        TypeError: ``timeout`` is not a number (a bool is refused too).
        ValueError: ``timeout`` is NaN or negative.
    """
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"{parameter} must be a number of seconds or None, not {type(timeout).__name__}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"{parameter} must be a number of seconds >= 0 or None, not {timeout!r}")
    return timeout


class Future(Generic[R]):
    """The eventual outcome of one task instance.

    Created by ``TaskInstance.start()``. ``Future()`` (or ``LocalFuture()``) with no
    arguments makes a free-standing one, for a backend's ``execute()`` to resolve;
    ``cancel()`` on it, while unfinished, just marks it cancelled.
    """

    def __init__(
        self, canceller: Optional[_Canceller] = None, description: str = "a future", instance_id: str = ""
    ) -> None:
        self._canceller: Optional[_Canceller] = canceller
        self._description = description
        self._instance_id = instance_id
        self._condition = threading.Condition(threading.Lock())
        self._status = PENDING
        self._result: Any = None
        self._error: Optional[BaseException] = None
        self._error_traceback: Optional[TracebackType] = None
        self._callbacks: List[Callable[[Future[R]], object]] = []
        self._finishing = False
        #: The backend whose dispatcher thread finishes this future (set when the
        #: session makes it): waiting for it on that very thread is refused.
        self.owner: Optional[object] = None
        #: Told of every state change before anyone waiting on the future sees it
        #: (the session reports them to the task control handler).
        self.listener: Optional[Callable[[str, Optional[BaseException]], None]] = None

    # -- what users read -------------------------------------------------------------
    @property
    def instance_id(self) -> str:
        """The id of the instance this future belongs to (``TaskInstance.id``, and
        ``TaskControl.instance_id`` in its task and handlers)."""
        return self._instance_id

    @property
    def status(self) -> str:
        """One of ``"pending"``, ``"running"``, ``"completed"``, ``"failed"``, ``"cancelled"``."""
        return self._status

    @property
    def done(self) -> bool:
        """True once the instance completed, failed or was cancelled."""
        return self._status in FINAL_STATES

    @property
    def error(self) -> Optional[BaseException]:
        """The exception the task failed with, or None (also None when cancelled)."""
        return self._error if self._status == FAILED else None

    def result(self, timeout: Optional[float] = None) -> R:
        """Wait for the instance to finish and return its value.

        Args:
            timeout: seconds to wait at most (a number >= 0); None waits as long as it takes.

        Raises:
            ValueError: ``timeout`` is NaN or negative.
            RuntimeError: called, on an unfinished instance, from the dispatcher thread
                that would finish it (inside a task control handler or a done-callback):
                that wait could never end.
            TimeoutError: the wait timed out (the instance keeps running); the
                exception is a :class:`~numerous.tasks.exceptions.ResultTimeoutError`,
                which is also ``concurrent.futures.TimeoutError``.
            TaskCancelledError: the instance was cancelled before producing a value.
            Exception: whatever the task raised, with the worker's frames in its traceback.
        """
        timeout = check_wait_timeout(timeout)
        if self._status not in FINAL_STATES and timeout != 0:
            refuse_to_block(self.owner, "Future.result()")
        with self._condition:
            if not self._condition.wait_for(lambda: self._status in FINAL_STATES, timeout):
                raise ResultTimeoutError(
                    f"{self._description} did not finish within {timeout} s; it keeps running "
                    "(call result() again, or stop() the instance)"
                )
        if self._status == COMPLETED:
            return self._result  # type: ignore[no-any-return]
        if self._status == CANCELLED:
            raise TaskCancelledError(f"{self._description} was cancelled before it produced a value")
        assert self._error is not None
        # Re-raise with the traceback it arrived with, so repeated result() calls do
        # not pile up frames of their own on it.
        raise self._error.with_traceback(self._error_traceback)

    def wait_done(self, timeout: Optional[float] = None) -> bool:
        """Wait until the instance finished, without raising its error; True if it did.

        Raises:
            ValueError: ``timeout`` is NaN or negative.
            RuntimeError: as :meth:`result`, on the dispatcher thread that would finish it.
        """
        timeout = check_wait_timeout(timeout)
        if self._status not in FINAL_STATES and timeout != 0:
            refuse_to_block(self.owner, "Future.wait_done()")
        with self._condition:
            return self._condition.wait_for(lambda: self._status in FINAL_STATES, timeout)

    def cancel(self) -> bool:
        """Cancel a pending instance (it never runs) and return True.

        For a running instance this requests a stop, like ``instance.stop()``, and
        returns False: the task decides, and ``status`` tells what happened. A finished
        instance is left alone (False).
        """
        canceller = self._canceller  # dropped once the future is final
        if self.done:
            return False
        if canceller is None:  # free-standing: nothing runs that could be stopped
            return self.set_cancelled()
        return canceller.request_cancel()

    def add_done_callback(self, fn: Callable[[Future[R]], object]) -> None:
        """Call ``fn(future)`` when the instance finishes (at once if it already has).

        Callbacks run in the thread that finishes the future: the backend's dispatcher
        thread, or the thread that cancels a pending instance. Exceptions they raise are
        logged and ignored (on the dispatcher thread even ``SystemExit``). A callback on
        the dispatcher thread may call ``result()`` of this future (it is finished), but
        not wait for an unfinished one of the same session: that raises RuntimeError.
        """
        with self._condition:
            if self._status not in FINAL_STATES:
                self._callbacks.append(fn)
                return
        self._run_callback(fn)

    def __await__(self) -> Generator[Any, None, R]:
        """``await future``: the instance's value, without blocking the event loop.

        Raises what :meth:`result` raises. Cancelling the awaiting asyncio task (directly,
        through ``asyncio.wait_for``'s timeout or a cancelled ``asyncio.gather``) cancels
        the instance if it is still pending or asks it to stop if it runs, exactly like
        :meth:`cancel`, and the ``CancelledError`` propagates at once without waiting for
        the task to return. Wrap the future in ``asyncio.shield()`` to stop waiting without
        stopping the task. ``asyncio.ensure_future(future)`` makes an ``asyncio.Future``
        of it, for ``asyncio.wait`` and the like.
        """
        return self._wait_in_loop().__await__()

    async def _wait_in_loop(self) -> R:
        if not self.done:
            import asyncio

            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake(_: Future[R]) -> None:  # runs on whichever thread finishes the future
                try:
                    loop.call_soon_threadsafe(_resolve_waiter, waiter)
                except RuntimeError:  # the loop was closed meanwhile: nobody is waiting
                    pass

            if self._add_callback_unless_done(wake):
                try:
                    await waiter
                except asyncio.CancelledError:
                    self._remove_callback(wake)
                    self.cancel()
                    raise
        return self.result(timeout=0)

    def __repr__(self) -> str:
        return f"<Future {self._description} status={self._status}>"

    # -- for waiters (numerous.tasks.waiting and __await__) -----------------------------
    def _add_callback_unless_done(self, fn: Callable[[Future[R]], object]) -> bool:
        """Register ``fn`` like :meth:`add_done_callback` and return True, or return False
        without calling it if the future has already finished."""
        with self._condition:
            if self._status in FINAL_STATES:
                return False
            self._callbacks.append(fn)
            return True

    def _remove_callback(self, fn: Callable[[Future[R]], object]) -> None:
        """Forget a callback that has not run yet (a waiter that stopped waiting)."""
        with self._condition:
            try:
                self._callbacks.remove(fn)
            except ValueError:  # already ran, or being run
                pass

    # -- what the library sets ------------------------------------------------------
    def set_running(self) -> bool:
        """Move from pending to running; False if the future already left pending."""
        with self._condition:
            if self._status != PENDING or self._finishing:
                return False
            self._status = RUNNING
        self._tell_listener(RUNNING, None)
        return True

    def set_result(self, value: Any) -> bool:
        """Finish as completed with ``value``; False if already finished."""
        return self._finish(COMPLETED, value, None)

    def set_error(self, error: BaseException) -> bool:
        """Finish as failed with ``error``; False if already finished."""
        return self._finish(FAILED, None, error)

    def set_exception(self, exception: BaseException) -> bool:
        """Finish as failed with ``exception`` (numerous-sdk's name for :meth:`set_error`)."""
        return self._finish(FAILED, None, exception)

    def attach(self, canceller: _Canceller, instance_id: str) -> None:
        """Tie a free-standing future to the instance a backend runs for it:
        ``cancel()`` asks ``canceller``, and ``instance_id`` is that instance's."""
        if not self._instance_id:
            self._instance_id = instance_id
        if not self.done:
            self._canceller = canceller

    def set_cancelled(self) -> bool:
        """Finish as cancelled; False if already finished."""
        return self._finish(CANCELLED, None, None)

    def _finish(self, status: str, value: Any, error: Optional[BaseException]) -> bool:
        with self._condition:
            if self._status in FINAL_STATES or self._finishing:
                return False
            self._finishing = True  # from here on, this call alone decides the outcome
        self._tell_listener(status, error)
        # The listener and the canceller refer back to the instance's job, which refers
        # to this future: dropped once final, the cycle goes with the last reference
        # instead of waiting for a full garbage collection.
        self.listener = self._canceller = None
        with self._condition:
            self._status, self._result, self._error = status, value, error
            self._error_traceback = None if error is None else error.__traceback__
            callbacks, self._callbacks = self._callbacks, []
            self._condition.notify_all()
        for fn in callbacks:
            self._run_callback(fn)
        return True

    def _tell_listener(self, status: str, error: Optional[BaseException]) -> None:
        listener = self.listener
        if listener is not None:
            call_user_code(listener, status, error, description=f"state listener of {self._description}")

    def _run_callback(self, fn: Callable[[Future[R]], object]) -> None:
        call_user_code(fn, self, description=f"done callback {fn!r} of {self._description}")


#: numerous-sdk's name for the future its local backend resolved: the same class here.
LocalFuture = Future


def _resolve_waiter(waiter: asyncio.Future[None]) -> None:
    """Wake an awaiting coroutine (in its loop's thread), unless it stopped waiting."""
    if not waiter.done():
        waiter.set_result(None)
