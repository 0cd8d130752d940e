"""One instance on a timeline: the record :mod:`.timeline` keeps and ``_timeline_page`` draws.

Both import it; it imports neither (``timeline.py`` is its public home).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ..timing import InstanceTimes

__all__ = ["TimelineEntry"]


@dataclass
class TimelineEntry:
    """One instance on a timeline."""

    session: str
    task_name: str
    instance_id: str
    times: InstanceTimes = field(repr=False)
    outcome: str = ""  # completed, stopped, failed or cancelled; "" while unfinished
    error: str = ""  # "Type: message" of a failure

    def finish(self, status: str, error: Optional[BaseException]) -> None:
        """Record how the instance ended."""
        from ._format import error_summary

        stopped = status == "completed" and self.times.stop_requested_ns is not None
        self.outcome = "stopped" if stopped else status
        self.error = error_summary(error) if error is not None else ""
