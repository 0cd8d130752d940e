"""Future — the result of a started task instance, available later.

States move one way: ``pending → running → completed | failed | cancelled`` (a pending
instance may also go straight to ``cancelled``). A task with ``retries`` adds a loop:
``running → retrying → running`` once per retry (``retrying``: an attempt failed and the
next one waits its ``retry_delay``; :attr:`Future.attempt` counts them). The three final states are set exactly
once; whoever sets one first wins and later attempts are ignored, so a stop that races
the task's completion leaves exactly one outcome.

A future is a ``concurrent.futures.Future`` (a subclass, as pebble's and loky's are), so
the standard library takes it wherever it takes futures: ``concurrent.futures.wait`` and
``as_completed``, ``asyncio.wrap_future``, ``asyncio.wait``. It is also awaitable: ``await
future`` inside a running event loop suspends the coroutine (never the loop) until the
instance finishes, and so do ``asyncio.gather``, ``wait_for`` and ``shield``. Cancelling
the awaiting asyncio task cancels a pending instance or asks a running one to stop, like
:meth:`Future.cancel`. Where the spec and the base class differ, the spec wins:

* ``future.done`` is a property, read without calling it (``if future.done:``). It gives a
  :class:`~numerous.tasks.future.DoneFlag`: equal to True or False and printed as such, and callable —
  ``future.done()`` returns the bool, which is how the standard library asks.
* ``cancel()`` on a running instance asks it to stop (the base class cannot stop a call
  that runs), and ``result()`` on a cancelled instance raises
  :class:`~numerous.tasks.TaskCancelledError` (a ``TaskError``, not
  ``concurrent.futures.CancelledError``).
* ``set_result`` / ``set_exception`` return False on a finished future instead of raising.

How the standard library's waits see it: ``_state``, ``_condition`` and ``_waiters`` are
the base class's, ``_state`` kept in step with :attr:`Future.status`, and waiters are told
of the final state in the same step as everyone else. A future makes its condition and
its list of waiters only when something waits on it (most futures of many short tasks
are read once they are final): state changes are made under one lock that all futures
share, held for a few instructions, and a condition made later sees the final state. Done-callbacks run on the
thread that finishes the future, except asyncio's own (``asyncio.wait`` adds one), which
are called in the event loop that added them, as an ``asyncio.Future`` would call them.

numerous-sdk's names are here too: :class:`TaskStatus` holds the five states, and
``LocalFuture`` is :class:`Future` itself — ``LocalFuture()`` makes a future that a
backend resolves with ``set_running()``, ``set_result(value)`` and ``set_exception(error)``.
"""

from __future__ import annotations

import concurrent.futures
import math
import sys
import threading
import time
import weakref
from concurrent.futures import _base as _cf  # the states the stdlib's waits read (loky imports them too)
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generator,
    List,
    Optional,
    Protocol,
    Tuple,
    TypeVar,
    cast,
)

from ._callbacks import refuse_to_block, report_raised
from ._interruptible import wait_for
from .exceptions import ResultTimeoutError, TaskCancelledError

__all__ = [
    "CANCELLED",
    "COMPLETED",
    "FAILED",
    "PENDING",
    "RETRYING",
    "RUNNING",
    "DoneFlag",
    "Future",
    "LocalFuture",
    "TaskStatus",
    "check_wait_timeout",
]

R = TypeVar("R")

PENDING = "pending"
RUNNING = "running"
RETRYING = "retrying"
COMPLETED = "completed"
FAILED = "failed"
CANCELLED = "cancelled"
FINAL_STATES = frozenset({COMPLETED, FAILED, CANCELLED})

#: The base class's state for each of ours. A cancelled future has told its waiters at
#: once, so it is never the base class's bare CANCELLED (cancelled, waiters not told yet).
_BASE_STATE: Dict[str, str] = {
    PENDING: _cf.PENDING,
    RUNNING: _cf.RUNNING,
    RETRYING: _cf.RUNNING,
    COMPLETED: _cf.FINISHED,
    FAILED: _cf.FINISHED,
    CANCELLED: _cf.CANCELLED_AND_NOTIFIED,
}


class TaskStatus:
    """The states of an instance and its future, as string constants."""

    PENDING = PENDING
    RUNNING = RUNNING
    RETRYING = RETRYING
    COMPLETED = COMPLETED
    FAILED = FAILED
    CANCELLED = CANCELLED


if TYPE_CHECKING:
    import asyncio

_Callback = Callable[["Future[Any]"], object]


class Canceller(Protocol):
    """What a future asks on ``cancel()``: the session (or backend) that runs its instance."""

    def request_cancel(self) -> bool:
        """Cancel if still pending (True), else request a stop (False)."""


class DoneFlag(int):
    """What ``future.done`` gives: True or False, and callable as a method too.

    It equals True or False, prints as ``True`` / ``False`` and is an ``int`` as ``bool``
    is, so ``if future.done:``, ``future.done == True`` and ``sum(f.done for f in
    futures)`` work as with a bool. Calling it, ``future.done()``, returns the bool itself:
    that is how the standard library asks a ``concurrent.futures.Future``. Compare it with
    ``==`` or use it as a condition; ``future.done is True`` is False, since it is not the
    bool object. Pickled, it becomes a plain bool.
    """

    __slots__ = ()

    def __call__(self) -> bool:
        """The bool: what ``concurrent.futures.Future.done()`` returns."""
        return self != 0

    def __repr__(self) -> str:
        return "True" if self else "False"

    __str__ = __repr__

    def __reduce__(self) -> Tuple[Any, ...]:
        return (bool, (self != 0,))


_DONE = DoneFlag(1)
_NOT_DONE = DoneFlag(0)
#: The two flags as type checkers see them (``done`` promises a bool; cast once, here).
_DONE_FLAG: bool = cast(bool, _DONE)
_NOT_DONE_FLAG: bool = cast(bool, _NOT_DONE)

#: Guards every future's state changes, and the making of a future's condition and list
#: of waiters (so a change sees whether anyone can be waiting). Held only for a few
#: assignments, never while user code runs or anyone waits.
_STATE_LOCK = threading.RLock()


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


class Future(concurrent.futures.Future[R]):
    """The eventual outcome of one task instance; a ``concurrent.futures.Future``.

    Created by ``TaskInstance.start()``. ``Future()`` (or ``LocalFuture()``) with no
    arguments makes a free-standing one, for a backend's ``execute()`` to resolve;
    ``cancel()`` on it, while unfinished, just marks it cancelled.
    """

    def __init__(
        self, canceller: Optional[Canceller] = None, description: str = "a future", instance_id: str = ""
    ) -> None:
        # The base class's fields that the stdlib's waits read (its __init__ would also make
        # a condition and lists that most futures never need: see _condition, _waiters).
        self._state = _cf.PENDING
        self._result: Any = None
        self._exception: Optional[BaseException] = None
        self._cond: Optional[threading.Condition] = None
        self._waiter_list: Optional[_Waiters] = None
        self._canceller: Optional[Canceller] = canceller
        self._description = description
        self._instance_id = instance_id
        self._status = PENDING
        self._attempt = 1
        self._error_traceback: Optional[TracebackType] = None
        #: Each callback with the event loop it is to be called in (None: any thread);
        #: None until the first is added.
        self._callbacks: Optional[List[Tuple[_Callback, Optional[asyncio.AbstractEventLoop]]]] = None
        self._finishing = False
        #: The backend whose dispatcher thread finishes this future (set when the
        #: session makes it): waiting for it on that very thread is refused.
        self.owner: Optional[object] = None
        #: Told of every state change before anyone waiting on the future sees it
        #: (the session reports them to the task control handler).
        self.listener: Optional[Callable[[str, Optional[BaseException]], None]] = None
        #: How ``result()`` may wait on the caller's own thread, given the monotonic
        #: deadline (None: none): the local backend sets one that reads the instance's
        #: worker pipe there (see ``LocalDispatcher.wait_in_caller``). It returns True
        #: once the future is final, False to wait on the condition as usual.
        self.wait_in_caller: Optional[Callable[[Optional[float]], bool]] = None

    # -- what users read -------------------------------------------------------------
    @property
    def instance_id(self) -> str:
        """The id of the instance this future belongs to (``TaskInstance.id``, and
        ``TaskControl.instance_id`` in its task and handlers)."""
        return self._instance_id

    @property
    def status(self) -> str:
        """One of ``"pending"``, ``"running"``, ``"completed"``, ``"failed"``, ``"cancelled"``,
        or ``"retrying"`` between a failed attempt and the next (a task with ``retries``)."""
        return self._status

    @property
    def attempt(self) -> int:
        """The number of the instance's current (or, once final, last) run, 1 for the
        first and 2 for the first retry (see ``@task(retries=...)``)."""
        return self._attempt

    # The spec's property where the base class has a method: a DoneFlag is both (see its
    # docstring). Type checkers see the bool the spec promises.
    @property
    def done(self) -> bool:  # type: ignore[override]
        """True once the instance completed, failed or was cancelled.

        A :class:`~numerous.tasks.future.DoneFlag`: ``if future.done:`` reads it, and
        ``future.done()`` works too, as the standard library calls it."""
        return _DONE_FLAG if self._status in FINAL_STATES else _NOT_DONE_FLAG

    @property
    def error(self) -> Optional[BaseException]:
        """The exception the task failed with, or None (also None when cancelled)."""
        return self._exception if self._status == FAILED else None

    def cancelled(self) -> bool:
        """True if the instance was cancelled (status ``"cancelled"``)."""
        return self._status == CANCELLED

    def running(self) -> bool:
        """True while the instance runs (status ``"running"``)."""
        return self._status == RUNNING

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
        self._wait_until_final(timeout, "Future.result()")
        if self._status == COMPLETED:
            value: R = self._result
            return value
        if self._status == CANCELLED:
            raise self._cancelled_error()
        assert self._exception is not None
        # Re-raise with the traceback it arrived with, so repeated result() calls do
        # not pile up frames of their own on it.
        raise self._exception.with_traceback(self._error_traceback)

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        """Wait for the instance to finish and return the exception it failed with, or
        None if it completed (``concurrent.futures``' method; :attr:`error` reads the same
        without waiting).

        Raises:
            ValueError, RuntimeError, TimeoutError: as :meth:`result`.
            TaskCancelledError: the instance was cancelled.
        """
        self._wait_until_final(timeout, "Future.exception()")
        if self._status == CANCELLED:
            raise self._cancelled_error()
        return self.error

    def wait_done(self, timeout: Optional[float] = None) -> bool:
        """Wait until the instance finished, without raising its error; True if it did.

        Raises:
            ValueError: ``timeout`` is NaN or negative.
            RuntimeError: as :meth:`result`, on the dispatcher thread that would finish it.
        """
        timeout = check_wait_timeout(timeout)
        if self._status in FINAL_STATES:
            return True
        if timeout != 0:
            refuse_to_block(self.owner, "Future.wait_done()")
        condition = self._condition
        with condition:
            return wait_for(condition, lambda: self._status in FINAL_STATES, timeout)

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

        Callbacks run in the thread that finishes the future, as in ``concurrent.futures``:
        the backend's dispatcher thread, or the thread that cancels a pending instance
        (to act in an event loop, ``asyncio.wrap_future(future).add_done_callback(...)``).
        Exceptions they raise are logged and ignored (on the dispatcher thread even
        ``SystemExit``). A callback on the dispatcher thread may call ``result()`` of this
        future (it is finished), but not wait for an unfinished one of the same session:
        that raises RuntimeError.

        asyncio's own callbacks (``asyncio.wait`` adds one) are the exception: they assume
        an ``asyncio.Future``'s rule, so one added inside a running event loop is called in
        that loop (on the finishing thread if the loop has been closed by then).
        """
        if not self._add_callback_unless_done(fn, _loop_of_asyncio_code(fn)):
            self._run_callback(cast(_Callback, fn))

    def remove_done_callback(self, fn: Callable[[Future[R]], object]) -> int:
        """Forget ``fn`` if it has not been called yet; return how many times it had been
        added (``asyncio.Future``'s method, which ``asyncio.wait`` calls)."""
        with _STATE_LOCK:
            callbacks = self._callbacks or []
            kept = [entry for entry in callbacks if entry[0] != fn]
            self._callbacks = kept
        return len(callbacks) - len(kept)

    def __await__(self) -> Generator[Any, None, R]:
        """``await future``: the instance's value, without blocking the event loop.

        Raises what :meth:`result` raises. Cancelling the awaiting asyncio task (directly,
        through ``asyncio.wait_for``'s timeout or a cancelled ``asyncio.gather``) cancels
        the instance if it is still pending or asks it to stop if it runs, exactly like
        :meth:`cancel`, and the ``CancelledError`` propagates at once without waiting for
        the task to return. Wrap the future in ``asyncio.shield()`` to stop waiting without
        stopping the task.
        """
        return self._wait_in_loop().__await__()

    async def _wait_in_loop(self) -> R:
        import asyncio

        try:
            await self._finished_in_loop()
        except asyncio.CancelledError:
            self.cancel()
            raise
        return self.result(timeout=0)

    async def _finished_in_loop(self) -> None:
        """Return, in the running event loop, once the future is final; cancelling the
        awaiting task only stops the waiting."""
        if self.done:
            return
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
                self.remove_done_callback(wake)
                raise

    def __repr__(self) -> str:
        return f"<Future {self._description} status={self._status}>"

    # -- for waiters ----------------------------------------------------------------------
    @property
    def _condition(self) -> threading.Condition:
        """The base class's condition (what ``concurrent.futures.wait()`` locks, and what
        :meth:`result` waits on), made on first use."""
        condition = self._cond
        if condition is None:
            with _STATE_LOCK:
                condition = self._cond
                if condition is None:
                    condition = self._cond = threading.Condition()
        return condition

    @_condition.setter
    def _condition(self, condition: threading.Condition) -> None:
        self._cond = condition

    @property
    def _waiters(self) -> List[Any]:
        """The base class's list of ``concurrent.futures`` waiters, made on first use."""
        waiters = self._waiter_list
        if waiters is None:
            with _STATE_LOCK:
                waiters = self._waiter_list
                if waiters is None:
                    waiters = self._waiter_list = _Waiters(self)
        return waiters

    @_waiters.setter
    def _waiters(self, waiters: List[Any]) -> None:
        self._waiter_list = _Waiters(self)
        self._waiter_list.extend(waiters)

    def _add_callback_unless_done(
        self, fn: Callable[[Future[R]], object], loop: Optional[asyncio.AbstractEventLoop] = None
    ) -> bool:
        """Register ``fn`` to be called on the finishing thread (or in ``loop``) and
        return True, or return False without calling it if the future has finished."""
        with _STATE_LOCK:
            if self._status in FINAL_STATES:
                return False
            if self._callbacks is None:
                self._callbacks = []
            self._callbacks.append((cast(_Callback, fn), loop))
            return True

    def _wait_until_final(self, timeout: Optional[float], what: str) -> None:
        given = timeout = check_wait_timeout(timeout)
        if self._status in FINAL_STATES:
            return
        if timeout != 0:
            refuse_to_block(self.owner, what)
            wait_in_caller = self.wait_in_caller
            if wait_in_caller is not None:
                deadline = None if timeout is None else time.monotonic() + timeout
                if wait_in_caller(deadline):
                    return
                if deadline is not None:  # what is left of it, on the condition
                    timeout = max(0.0, deadline - time.monotonic())
        condition = self._condition
        with condition:
            if not wait_for(condition, lambda: self._status in FINAL_STATES, timeout):
                raise ResultTimeoutError(
                    f"{self._description} did not finish within {given} s; it keeps running "
                    "(call result() again, or stop() the instance)"
                )

    def _cancelled_error(self) -> TaskCancelledError:
        return TaskCancelledError(f"{self._description} was cancelled before it produced a value")

    # -- what the library sets ------------------------------------------------------
    def set_running(self) -> bool:
        """Move from pending (or retrying) to running; False if the future is elsewhere."""
        with _STATE_LOCK:
            if self._status not in (PENDING, RETRYING) or self._finishing:
                return False
            self._status, self._state = RUNNING, _cf.RUNNING
        self._tell_listener(RUNNING, None)
        return True

    def set_retrying(self, error: BaseException) -> bool:
        """An attempt failed with ``error`` and the instance will run again: move to
        retrying and count the next attempt; False if the future is already final."""
        with _STATE_LOCK:
            if self._status in FINAL_STATES or self._finishing:
                return False
            self._status, self._state = RETRYING, _cf.RUNNING
            self._attempt += 1
        self._tell_listener(RETRYING, error)
        return True

    def set_running_or_notify_cancel(self) -> bool:
        """``concurrent.futures``' producer step: move to running and return True, or
        return False if the future was cancelled first.

        Raises:
            RuntimeError: the future is already running or finished.
        """
        if self.set_running():
            return True
        if self._status == CANCELLED:
            return False
        raise RuntimeError(f"Future in unexpected state: {self!r}")

    def set_result(self, value: Any) -> bool:  # type: ignore[override]  # False when already finished
        """Finish as completed with ``value``; False if already finished."""
        return self._finish(COMPLETED, value, None)

    def set_error(self, error: BaseException) -> bool:
        """Finish as failed with ``error``; False if already finished."""
        return self._finish(FAILED, None, error)

    def set_exception(self, exception: BaseException) -> bool:  # type: ignore[override]  # as set_result
        """Finish as failed with ``exception`` (numerous-sdk's name for :meth:`set_error`)."""
        return self._finish(FAILED, None, exception)

    def attach(self, canceller: Canceller, instance_id: str) -> None:
        """Tie a free-standing future to the instance a backend runs for it:
        ``cancel()`` asks ``canceller``, and ``instance_id`` is that instance's."""
        if not self._instance_id:
            self._instance_id = instance_id
        if not self.done:
            self._canceller = canceller

    def report_pending(self) -> None:
        """Tell the state listener the instance is ``"pending"``, its first state (the
        session calls this once the instance is queued or about to launch; the other
        states are told as the future moves to them)."""
        self._tell_listener(PENDING, None)

    def set_cancelled(self) -> bool:
        """Finish as cancelled; False if already finished."""
        return self._finish(CANCELLED, None, None)

    def _finish(self, status: str, value: Any, error: Optional[BaseException]) -> bool:
        with _STATE_LOCK:
            if self._status in FINAL_STATES or self._finishing:
                return False
            self._finishing = True  # from here on, this call alone decides the outcome
        self._tell_listener(status, error)
        # The listener and the canceller refer back to the instance's job, which refers
        # to this future: dropped once final, the cycle goes with the last reference
        # instead of waiting for a full garbage collection.
        self.listener = self._canceller = self.wait_in_caller = None
        with _STATE_LOCK:
            # The outcome before the status: result() reads a final status without a lock.
            self._result, self._exception = value, error
            self._error_traceback = None if error is None else error.__traceback__
            self._state = _BASE_STATE[status]
            self._status = status
            callbacks, self._callbacks = self._callbacks, None
            # Whoever waits made the condition first; one made from here on sees the
            # final state before it waits.
            condition = self._cond
        if condition is not None:
            with condition:
                for waiter in self._waiter_list or ():  # concurrent.futures.wait(), as_completed()
                    _tell_waiter(waiter, status, self)
                condition.notify_all()
        for fn, loop in callbacks or ():
            self._deliver(fn, loop)
        return True

    def _deliver(self, fn: _Callback, loop: Optional[asyncio.AbstractEventLoop]) -> None:
        if loop is None or loop is _running_loop():
            self._run_callback(fn)
            return
        try:
            loop.call_soon_threadsafe(self._run_callback, fn)
        except RuntimeError:  # its loop was closed meanwhile: run it here rather than never
            self._run_callback(fn)

    def _tell_listener(self, status: str, error: Optional[BaseException]) -> None:
        listener = self.listener
        if listener is not None:
            try:
                listener(status, error)
            except BaseException as exc:  # as call_user_code, without a frame more per change
                report_raised(exc, f"state listener of {self._description}")

    def _run_callback(self, fn: _Callback) -> None:
        try:
            fn(self)
        except BaseException as exc:  # as call_user_code
            report_raised(exc, f"done callback {fn!r} of {self._description}")


#: numerous-sdk's name for the future its local backend resolved: the same class here.
LocalFuture = Future


class _Waiters(List[Any]):
    """A future's ``_waiters``: where ``concurrent.futures.wait()`` and ``as_completed()``
    put their waiter while they wait. Putting one on an unfinished future from the
    dispatcher thread that finishes it would wait forever, so that raises RuntimeError."""

    __slots__ = ("_future",)

    def __init__(self, future: Future[Any]) -> None:
        super().__init__()
        self._future = weakref.ref(future)

    def append(self, waiter: Any) -> None:
        """Add ``waiter`` (refused on the dispatcher thread, see the class docstring)."""
        future = self._future()
        if future is not None and future.status not in FINAL_STATES:
            refuse_to_block(future.owner, "concurrent.futures.wait() or as_completed()")
        super().append(waiter)


def _tell_waiter(waiter: Any, status: str, future: Future[Any]) -> None:
    """Hand a finished future to a ``concurrent.futures`` waiter."""
    if status == COMPLETED:
        waiter.add_result(future)
    elif status == FAILED:
        waiter.add_exception(future)
    else:
        waiter.add_cancelled(future)


def _loop_of_asyncio_code(fn: Callable[..., object]) -> Optional[asyncio.AbstractEventLoop]:
    """The event loop running in this thread if ``fn`` is asyncio's own code, else None.

    asyncio calls the callbacks of its futures in their loop's thread, and its own
    callbacks rely on it (``asyncio.wait``'s sets an asyncio future, which is not safe
    from another thread). Every other callback keeps ``concurrent.futures``' rule, so a
    callback the library or the application needs never waits for a busy event loop.
    """
    module = getattr(fn, "__module__", None) or ""
    if module.partition(".")[0] not in ("asyncio", "_asyncio"):
        return None
    return _running_loop()


def _running_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The asyncio event loop running in this thread, if any (without importing asyncio:
    if it is not imported, no loop runs)."""
    module = sys.modules.get("asyncio")
    return None if module is None else cast(Optional["asyncio.AbstractEventLoop"], module._get_running_loop())


def _resolve_waiter(waiter: asyncio.Future[None]) -> None:
    """Wake an awaiting coroutine (in its loop's thread), unless it stopped waiting."""
    if not waiter.done():
        waiter.set_result(None)
