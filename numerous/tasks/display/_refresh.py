"""The display's own thread: it calls ``tick`` every ``interval`` seconds until stopped."""

from __future__ import annotations

import logging
import threading
from typing import Callable, Optional

__all__ = ["RefreshThread"]

logger = logging.getLogger("numerous.tasks")


class RefreshThread:
    """A daemon thread named ``numerous-display`` that ticks until :meth:`stop`.

    A tick that raises is logged and the thread goes on: a display must never take the
    program down.
    """

    def __init__(self, tick: Callable[[], None], interval: float) -> None:
        self._tick = tick
        self._interval = interval
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def start(self) -> None:
        """Start ticking."""
        self._thread = threading.Thread(target=self._run, name="numerous-display", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking and wait for the thread to end (a tick in progress finishes)."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                self._tick()
            except Exception:
                logger.exception("the task display failed to refresh")
