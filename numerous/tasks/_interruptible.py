"""Waits that Ctrl-C ends at once, whichever thread the kernel gave the signal to.

Linux may deliver a process's SIGINT to any of its threads. CPython raises
KeyboardInterrupt only in the main thread, and only when that thread runs: a main thread
blocked in an untimed lock wait is not woken by a signal another thread received, so
Ctrl-C waited for whatever it waited for (seen: a 20-second task in ``result()``). On the
main thread these waits therefore wake at least every :data:`MAIN_THREAD_SLICE` seconds;
on any other thread they wait as asked.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Optional

__all__ = ["MAIN_THREAD_SLICE", "wait_event", "wait_for"]

#: The longest one wait of the main thread lasts before it looks for a pending signal.
MAIN_THREAD_SLICE = 0.1


def wait_for(condition: threading.Condition, predicate: Callable[[], bool], timeout: Optional[float]) -> bool:
    """``condition.wait_for(predicate, timeout)`` (call it with ``condition`` held)."""
    if threading.current_thread() is not threading.main_thread():
        return condition.wait_for(predicate, timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while not predicate():
        if deadline is None:
            condition.wait(MAIN_THREAD_SLICE)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return predicate()
        condition.wait(min(remaining, MAIN_THREAD_SLICE))
    return True


def wait_event(event: threading.Event, timeout: Optional[float]) -> bool:
    """``event.wait(timeout)``."""
    if threading.current_thread() is not threading.main_thread():
        return event.wait(timeout)
    deadline = None if timeout is None else time.monotonic() + timeout
    while not event.is_set():
        remaining = MAIN_THREAD_SLICE if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            return event.is_set()
        event.wait(min(remaining, MAIN_THREAD_SLICE))
    return True
