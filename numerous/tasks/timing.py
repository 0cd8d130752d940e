"""When an instance was started, began running, was asked to stop, and finished.

All four are ``time.monotonic_ns()`` readings (``CLOCK_MONOTONIC`` on Linux: one clock
for every process on the machine, so the worker's reading of when the body began is
comparable with the parent's). A user measures cancellation latency as
``finished_ns - stop_requested_ns`` without instrumenting the task.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

__all__ = ["InstanceTimes"]


@dataclass
class InstanceTimes:
    """Monotonic nanosecond timestamps of one instance's life (None: not yet)."""

    started_ns: Optional[int] = None
    """``start()`` was called."""
    running_ns: Optional[int] = None
    """The task's body began running in its worker (read in the worker)."""
    stop_requested_ns: Optional[int] = None
    """The first stop request (``stop()``, ``cancel()``, a timeout or a session exit)."""
    finished_ns: Optional[int] = None
    """The final state was set (just before ``result()`` could return)."""

    def mark_stop_requested(self) -> None:
        """Record the first stop request; later ones do not move it."""
        if self.stop_requested_ns is None:
            self.stop_requested_ns = time.monotonic_ns()
