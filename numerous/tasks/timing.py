"""When an instance was started, began running, was asked to stop, and finished.

All four are ``time.monotonic_ns()`` readings (``CLOCK_MONOTONIC`` on Linux: one clock
for every process on the machine, so the worker's reading of when the body began is
comparable with the parent's). A user measures cancellation latency as
``finished_ns - stop_requested_ns`` without instrumenting the task.

An instance of a task with ``retries`` may run more than once: ``attempts`` keeps the
attempts that failed and were run again, and ``running_ns`` is the latest attempt's start
(:meth:`InstanceTimes.all_attempts` lists them all, the last one included).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import List, NamedTuple, Optional

__all__ = ["AttemptTimes", "InstanceTimes"]


class AttemptTimes(NamedTuple):
    """One run of an instance (monotonic nanoseconds; None: it did not get that far)."""

    attempt: int
    """1 for the first run, 2 for the first retry, ..."""
    running_ns: Optional[int]
    """When its body began running, or None if it failed before that (no worker could start, say)."""
    ended_ns: Optional[int]
    """When it ended, or None for the last attempt while it runs."""
    error: Optional[str]
    """``Type: message`` of the error it failed with (None: the last attempt)."""


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
    attempts: List[AttemptTimes] = field(default_factory=list)
    """The attempts that failed and were retried, oldest first (empty without retries)."""

    def end_attempt(self, error: BaseException) -> None:
        """The latest attempt failed with ``error`` and is retried: record it; the next
        attempt's ``running_ns`` is read afresh."""
        from ._lifecycle.running import safe_str

        self.attempts.append(
            AttemptTimes(
                len(self.attempts) + 1,
                self.running_ns,
                time.monotonic_ns(),
                f"{type(error).__name__}: {safe_str(error)}",
            )
        )
        self.running_ns = None

    def all_attempts(self) -> List[AttemptTimes]:
        """Every attempt, oldest first: the retried ones and the latest (whose
        ``ended_ns`` is ``finished_ns``, None while it runs)."""
        last = AttemptTimes(len(self.attempts) + 1, self.running_ns, self.finished_ns, None)
        return [*self.attempts, last]

    def mark_stop_requested(self) -> None:
        """Record the first stop request; later ones do not move it."""
        if self.stop_requested_ns is None:
            self.stop_requested_ns = time.monotonic_ns()
