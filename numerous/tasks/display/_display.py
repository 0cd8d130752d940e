"""TaskDisplay: the handler that feeds the board, and the display's life cycle."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, List, Optional, Tuple, Type

from rich.console import Console, RenderableType
from rich.text import Text

from ..control import (
    LoggingTaskControlHandler,
    TaskControl,
    TaskControlHandler,
    get_task_control_handler,
    set_task_control_handler,
)
from . import _defaults
from ._format import error_summary
from ._outputs import LogOutput, Output, frame_size, open_output
from ._refresh import RefreshThread
from ._render import final_summary, frame, interrupt_line, log_line, progress_summary, state_line, traceback_block
from ._rows import FINAL_STATES, Board, Row, Speed
from ._sampler import Sampler

if TYPE_CHECKING:
    from .._map_progress import MapProgress
    from ..resources import ResourceFigures

__all__ = ["TaskDisplay", "session_display"]

logger = logging.getLogger("numerous.tasks")

#: Seconds between redraws on a terminal: smooth enough for bars, cheap for the CPU.
REFRESH_INTERVAL = 0.125
#: Seconds between CPU/memory samples of each running instance's process: CPU % needs an
#: interval to mean anything, and reading /proc for hundreds of workers 8 times a second
#: (or sending the figures across a cluster) would cost more than the display is worth.
SAMPLE_INTERVAL = 0.5
#: Seconds between progress summary lines in a log (tqdm's non-terminal mode prints
#: about as often): a CI log shows that a long, quiet task is alive and how far it got.
SUMMARY_INTERVAL = 10.0
#: Seconds an instance runs before a log says it is running: one that ends sooner gets a
#: single line, at its end, so 200 short tasks print 200 lines, not 600.
ANNOUNCE_AFTER = 1.0


class TaskDisplay(TaskControlHandler):
    """Shows every task instance of this process live, and prints their logs.

    On a terminal, a row per instance: task name, short instance id, state, bar,
    percent, elapsed time, estimated time left, the CPU % and memory (RSS; from 100
    columns) of the process running it, and the latest status text — or, for a failed instance, the
    error's type and message; the full traceback is printed above once. Pending
    instances are one count line; finished rows that do not fit the screen are folded
    into a count, failures kept. A footer has the overall bar, done/total, failures,
    the rate, elapsed time and time left. Log records are printed above the rows,
    prefixed with the task name and coloured by level.

    Elsewhere (a pipe, a file, a CI log): plain timestamped lines for log records, for
    each instance's end (and its start too if it runs longer than ``announce_after``),
    and every ``summary_interval`` seconds a line with the totals and each running
    instance's percentage. In a Jupyter notebook: one view updated in place.

    States: ``pending``, ``running``, ``stopping`` (a stop was requested), ``completed``,
    ``stopped`` (completed after a stop request), ``failed``, ``cancelled``.

    A ``task.map()`` is one row, not a row per chunk: its items done of the total, the
    items per second and the time left (from the items' pace, its running chunks' own
    progress included), failures; its log records are prefixed with the map's id, and
    the error that failed it prints once.

    Args:
        console: where to draw; default a new ``rich.console.Console(stderr=True)``:
            like logging and tqdm, the display stays out of your program's stdout.
        get_time: the clock for elapsed times, in seconds (default ``time.monotonic``).
        refresh_interval: seconds between redraws and queue flushes by the display's
            thread; None runs no thread at all (call :meth:`refresh` yourself: tests).
        sample_interval: seconds between CPU/memory samples of each running instance's
            process: read here with psutil for local processes; asked of the backend,
            which reads them where they run, for the others (Dask).
        show_debug: also print ``tc.log(..., "debug")`` records (they are always
            passed on to the previous handler).
        transcript: a second console that gets, without the redraws, what is printed
            above the rows and the final rows: a log file, or a recording console to
            save as SVG or HTML (``numerous-tasks demo --record-svg`` does).
        summary_interval: seconds between progress summary lines when not on a
            terminal (default 10).
        announce_after: seconds an instance runs before a log says it is running
            (default 1); instances that end sooner get one line, at their end.
        wall_clock: the clock the timestamps of a log are read from, once, when the
            display starts (default ``time.time``).

    Raises:
        ValueError: an interval is not a positive number of seconds.
    """

    #: The default of ``announce_after``.
    ANNOUNCE_AFTER = ANNOUNCE_AFTER

    def __init__(
        self,
        *,
        console: Optional[Console] = None,
        get_time: Callable[[], float] = time.monotonic,
        refresh_interval: Optional[float] = REFRESH_INTERVAL,
        sample_interval: float = SAMPLE_INTERVAL,
        show_debug: bool = False,
        transcript: Optional[Console] = None,
        summary_interval: float = SUMMARY_INTERVAL,
        announce_after: float = ANNOUNCE_AFTER,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value in (
            ("refresh_interval", 1.0 if refresh_interval is None else refresh_interval),
            ("sample_interval", sample_interval),
            ("summary_interval", summary_interval),
        ):
            _check_seconds(name, value, positive=True)
        _check_seconds("announce_after", announce_after, positive=False)
        self.console = console if console is not None else Console(stderr=True)
        self.get_time = get_time
        self.refresh_interval = refresh_interval
        self.sample_interval = sample_interval
        self.show_debug = show_debug
        self.transcript = transcript
        self.summary_interval = float(summary_interval)
        self.announce_after = float(announce_after)
        self.wall_clock = wall_clock
        #: Ctrl-C presses counted by :func:`note_interrupt` (the display prints them).
        self.interrupts = 0
        self._interrupts_told = 0
        self._lock = threading.RLock()  # the board and the queue
        self._print_lock = threading.Lock()
        self._board = Board()
        self._queue: List[Tuple[RenderableType, Optional[float]]] = []  # (item, when)
        self._previous: TaskControlHandler = TaskControlHandler()
        self._output: Output = LogOutput(self.console, transcript)
        self._active = False  # entered and drawing (not passive)
        self._thread: Optional[RefreshThread] = None
        self._sampler = Sampler()
        self._next_sample = 0.0
        self._next_summary = 0.0
        self._epoch = 0.0  # wall-clock time at which get_time() read 0

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> TaskDisplay:
        if not _defaults.claim(self):  # another display already shows this process's instances
            return self
        self._active = True
        now = self.get_time()
        self._epoch = self.wall_clock() - now
        self._board = Board()
        self._board.started_at = now
        self._next_summary = now + self.summary_interval
        self._output = open_output(self.console, self.transcript)
        if not self._output.start(self._frame):
            self._output = LogOutput(self.console, self.transcript)
        self._previous = set_task_control_handler(self)
        if self.refresh_interval is not None:
            self._thread = RefreshThread(self._tick, self.refresh_interval)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if not self._active:
            return
        # Put the previous handler back only if we are still the installed one; a
        # handler installed after us stays, and we keep forwarding to ours.
        if get_task_control_handler() is self:
            set_task_control_handler(self._previous)
        if self._thread is not None:
            self._thread.stop()
            self._thread = None
        try:
            now = self.get_time()
            with self._lock:
                self._check_stops()
                if self._output.plain and self._board.rows:
                    self._enqueue(Text(final_summary(self._board, now), style="bold"), now)
            self._flush()
            self._output.stop(self._frame())
        finally:
            self._active = False
            _defaults.release(self)

    def refresh(self) -> None:
        """Print what is queued and redraw the rows now (the display's thread does this
        every ``refresh_interval``, and samples CPU and memory too)."""
        if self._active:
            self._update(sample=False)

    # -- TaskControlHandler ---------------------------------------------------------------
    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        """Queue the record for printing above the rows, then pass it on."""
        try:
            if self._active and (level != "debug" or self.show_debug):
                map_row = self._board.chunk_rows.get(task_control.instance_id)  # a chunk: say its map
                shown_id = task_control.instance_id if map_row is None else map_row.instance_id
                line = log_line(task_control.task_definition_name, shown_id, message, level, extra_data)
                with self._lock:
                    self._enqueue(line, self.get_time())
        finally:
            if not self._swallow_log(level):
                self._previous.log(task_control, message, level, **extra_data)

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        """Move the row's bar (and status text), then pass it on."""
        try:
            if self._active and not self._chunk_progress(task_control, progress):
                row = self._row(task_control)
                if row is not None:
                    now = self.get_time()
                    with self._lock:
                        self._board.set_progress(row, progress, now)
                        if status is not None:
                            row.status = status
        finally:
            self._previous.update_progress(task_control, progress, status)

    def update_status(self, task_control: TaskControl, status: str) -> None:
        """Change the row's status text, then pass it on."""
        try:
            row = None if self._is_chunk(task_control) else self._row(task_control)
            if row is not None:
                with self._lock:
                    row.status = status
        finally:
            self._previous.update_status(task_control, status)

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        """Move the row to ``state``; print a failure's traceback once; pass it on."""
        try:
            # A map's chunk: its map's row says how the map goes (map_changed).
            row = None if self._is_chunk(task_control) else self._row(task_control)
            if row is not None:
                self._change_state(row, state, error)
        finally:
            self._previous.instance_state_changed(task_control, state, error)

    def map_changed(self, progress: MapProgress) -> None:
        """Move the map's row (one for all its chunks); print the error that failed it
        once; pass it on."""
        try:
            if self._active:
                self._change_map(progress)
        finally:
            self._previous.map_changed(progress)

    def resource_sample_interval(self) -> Optional[float]:
        """``sample_interval`` while the display is on (or the previous handler's, if it
        wants figures more often)."""
        wanted = [self._previous.resource_sample_interval()]
        if self._active:
            wanted.append(self.sample_interval)
        return min((w for w in wanted if w is not None), default=None)

    def resources_sampled(self, task_control: TaskControl, figures: ResourceFigures) -> None:
        """Show the figures the backend read where the instance runs (and never read its
        process here); pass them on."""
        try:
            row = None if self._is_chunk(task_control) else self._row(task_control)
            if row is not None:
                with self._lock:
                    row.figures_sent = True
                    if not row.done:
                        row.take_figures(figures.cpu_percent, figures.rss_bytes)
        finally:
            self._previous.resources_sampled(task_control, figures)

    # -- feeding the board --------------------------------------------------------------
    def _row(self, control: TaskControl) -> Optional[Row]:
        # Direct calls (instance id "direct") have no lifecycle to show: only their logs.
        if not self._active or control.instance_id == "direct":
            return None
        with self._lock:
            return self._board.row(control.task_definition_name, control.instance_id, control)

    def _is_chunk(self, control: TaskControl) -> bool:
        with self._lock:
            return control.instance_id in self._board.chunk_rows

    def _chunk_progress(self, control: TaskControl, progress: float) -> bool:
        """Move a map's row by its chunk's progress; False if it is no chunk of a map."""
        now = self.get_time()
        with self._lock:
            return self._board.chunk_progress(control.instance_id, progress, now) is not None

    def _change_map(self, progress: MapProgress) -> None:
        now = self.get_time()
        error = progress.error
        summary = error_summary(error) if error is not None else ""
        with self._lock:
            row = self._board.map_row(progress.map_id, progress.task_name)
            assert row.map is not None
            ended = self._board.update_map(row, progress, now, summary) and row.done
            if self._output.plain and ended:
                self._enqueue(state_line(row, now), now)
            if error is not None and not row.map.traceback_shown:  # as soon as the map fails
                row.map.traceback_shown = True
                self._enqueue(traceback_block(row.task_name, row.instance_id, error, self._output.plain), None)
        if ended:
            self._flush()  # out before the map's last values are taken

    def _change_state(self, row: Row, state: str, error: Optional[BaseException]) -> None:
        now = self.get_time()
        final = state in FINAL_STATES
        summary = error_summary(error) if error is not None else ""
        stop_requested = final and _should_stop(row.control)
        pid = row.control.process_id if state == "running" else None
        attempt = getattr(row.control, "attempt", 1), getattr(row.control, "retries", 0)
        with self._lock:
            if not self._board.set_state(row, state, now, summary):
                return
            if pid is not None:
                row.pid = pid
            row.attempt, row.retries = attempt
            if state == "retrying":  # the next attempt starts from nothing, at its own pace
                row.retried_error, row.status, row.speed = summary, "", Speed()
                self._board.set_progress(row, 0.0, now)
            row.stop_requested = row.stop_requested or stop_requested
            if self._output.plain and (final or state == "retrying"):
                self._enqueue(state_line(row, now), now)
            if state == "failed" and error is not None:
                self._enqueue(traceback_block(row.task_name, row.instance_id, error, self._output.plain), None)
        if final:
            # Print this instance's records now, on the dispatcher thread, so they are
            # out before its result() returns.
            self._flush()

    def _check_stops(self) -> None:
        """Mark rows whose stop was requested (polled: there is no event for it); under _lock."""
        self._note_interrupts()
        now = self.get_time()
        for row in list(self._board.unfinished.values()):
            if not row.stop_requested and _should_stop(row.control):
                row.stop_requested = True
                if self._output.plain and row.state == "running":
                    row.announced = True
                    self._enqueue(state_line(row, now), now)

    # -- the display's thread ---------------------------------------------------------------
    def _tick(self) -> None:
        sample = time.monotonic() >= self._next_sample
        if sample:
            self._next_sample = time.monotonic() + self.sample_interval
        self._update(sample)

    def _update(self, sample: bool) -> None:
        if sample:
            self._sample()
        now = self.get_time()
        with self._lock:
            self._check_stops()
            if self._output.plain:
                self._announce_long_runs(now)
                if now >= self._next_summary:
                    self._next_summary = now + self.summary_interval
                    if self._board.unfinished:
                        self._enqueue(progress_summary(self._board, now), now)
        self._flush()
        self._output.refresh()

    def _announce_long_runs(self, now: float) -> None:
        """Print "running" for instances that have run ``announce_after`` (log output)."""
        for row in self._board.unfinished.values():
            if row.state == "running" and not row.announced and now - (row.started or now) >= self.announce_after:
                row.announced = True
                self._enqueue(state_line(row, now), now)

    def _sample(self) -> None:
        """Read CPU % and RSS of each running instance's process here (psutil; only on the
        display's thread), unless the backend sends them."""
        with self._lock:
            running = [r for r in self._board.unfinished.values() if r.state == "running" and not r.figures_sent]
        figures = self._sampler.sample(running)
        with self._lock:
            for row in running:
                if row.instance_id in figures and row.state == "running":
                    row.take_figures(*figures[row.instance_id])

    def _frame(self) -> RenderableType:
        with self._lock:
            width, height = frame_size(self.console)
            # Ctrl-C is the CLI's and a script's; a notebook's kernel is interrupted instead.
            return frame(self._board, self.get_time(), width, height, hint=not self.console.is_jupyter)

    # -- printing -----------------------------------------------------------------------
    def _enqueue(self, item: RenderableType, when: Optional[float]) -> None:
        """Queue ``item`` for printing; ``when`` (display clock) timestamps it in a log."""
        self._note_interrupts()  # first: what follows may be what the Ctrl-C caused
        self._queue.append((item, when))

    def _note_interrupts(self) -> None:
        """Queue a line for a Ctrl-C that :func:`note_interrupt` counted (under _lock)."""
        if self.interrupts > self._interrupts_told:
            self._interrupts_told = self.interrupts
            self._queue.append((interrupt_line(self._interrupts_told), self.get_time()))

    def _flush(self) -> None:
        # Lock order: _print_lock, then rich's (printing redraws the rows), then _lock
        # (taken by _frame). Never print while holding _lock: the display's thread holds
        # rich's lock while it renders, and rendering takes _lock.
        with self._print_lock:
            with self._lock:
                queued, self._queue = self._queue, []
            for item, when in queued:  # one printer at a time: printed in the order queued
                self._output.print(item, self._stamp(when))

    def _stamp(self, when: Optional[float]) -> str:
        """``12:04:31``: the wall-clock time of a display-clock reading."""
        if when is None:
            return ""
        return time.strftime("%H:%M:%S", time.localtime(self._epoch + when))

    def _swallow_log(self, level: str) -> bool:
        """Whether not to pass a record on to the previous handler.

        The default handler writes to the ``numerous.tasks`` logger; with logging not
        configured, Python's last-resort handler would print warnings and errors a second
        time, raw, through the display. Passed on when logging is configured.
        """
        return self._active and type(self._previous) is LoggingTaskControlHandler and not logger.hasHandlers()


def session_display() -> TaskDisplay:
    """A new display with the process default options (what ``Session`` shows)."""
    return TaskDisplay(**_defaults.default_options())


def _should_stop(control: Any) -> bool:
    try:
        return bool(control.should_stop)
    except Exception:  # a control whose instance is gone: nothing to stop
        return False


def _check_seconds(name: str, value: object, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (value > 0 if positive else value >= 0):
        raise ValueError(f"{name} must be a number of seconds {'> 0' if positive else '>= 0'}, not {value!r}")
