"""The wait between a failed attempt of an instance and its next one.

A :class:`RetryWait` lives from the moment an attempt is retried (its future says
``"retrying"``) until the next attempt is launched or the instance is cancelled —
whichever comes first, decided under one lock, so a cancel during ``retry_delay``
cancels for good and nothing is launched after it::

    begin() ── delay 0: launch now ──────────────────────────▶ relaunch(job)
            ── delay s: a timer thread (numerous-retry-<id>) ─▶ relaunch(job)
    cancel() ─ before that: the timer is cancelled and joined, True (the caller settles
               the future as cancelled); after it: False (the attempt runs; stop it)
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Callable, Optional

if TYPE_CHECKING:
    from .backends.base import Job

__all__ = ["RetryWait"]


class RetryWait:
    """One instance waiting for its next attempt.

    Args:
        job: the instance.
        delay: seconds to wait (0: launch on the calling thread at once).
        relaunch: prepares and launches the job again (the session's).
    """

    def __init__(self, job: Job, delay: float, relaunch: Callable[[Job], None]) -> None:
        self.job = job
        self._delay = delay
        self._relaunch = relaunch
        self._lock = threading.Lock()
        self._waiting = True
        self._timer: Optional[threading.Timer] = None

    def begin(self) -> None:
        """Start waiting (or, with no delay, launch now)."""
        if self._delay <= 0:
            self._fire()
            return
        timer = threading.Timer(self._delay, self._fire)
        timer.name = f"numerous-retry-{self.job.instance_id}"
        timer.daemon = True
        with self._lock:  # started under the lock: cancel() finds it started, or not at all
            if not self._waiting:  # cancelled before it began
                return
            self._timer = timer
            timer.start()

    def _fire(self) -> None:
        with self._lock:
            if not self._waiting:
                return
            self._waiting = False
        self._relaunch(self.job)

    def cancel(self) -> bool:
        """Stop waiting: True if the next attempt will never be launched, False if it
        was launched already (or is being launched)."""
        with self._lock:
            if not self._waiting:
                return False
            self._waiting = False
            timer = self._timer
        if timer is not None:
            timer.cancel()
            if timer is not threading.current_thread():
                timer.join()
        return True
