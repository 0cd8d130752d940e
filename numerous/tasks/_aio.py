"""The library's blocking steps, awaited from a coroutine without blocking its event loop.

Leaving a session waits for its instances and shuts its backend down: seconds, spent
blocked in ``threading`` waits. :func:`await_in_thread` runs such a step in a thread of
its own and suspends only the awaiting coroutine::

    event loop thread                         numerous-await-<name> thread
    -----------------                         ----------------------------
    await await_in_thread(step) ── start ──▶  step()  (blocks here, not the loop)
      loop keeps running                       │
      cancelled? on_cancel(n), keep waiting    │
    resumes ◀── call_soon_threadsafe ───────  returns or raises

A step cannot be interrupted halfway, so cancelling the awaiting task does not abandon
it: ``on_cancel`` is told (to make the step end sooner, e.g. by stopping the instances it
waits for), the coroutine keeps waiting for the step's end, and only then raises
``CancelledError``. A dedicated thread, not the loop's default executor, so a step never
queues behind the application's own work there.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from typing import Callable, Optional, TypeVar

__all__ = ["await_in_thread"]

T = TypeVar("T")


async def await_in_thread(step: Callable[[], T], name: str, on_cancel: Optional[Callable[[int], None]] = None) -> T:
    """Run ``step()`` in a new thread and await what it returns or raises.

    Args:
        step: a blocking call; it runs in a copy of the caller's context.
        name: the thread is called ``numerous-await-<name>``.
        on_cancel: called in the loop's thread with 1, 2, ... each time the awaiting task
            is cancelled while the step runs.

    Raises:
        asyncio.CancelledError: the awaiting task was cancelled (raised once the step ended).
        BaseException: what ``step()`` raised.
    """
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[T] = loop.create_future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            value = context.run(step)
        except BaseException as exc:  # handed to the awaiting coroutine, which raises it
            _report(loop, outcome, None, exc)
        else:
            _report(loop, outcome, value, None)

    thread = threading.Thread(target=run, name=f"numerous-await-{name}", daemon=True)
    thread.start()
    cancelled: Optional[asyncio.CancelledError] = None
    cancellations = 0
    try:
        while True:
            try:
                value = await asyncio.shield(outcome)
                break
            except asyncio.CancelledError as exc:
                if outcome.done():  # what the step itself raised
                    raise
                cancelled, cancellations = cancelled or exc, cancellations + 1
                if on_cancel is not None:
                    on_cancel(cancellations)
    finally:
        if outcome.done():
            thread.join()  # it has reported: this returns at once
    if cancelled is not None:
        raise cancelled
    return value


def _report(
    loop: asyncio.AbstractEventLoop, outcome: asyncio.Future[T], value: Optional[T], exc: Optional[BaseException]
) -> None:
    """Hand the step's outcome to the loop's thread (from the step's thread)."""
    try:
        loop.call_soon_threadsafe(_settle, outcome, value, exc)
    except RuntimeError:  # the loop was closed: nobody awaits the step any more
        pass


def _settle(outcome: asyncio.Future[T], value: Optional[T], exc: Optional[BaseException]) -> None:
    if outcome.done():
        return
    if exc is not None:
        outcome.set_exception(exc)
    else:
        outcome.set_result(value)  # type: ignore[arg-type]  # a T when exc is None
