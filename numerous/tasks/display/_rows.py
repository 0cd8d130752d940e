"""What the display knows: a :class:`Row` per instance and the :class:`Board` of them.

A ``task.map()`` is one row too (its ``map`` holds the items' counts): the instances that
run its chunks are not rows of their own; the board sends what they report to their
map's row (:meth:`Board.chunk_progress`).

Data only, like rich's ``progress.Task``: nothing here draws, locks, samples or reads a
clock. Every method that needs the time takes ``now`` (seconds of the display's clock),
so a test drives it with a number. The display holds its lock around every call.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Counter, Deque, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from .._map_progress import MapProgress

__all__ = ["FINAL_STATES", "LABELS", "Board", "MapItems", "Row", "Speed"]

FINAL_STATES = frozenset({"completed", "failed", "cancelled"})
#: Every label a row can show, in the order counts list them.
LABELS = ("running", "retrying", "stopping", "pending", "completed", "stopped", "failed", "cancelled")
#: Seconds of history a speed is measured over: long enough to smooth a task's uneven
#: steps, short enough to follow a change of pace (rich's ``speed_estimate_period`` too).
SPEED_WINDOW = 30.0
#: Seconds between kept speed samples: a task reporting 10,000 times a second keeps
#: at most ~120 samples, not 300,000.
SAMPLE_SPACING = 0.25


class Speed:
    """How fast a value grows, measured over the last :data:`SPEED_WINDOW` seconds."""

    __slots__ = ("_samples",)

    def __init__(self) -> None:
        self._samples: Deque[Tuple[float, float]] = collections.deque()

    def add(self, now: float, value: float) -> None:
        """Record ``value`` as of ``now`` (times never go back)."""
        samples = self._samples
        if len(samples) >= 2 and now - samples[-2][0] < SAMPLE_SPACING:
            samples[-1] = (now, value)  # too close to the one before: keep the newest value
        else:
            samples.append((now, value))
        # Keep one sample at or before the window's start, so the window stays covered.
        while len(samples) > 2 and samples[1][0] <= now - SPEED_WINDOW:
            samples.popleft()

    def per_second(self, now: float) -> Optional[float]:
        """Growth per second from the window's first sample until ``now``, or None
        before there is any growth (a stalled value slows the speed down, as it should)."""
        if not self._samples:
            return None
        start, first = self._samples[0]
        gained = self._samples[-1][1] - first
        if gained <= 0 or now <= start:
            return None
        return gained / (now - start)

    def time_left(self, now: float, remaining: float) -> Optional[float]:
        """Seconds until ``remaining`` more is done at the current speed, or None."""
        speed = self.per_second(now)
        return None if speed is None else max(0.0, remaining) / speed


@dataclass(eq=False)
class MapItems:
    """The items of a map's row: what the map reported, and how far its running chunks
    are inside (each chunk's own progress, as items)."""

    total: Optional[int] = None  # None while the input's end is unknown
    started: int = 0
    done: int = 0  # items whose values (or errors) are back
    failed: int = 0
    chunks: Dict[str, int] = field(default_factory=dict)  # running chunk instance id -> its items
    partial: Dict[str, float] = field(default_factory=dict)  # running chunk id -> items done in it
    speed: Speed = field(default_factory=Speed, repr=False)  # items done over time
    traceback_shown: bool = False  # the error that failed the map was printed

    def items_done(self) -> float:
        """Items done: the finished chunks' and the running ones' fractions."""
        return self.done + sum(self.partial.values())

    def percent(self) -> float:
        """Of the total, or while it is unknown, of the items started so far."""
        of = self.total if self.total is not None else self.started
        return 0.0 if not of else min(100.0, 100.0 * self.items_done() / of)


@dataclass(eq=False)
class Row:
    """One instance as the display shows it, or one ``task.map()`` (``map`` is set)."""

    task_name: str
    instance_id: str
    control: Any = field(default=None, repr=False)  # its TaskControl, polled for stops
    state: str = "pending"
    progress: float = 0.0
    status: str = ""
    error: str = ""  # "Type: message" of a failure
    started: Optional[float] = None  # began running
    finished: Optional[float] = None
    stop_requested: bool = False
    pid: Optional[int] = None
    cpu: Optional[float] = None
    rss: Optional[int] = None
    peak_rss: Optional[int] = None
    figures_sent: bool = False  # the backend reads its process where it runs: never read here
    announced: bool = False  # its "running" line was printed (log output)
    speed: Speed = field(default_factory=Speed, repr=False)
    map: Optional[MapItems] = None  # set for a map's row
    attempt: int = 1  # which run (a task with retries): 2 for the first retry, ...
    retries: int = 0  # the task's allowance
    retried_error: str = ""  # "Type: message" of the attempt that failed last and was retried

    @property
    def retry(self) -> str:
        """``retry 1/3`` from the first retry on ("" before)."""
        return f"retry {self.attempt - 1}/{self.retries}" if self.attempt > 1 else ""

    def take_figures(self, cpu: Optional[float], rss: Optional[int]) -> None:
        """Record a reading of its process's CPU % and RSS (None: not read this time)."""
        if rss is not None:
            self.rss = rss
            self.peak_rss = max(rss, self.peak_rss or 0)
        if cpu is not None:
            self.cpu = cpu

    @property
    def label(self) -> str:
        """The state shown: "stopping" while a stop is pending, "stopped" for a task
        that returned after a stop request."""
        if self.state == "running" and self.stop_requested:
            return "stopping"
        if self.state == "completed" and self.stop_requested:
            return "stopped"
        return self.state

    @property
    def done(self) -> bool:
        """Whether it reached a final state."""
        return self.state in FINAL_STATES

    @property
    def shown_progress(self) -> float:
        """Percent done: a completed task did all its work, whether it said so or not."""
        return 100.0 if self.label == "completed" else self.progress

    def elapsed(self, now: float) -> Optional[float]:
        """Seconds it has run (until it finished), or None if it never ran."""
        if self.started is None:
            return None
        end = self.finished if self.finished is not None else now
        return max(0.0, end - self.started)

    def time_left(self, now: float) -> Optional[float]:
        """Estimated seconds until it reaches 100%, from its recent progress."""
        if self.state != "running" or self.progress <= 0:
            return None
        if self.map is not None and self.map.total is None:  # a percentage of what, yet?
            return None
        return self.speed.time_left(now, 100.0 - self.progress)


class Board:
    """Every row of a display, in the order instances appeared, and the totals."""

    def __init__(self) -> None:
        self.rows: Dict[str, Row] = {}
        self.unfinished: Dict[str, Row] = {}  # the rows not final yet, in the same order
        self.finish_order: List[Row] = []
        self.chunk_rows: Dict[str, Row] = {}  # a running chunk's instance id -> its map's row
        self.started_at: Optional[float] = None  # the display began
        self.first_run_at: Optional[float] = None  # the first instance began running
        self.work = Speed()  # instances' worth of work done: finished ones + fractions
        self._progress_sum = 0.0  # percent, over unfinished rows
        self._finished = 0

    # -- changes ------------------------------------------------------------------------
    def row(self, task_name: str, instance_id: str, control: Any = None) -> Row:
        """The row of an instance, made the first time it is seen."""
        row = self.rows.get(instance_id)
        if row is None:
            row = self.rows[instance_id] = self.unfinished[instance_id] = Row(task_name, instance_id, control)
        return row

    def map_row(self, map_id: str, task_name: str) -> Row:
        """The row of a map, made the first time it is seen."""
        row = self.rows.get(map_id)
        if row is None:
            row = self.rows[map_id] = self.unfinished[map_id] = Row(task_name, map_id, map=MapItems())
        return row

    def update_map(self, row: Row, progress: MapProgress, now: float, error: str = "") -> bool:
        """Take a map's report; True if its row changed state."""
        items = row.map
        assert items is not None
        items.total, items.started, items.done, items.failed = (
            progress.total,
            progress.started,
            progress.done,
            progress.failed,
        )
        for gone in set(items.chunks) - set(progress.chunks):
            self.chunk_rows.pop(gone, None)
            items.partial.pop(gone, None)
        items.chunks = dict(progress.chunks)
        for chunk in items.chunks:
            self.chunk_rows[chunk] = row
        row.stop_requested = row.stop_requested or progress.stop_requested
        changed = False
        if row.state == "pending":
            changed = self.set_state(row, "running", now)
        self._map_moved(row, now)
        if progress.state in FINAL_STATES:
            changed = self.set_state(row, progress.state, now, error) or changed
        return changed

    def chunk_progress(self, instance_id: str, percent: float, now: float) -> Optional[Row]:
        """A map's chunk reported ``percent``: its map's row (moved on), or None if it is
        no chunk of a map shown here."""
        row = self.chunk_rows.get(instance_id)
        if row is not None:
            items = row.map
            assert items is not None
            items.partial[instance_id] = items.chunks.get(instance_id, 0) * percent / 100.0
            self._map_moved(row, now)
        return row

    def _map_moved(self, row: Row, now: float) -> None:
        items = row.map
        assert items is not None
        if row.state == "running":
            items.speed.add(now, items.items_done())
        self.set_progress(row, items.percent(), now)

    def set_state(self, row: Row, state: str, now: float, error: str = "") -> bool:
        """Move ``row`` to ``state``; False (and no change) once it is final."""
        if row.done:
            return False
        row.state = state
        if state == "running" and row.started is None:
            row.started = now
            row.speed.add(now, row.progress)
            if self.first_run_at is None:
                self.first_run_at = now
        if state in FINAL_STATES:
            row.finished = now
            row.error = error
            self._progress_sum -= row.progress
            self._finished += 1
            self.finish_order.append(row)
            self.unfinished.pop(row.instance_id, None)
            self.work.add(now, self.work_done())
        return True

    def set_progress(self, row: Row, progress: float, now: float) -> None:
        """Move ``row``'s bar to ``progress`` percent."""
        if row.done:
            row.progress = progress
            return
        self._progress_sum += progress - row.progress
        row.progress = progress
        if row.state == "running":
            row.speed.add(now, progress)
        self.work.add(now, self.work_done())

    # -- totals -------------------------------------------------------------------------
    @property
    def total(self) -> int:
        """Instances seen."""
        return len(self.rows)

    @property
    def finished(self) -> int:
        """Instances in a final state."""
        return self._finished

    def all_done(self) -> bool:
        """Whether every instance seen has finished."""
        return self._finished == len(self.rows)

    def work_done(self) -> float:
        """Instances' worth of work done: each finished one counts 1, a running one its
        fraction."""
        return self._finished + max(0.0, self._progress_sum) / 100.0

    def counts(self) -> Counter[str]:
        """How many rows show each label."""
        return collections.Counter(row.label for row in self.rows.values())

    def rate(self, now: float) -> Optional[float]:
        """Finished instances per second since the first one began running."""
        if not self._finished or self.first_run_at is None or now <= self.first_run_at:
            return None
        return self._finished / (now - self.first_run_at)

    def time_left(self, now: float) -> Optional[float]:
        """Estimated seconds until every instance seen has finished."""
        if self.all_done():
            return None
        return self.work.time_left(now, len(self.rows) - self.work_done())

    def elapsed(self, now: float) -> float:
        """Seconds since the display began."""
        return 0.0 if self.started_at is None else max(0.0, now - self.started_at)
