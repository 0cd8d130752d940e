"""The stop ladder of one instance: stop request → grace → terminate → kill.

The same ladder on every backend; what "terminate" and "kill" do is the backend's (signal
a process tree, give up on a thread, set a cluster Event). A backend asks :meth:`due`
what to do now and :meth:`next_at` when to ask again::

    request_stop(grace) ─▶ stop flag up ─ grace ─▶ TERMINATE ─ terminate grace ─▶ KILL
    start_clock(timeout) ─ timeout ─▶ TIMEOUT (the backend requests a stop) ─▶ ...
    outcome_arrived()   ─ exit grace ─▶ TERMINATE (a process slow to exit after its
                                        result; not "terminated": the outcome stands)

All times are ``time.monotonic()`` seconds. A ladder is used by one thread (its backend's
dispatcher) except :meth:`request_stop`, which any thread may call.
"""

from __future__ import annotations

import enum
from typing import Optional

__all__ = ["Step", "StopLadder"]

_INF = float("inf")


class Step(enum.Enum):
    """What a backend must do now."""

    TIMEOUT = "timeout"  # the instance ran out of time: request a stop (with its grace)
    TERMINATE = "terminate"  # terminate it (SIGTERM its tree, give up on its thread, ...)
    KILL = "kill"  # what terminating left must go now (SIGKILL)


class StopLadder:
    """One instance's deadlines, and what passing each means.

    Args:
        terminate_grace: seconds from TERMINATE to KILL (None: no KILL step, for a
            backend whose terminate is final).
        exit_grace: seconds an instance may take to end after its outcome arrived
            before it is terminated (None: no such deadline).
    """

    def __init__(self, terminate_grace: Optional[float] = None, exit_grace: Optional[float] = None) -> None:
        self._terminate_grace = terminate_grace
        self._exit_grace = exit_grace
        self.timeout_at = _INF
        self.terminate_at = _INF
        self.kill_at = _INF
        self.exit_at = _INF
        self.timed_out = False  # its timeout passed (it was then asked to stop)
        self.terminated = False  # it was terminated for not stopping (not after its outcome)
        self.outcome_arrived_at: Optional[float] = None

    def start_clock(self, now: float, timeout: Optional[float]) -> None:
        """It runs from ``now``: its timeout (if any) starts counting."""
        if timeout is not None:
            self.timeout_at = now + timeout

    def request_stop(self, now: float, grace: float) -> None:
        """A stop was requested: terminate it ``grace`` seconds from now if it is still on."""
        self.terminate_at = min(self.terminate_at, now + max(0.0, grace))

    def outcome_arrived(self, now: float) -> None:
        """Its outcome is in: from now on only a slow exit is terminated."""
        if self.outcome_arrived_at is None:
            self.outcome_arrived_at = now
            if self._exit_grace is not None:
                self.exit_at = now + self._exit_grace

    def due(self, now: float) -> Optional[Step]:
        """The step whose deadline has passed, if any, marked as taken."""
        if now >= self.kill_at:
            self.kill_at = _INF
            return Step.KILL
        if self.outcome_arrived_at is not None:
            if now >= self.exit_at:
                self.exit_at = _INF
                return self._terminate(now)
            return None
        if now >= self.terminate_at:
            self.terminate_at = _INF
            self.terminated = True
            return self._terminate(now)
        if now >= self.timeout_at:
            self.timeout_at = _INF
            self.timed_out = True
            return Step.TIMEOUT
        return None

    def _terminate(self, now: float) -> Step:
        if self._terminate_grace is not None:
            self.kill_at = now + self._terminate_grace
        return Step.TERMINATE

    def next_at(self) -> float:
        """When :meth:`due` next has something to do (``inf``: nothing planned)."""
        if self.outcome_arrived_at is not None:
            return min(self.kill_at, self.exit_at)
        return min(self.kill_at, self.terminate_at, self.timeout_at)
