"""TaskDisplay — a live rich console view of every task instance in this process.

    from numerous.tasks import Session
    from numerous.tasks.display import TaskDisplay

    with TaskDisplay():          # or: with Session(display=True):
        with Session():
            ...

The display is a :class:`~numerous.tasks.control.TaskControlHandler`: while it is
entered it is the process's handler, and it hands every call on to the handler that was
installed before it (which it puts back on exit), so a handler of your own keeps working.

Where things happen::

    dispatcher thread(s)              "numerous-display" thread         your thread
    --------------------              -------------------------         -----------
    handler calls ──▶ rows (lock) ◀── reads rows, redraws ~8/s          __enter__: Live starts
                  ──▶ print queue ──▶ prints logs/tracebacks above      __exit__: thread joined,
    final state: flushes the queue    samples CPU/RSS with psutil 2/s    final frame, handler
                 itself, so a task's  notices stop requests               restored
                 records are printed
                 before result() returns

Handler calls only update a row and queue text; they never render, and they never call
psutil, so a slow terminal cannot slow the dispatcher down.

On a terminal the rows are redrawn in place (one ``rich.live.Live``). Anywhere else (a
pipe, a CI log; ``console.is_terminal`` is False) the display prints plain lines, without
escape codes, for state changes and log records only: no line per progress update.
"""

from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Dict, List, Optional, Type

from rich.console import Console, Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from .control import (
    FROM_LOGGING,
    LOG_LEVELS,
    LOGGING_RECORD_EXTRAS,
    LoggingTaskControlHandler,
    TaskControl,
    TaskControlHandler,
    get_task_control_handler,
    set_task_control_handler,
)

logger = logging.getLogger("numerous.tasks")

__all__ = ["TaskDisplay", "default_enabled", "set_default"]

#: Seconds between redraws on a terminal: smooth enough for bars, cheap for the CPU.
REFRESH_INTERVAL = 0.125
#: Seconds between psutil samples of each running worker: CPU % needs an interval to mean
#: anything, and reading /proc for hundreds of workers 8 times a second would cost more
#: than the display is worth.
SAMPLE_INTERVAL = 0.5
#: Characters of the instance id shown: enough to tell a session's instances apart.
SHORT_ID = 6

# In the order the summary line counts them.
_STATE_STYLES = {
    "running": "cyan",
    "stopping": "yellow",
    "pending": "dim",
    "completed": "green",
    "stopped": "yellow",
    "failed": "bold red",
    "cancelled": "magenta",
}
_BAR_STYLES = {
    "completed": "green",
    "stopped": "yellow",
    "failed": "red",
    "cancelled": "magenta",
}
_LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}
_FINAL = frozenset({"completed", "failed", "cancelled"})

# Options for the displays that sessions open with Session(display=None); see set_default.
# The lock also guards _live.
_default_lock = threading.Lock()
_default_options: Optional[Dict[str, Any]] = None
# Displays currently drawing. A display entered while another draws stays passive: the
# outer one already shows every instance of the process.
_live: List[TaskDisplay] = []


def set_default(enabled: bool, **options: Any) -> None:
    """Make every ``Session(display=None)`` opened from now on show a display (or not).

    Args:
        enabled: True to show one per session, False for the library default (none).
        **options: keyword arguments for the :class:`TaskDisplay` each session makes.

    The ``numerous-tasks run script.py`` command uses this, so that every session the
    script opens shows the display.
    """
    global _default_options
    with _default_lock:
        _default_options = dict(options) if enabled else None


def default_enabled() -> bool:
    """Whether ``Session(display=None)`` shows a display (see :func:`set_default`)."""
    return _default_options is not None


def session_display() -> TaskDisplay:
    """A new display with the process default options (used by ``Session``)."""
    with _default_lock:
        options = dict(_default_options or {})
    return TaskDisplay(**options)


def note_interrupt() -> None:
    """Tell every drawing display that the user pressed Ctrl-C (the CLI calls this).

    Safe to call from a signal handler: it only counts; the display's thread prints.
    """
    for display in list(_live):
        display._interrupts += 1


@dataclass
class _Row:
    """What the display knows about one instance."""

    control: TaskControl
    state: str = "pending"
    progress: float = 0.0
    status: str = ""
    error: str = ""
    started: Optional[float] = None
    finished: Optional[float] = None
    stop_requested: bool = False
    cpu: Optional[float] = None
    rss: Optional[int] = None
    peak_rss: Optional[int] = None
    process: Any = None  # psutil.Process of the worker, made by the sampler
    sampled_pid: Optional[int] = None

    @property
    def label(self) -> str:
        """The state shown: "stopping" while a stop is pending, "stopped" for a task
        that returned after a stop request."""
        if self.state == "running" and self.stop_requested:
            return "stopping"
        if self.state == "completed" and self.stop_requested:
            return "stopped"
        return self.state


class TaskDisplay(TaskControlHandler):
    """Shows every task instance of this process as a live row, and prints their logs.

    A row shows: task name, short instance id, state, bar, percent, elapsed time, the
    worker's CPU % and memory (RSS), and the latest status text — or, for a failed
    instance, the error's type and message; the full traceback is printed above once.
    Log records are printed above the rows, prefixed with the task name and coloured by
    level. Finished rows stay until the display ends (when there are more rows than the
    terminal has lines, the oldest finished ones are folded into a count).

    States: ``pending``, ``running``, ``stopping`` (a stop was requested), ``completed``,
    ``stopped`` (completed after a stop request), ``failed``, ``cancelled``.

    Args:
        console: where to draw; default a new ``rich.console.Console(stderr=True)``:
            like logging and tqdm, the display stays out of your program's stdout.
        get_time: the clock for elapsed times, in seconds (default ``time.monotonic``).
        refresh_interval: seconds between redraws and queue flushes by the display's
            thread; None runs no thread at all (call :meth:`refresh` yourself: tests).
        sample_interval: seconds between CPU/memory samples of each running worker.
        show_debug: also print ``tc.log(..., "debug")`` records (they are always
            passed on to the previous handler).
        transcript: a second console that gets, without the redraws, what is printed
            above the rows and the final rows: a log file, or a recording console to
            save as SVG or HTML (``numerous-tasks demo --record-svg`` does).
    """

    def __init__(
        self,
        *,
        console: Optional[Console] = None,
        get_time: Callable[[], float] = time.monotonic,
        refresh_interval: Optional[float] = REFRESH_INTERVAL,
        sample_interval: float = SAMPLE_INTERVAL,
        show_debug: bool = False,
        transcript: Optional[Console] = None,
    ) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self.get_time = get_time
        self.refresh_interval = refresh_interval
        self.sample_interval = sample_interval
        self.show_debug = show_debug
        self.transcript = transcript
        self._lock = threading.RLock()  # rows and queue
        self._print_lock = threading.Lock()
        self._rows: Dict[str, _Row] = {}
        self._queue: List[RenderableType] = []
        self._previous: TaskControlHandler = TaskControlHandler()
        self._live_view: Any = None  # rich.live.Live while drawing on a terminal
        self._active = False  # entered and drawing (not passive)
        self._plain = True
        self._thread: Optional[threading.Thread] = None
        self._done = threading.Event()
        self._interrupts = 0
        self._interrupts_told = 0
        self._started_at: Optional[float] = None
        self._bar_width = 20
        self._show_resources = True

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> TaskDisplay:
        with _default_lock:
            if _live:  # another display already shows this process's instances
                return self
            self._active = True
            _live.append(self)
        self._done.clear()
        self._started_at = self.get_time()
        self._plain = not self.console.is_terminal or self.console.is_dumb_terminal
        if not self._plain:
            from rich.errors import LiveError
            from rich.live import Live

            self._live_view = Live(
                console=self.console,
                get_renderable=self._render,
                auto_refresh=False,  # our own thread redraws; rich's would be a second one
                transient=False,
                # print() output that would land on the same terminal goes above the rows
                # instead of through them; output sent to a file or pipe stays there.
                redirect_stdout=_same_terminal(sys.stdout, self.console),
                redirect_stderr=_same_terminal(sys.stderr, self.console),
            )
            try:
                self._live_view.start(refresh=True)
            except LiveError:  # rich < 14 and someone else's Live on this console
                self._live_view = None
                self._plain = True
        self._previous = set_task_control_handler(self)
        if self.refresh_interval is not None:
            self._thread = threading.Thread(target=self._run, name="numerous-display", daemon=True)
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
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            with self._lock:
                self._check_stops()
            self._flush()
            if self._live_view is not None:
                self._live_view.stop()  # draws the final frame and leaves it
                self._live_view = None
                if self.transcript is not None:
                    self.transcript.print(self._render())
            elif self._rows:
                self._print(Text(self._summary(), style="bold"))
        finally:
            self._active = False
            with _default_lock:
                if self in _live:
                    _live.remove(self)

    def refresh(self) -> None:
        """Print what is queued and redraw the rows now (the display's thread does this
        every ``refresh_interval``)."""
        if not self._active:
            return
        with self._lock:
            self._check_stops()
        self._flush()
        if self._live_view is not None:
            self._live_view.refresh()

    # -- TaskControlHandler ---------------------------------------------------------------
    def log(self, task_control: TaskControl, message: str, level: str, **extra_data: Any) -> None:
        """Queue the record for printing above the rows, then pass it on."""
        try:
            if self._active and (level != "debug" or self.show_debug):
                self._enqueue(self._log_line(task_control, message, level, extra_data))
        finally:
            if not self._swallow_log(level):
                self._previous.log(task_control, message, level, **extra_data)

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        """Move the row's bar (and status text), then pass it on."""
        try:
            row = self._row(task_control)
            if row is not None:
                with self._lock:
                    row.progress = progress
                    if status is not None:
                        row.status = status
        finally:
            self._previous.update_progress(task_control, progress, status)

    def update_status(self, task_control: TaskControl, status: str) -> None:
        """Change the row's status text, then pass it on."""
        try:
            row = self._row(task_control)
            if row is not None:
                with self._lock:
                    row.status = status
        finally:
            self._previous.update_status(task_control, status)

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        """Move the row to ``state``; print a failure's traceback once; pass it on."""
        try:
            row = self._row(task_control)
            if row is not None:
                self._change_state(row, state, error)
        finally:
            self._previous.instance_state_changed(task_control, state, error)

    # -- rows ---------------------------------------------------------------------------
    def _row(self, control: TaskControl) -> Optional[_Row]:
        # Direct calls (instance id "direct") have no lifecycle to show: only their logs.
        if not self._active or control.instance_id == "direct":
            return None
        with self._lock:
            row = self._rows.get(control.instance_id)
            if row is None:
                row = self._rows[control.instance_id] = _Row(control)
            return row

    def _change_state(self, row: _Row, state: str, error: Optional[BaseException]) -> None:
        now = self.get_time()
        with self._lock:
            if row.state in _FINAL:
                return
            row.state = state
            if state == "running" and row.started is None:
                row.started = now
            if state in _FINAL:
                row.finished = now
                row.stop_requested = row.stop_requested or _should_stop(row.control)
                if error is not None:
                    row.error = _error_summary(error)
            if self._plain:
                self._enqueue(self._state_line(row))
            if state == "failed" and error is not None:
                self._enqueue(self._traceback(row.control, error))
        if state in _FINAL:
            # Print this instance's records now, on the dispatcher thread, so they are
            # out before its result() returns.
            self._flush()

    def _check_stops(self) -> None:
        """Mark rows whose stop was requested (polled: there is no event for it)."""
        self._note_interrupts()
        for row in self._rows.values():
            if row.state in ("pending", "running") and not row.stop_requested and _should_stop(row.control):
                row.stop_requested = True
                if self._plain and row.state == "running":
                    self._enqueue(self._state_line(row))

    def _sample(self) -> None:
        """Read CPU % and RSS of each running worker (psutil; only on this thread)."""
        import psutil

        with self._lock:
            running = [r for r in self._rows.values() if r.state == "running"]
        for row in running:
            pid = row.control.process_id
            if pid is None:
                continue
            try:
                if row.process is None or row.sampled_pid != pid:
                    row.process, row.sampled_pid = psutil.Process(pid), pid
                    row.process.cpu_percent(None)  # the first call only starts the interval
                    cpu = None
                else:
                    cpu = row.process.cpu_percent(None)
                rss = row.process.memory_info().rss
            except (psutil.Error, OSError):  # the worker has exited or is not ours to read
                continue
            with self._lock:
                if row.state == "running":
                    row.rss = rss
                    row.peak_rss = max(rss, row.peak_rss or 0)
                    if cpu is not None:
                        row.cpu = cpu

    # -- the display's thread ---------------------------------------------------------------
    def _run(self) -> None:
        assert self.refresh_interval is not None
        next_sample = 0.0
        while not self._done.wait(self.refresh_interval):
            try:
                if time.monotonic() >= next_sample:
                    next_sample = time.monotonic() + self.sample_interval
                    self._sample()
                self.refresh()
            except Exception:  # a display must never take the program down
                logger.exception("the task display failed to refresh")

    # -- printing -----------------------------------------------------------------------
    def _enqueue(self, renderable: RenderableType) -> None:
        with self._lock:
            self._note_interrupts()  # first: what follows may be what the Ctrl-C caused
            self._queue.append(renderable)

    def _note_interrupts(self) -> None:
        """Queue a line for a Ctrl-C that :func:`note_interrupt` counted (under _lock)."""
        if self._interrupts > self._interrupts_told:
            self._interrupts_told = self._interrupts
            if self._interrupts_told == 1:
                message = "Ctrl-C: stopping every task (each may finish its step); press Ctrl-C again to kill them"
            else:
                message = "Ctrl-C again: killing every task"
            self._queue.append(Text(message, style="bold yellow"))

    def _flush(self) -> None:
        # Lock order: _print_lock, then rich's (printing redraws the rows), then _lock
        # (taken by _render). Never print while holding _lock: the display's thread holds
        # rich's lock while it renders, and rendering takes _lock.
        with self._print_lock:
            with self._lock:
                queued, self._queue = self._queue, []
            for item in queued:  # one printer at a time: printed in the order queued
                self._print(item)

    def _print(self, renderable: RenderableType) -> None:
        if self._plain:
            self.console.print(renderable, soft_wrap=True, highlight=False, markup=False)
        else:
            self.console.print(renderable, highlight=False, markup=False)
        if self.transcript is not None:
            self.transcript.print(renderable, highlight=False, markup=False)

    def _swallow_log(self, level: str) -> bool:
        """Whether not to pass a record on to the previous handler.

        The default handler writes to the ``numerous.tasks`` logger; with logging not
        configured, Python's last-resort handler would print warnings and errors a second
        time, raw, through the display. Passed on when logging is configured.
        """
        return self._active and type(self._previous) is LoggingTaskControlHandler and not logger.hasHandlers()

    def _prefix(self, control: TaskControl) -> Text:
        return Text.assemble((control.task_definition_name, "bold"), " ", (control.instance_id[:SHORT_ID], "dim"))

    def _log_line(self, control: TaskControl, message: str, level: str, extra: Dict[str, Any]) -> Text:
        style = _LEVEL_STYLES.get(level, "")
        line = self._prefix(control)
        line.append(" ")
        line.append(f"{level:<7}", style=style or "dim")
        line.append(" ")
        from_logging = FROM_LOGGING in extra
        if from_logging:  # a record the task sent through stdlib logging: "logger: message"
            line.append(f"{extra[FROM_LOGGING]}: ", style="dim")
            details = [extra.get("exc_text"), extra.get("stack_info")]
            extra = {k: v for k, v in extra.items() if k != FROM_LOGGING and k not in LOGGING_RECORD_EXTRAS}
        line.append(message, style=style)
        if extra:
            line.append(" " + " ".join(f"{k}={v!r}" for k, v in extra.items()), style="dim")
        if from_logging:
            for text in details:
                if text:
                    line.append("\n" + str(text), style=style or "dim")
        return line

    def _state_line(self, row: _Row) -> Text:
        label = row.label
        line = self._prefix(row.control)
        line.append(f" {label}", style=_STATE_STYLES.get(label, ""))
        if row.state == "running" and row.control.process_id is not None and not row.stop_requested:
            line.append(f" (pid {row.control.process_id})", style="dim")
        if row.state in _FINAL:
            elapsed = self._elapsed(row)
            if elapsed is not None:
                line.append(f" {'in' if label == 'completed' else 'after'} {_format_seconds(elapsed)}")
            if row.error:
                line.append(f": {row.error}", style="red")
            else:
                parts = [] if label == "completed" else [f"{row.progress:.0f}%"]
                parts += [row.status] if row.status else []
                if parts:
                    line.append(f" ({', '.join(parts)})", style="dim")
        return line

    def _traceback(self, control: TaskControl, error: BaseException) -> RenderableType:
        style = "" if self._plain else "red"
        text = _library_paths_relative(_format_traceback(error))
        if self._plain:
            return Text(text)
        header = self._prefix(control)
        header.append(" ")
        header.append("failed; its traceback from the worker:", style="bold red")
        return Group(header, Text(text, style=style))

    # -- rendering (terminal) ---------------------------------------------------------------
    def _elapsed(self, row: _Row) -> Optional[float]:
        if row.started is None:
            return None
        end = row.finished if row.finished is not None else self.get_time()
        return max(0.0, end - row.started)

    def _summary(self) -> str:
        counts = collections.Counter(row.label for row in self._rows.values())
        total = len(self._rows)
        if total:
            by_label = ", ".join(f"{counts[label]} {label}" for label in _STATE_STYLES if counts[label])
            text = f"{total} instance{'s' if total != 1 else ''}: {by_label}"
        else:
            text = "no task instances yet"
        if self._started_at is not None:
            text += f" · {_format_seconds(max(0.0, self.get_time() - self._started_at))}"
        return text

    def _render(self) -> RenderableType:
        with self._lock:
            rows = list(self._rows.values())
            # One line for the summary, one for rich's cursor, one spare.
            room = max(3, self.console.size.height - 3)
            hidden = 0
            if len(rows) > room:
                unfinished = [r for r in rows if r.state not in _FINAL]
                finished = [r for r in rows if r.state in _FINAL]
                keep_finished = max(0, room - len(unfinished))
                hidden = len(rows) - min(room, len(unfinished)) - keep_finished
                keep = set(map(id, finished[len(finished) - keep_finished :] if keep_finished else []))
                keep |= set(map(id, unfinished[:room]))
                rows = [r for r in rows if id(r) in keep]
            width = self.console.size.width
            self._bar_width = 20 if width >= 110 else 10
            self._show_resources = width >= 90
            table = Table.grid(padding=(0, 1), expand=True)
            table.add_column(no_wrap=True, max_width=20, overflow="ellipsis")  # task name
            table.add_column(no_wrap=True, width=SHORT_ID)  # instance id
            table.add_column(no_wrap=True, width=9)  # state
            table.add_column(no_wrap=True, width=self._bar_width)  # bar
            table.add_column(no_wrap=True, width=4, justify="right")  # percent
            table.add_column(no_wrap=True, width=6, justify="right")  # elapsed
            if self._show_resources:
                table.add_column(no_wrap=True, width=10, justify="right")  # cpu, memory
            table.add_column(no_wrap=True, ratio=1, overflow="ellipsis")  # status or error
            for row in rows:
                table.add_row(*self._cells(row))
            summary = Text(
                self._summary(), style="bold" if self._all_done() else "dim", no_wrap=True, overflow="ellipsis"
            )
            if hidden:
                summary.append(f" ({hidden} earlier finished not shown)", style="dim")
            if not self._all_done():
                summary.append(" · Ctrl-C stops all, twice kills", style="dim")
            return Group(table, summary) if rows else summary

    def _all_done(self) -> bool:
        return all(r.state in _FINAL for r in self._rows.values())

    def _cells(self, row: _Row) -> List[RenderableType]:
        label = row.label
        elapsed = self._elapsed(row)
        resources = ""
        if row.state == "running" and (row.cpu is not None or row.rss is not None):
            cpu = f"{row.cpu:.0f}%" if row.cpu is not None else ""
            memory = f"{row.rss / 1e6:.0f} MB" if row.rss is not None else ""
            resources = f"{cpu} {memory}".strip()
        elif row.state in _FINAL and row.peak_rss is not None:
            resources = f"{row.peak_rss / 1e6:.0f} MB"  # the most it was seen using
        bar_style = _BAR_STYLES.get(label, "cyan")
        # A task that completed did all its work, whether or not it reported progress.
        progress = 100.0 if label == "completed" else row.progress
        bar = ProgressBar(
            total=100.0,
            completed=progress,
            width=self._bar_width,
            complete_style=bar_style,
            finished_style=bar_style if label != "running" else "green",
        )
        if row.error:
            message = Text(row.error, style="red")
        else:
            message = Text(row.status)
        cells: List[RenderableType] = [
            Text(row.control.task_definition_name, style="bold"),
            Text(row.control.instance_id[:SHORT_ID], style="dim"),
            Text(label, style=_STATE_STYLES.get(label, "")),
            bar,
            Text(f"{progress:.0f}%"),
            Text(_format_seconds(elapsed) if elapsed is not None else "", style="dim"),
        ]
        if self._show_resources:
            cells.append(Text(resources, style="dim"))
        cells.append(message)
        return cells


def _same_terminal(stream: Any, console: Console) -> bool:
    """Whether ``stream`` writes where ``console`` draws (then it is routed above the rows)."""
    if stream is console.file:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # replaced or closed streams
        return False


def _should_stop(control: TaskControl) -> bool:
    try:
        return bool(control.should_stop)
    except Exception:  # a control whose instance is gone: nothing to stop
        return False


def _error_summary(error: BaseException) -> str:
    """``Type: first line of the message`` (the original type for a TaskFailedError)."""
    from .exceptions import TaskFailedError

    if isinstance(error, TaskFailedError):
        name, message = error.type_name, error.message
    else:
        name, message = type(error).__name__, str(error)
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{name}: {first}" if first else name


def _format_traceback(error: BaseException) -> str:
    """The full traceback text of a task's exception (the worker's, for TaskFailedError).

    Column markers (``^^^^``) are left out: the frames rebuilt from the worker carry the
    positions of tblib's stub, not of the real line, so the markers would point wrongly.
    """
    from .exceptions import TaskFailedError

    if isinstance(error, TaskFailedError):
        text = f"Traceback in the worker:\n{error.formatted_traceback.rstrip()}"
        last = f"{error.type_name}: {error.message}".strip()
        if not text.endswith(last):
            text += f"\n{last}"
        return text
    tb = error.__traceback__
    # The worker's own frames (running the task) come first; the task's frames follow.
    while tb is not None and tb.tb_next is not None and _is_library_file(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    exc = traceback.TracebackException(type(error), error, tb)
    seen = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for frame in current.stack:
            if hasattr(frame, "colno"):  # Python 3.11+
                frame.colno = frame.end_colno = None  # type: ignore[attr-defined, unused-ignore]  # 3.9/3.10 stubs lack them
        pending += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending += list(getattr(current, "exceptions", None) or [])
    return "".join(exc.format()).rstrip()


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


#: Where ``numerous/`` is (site-packages, or the checkout of an editable install).
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(_PACKAGE_DIR.rstrip(os.sep))) + os.sep


def _library_paths_relative(text: str) -> str:
    """``File "numerous/tasks/_demo.py"`` for the library's own frames (the demo's, and
    its own below a task's call into it): the same on every machine, and no local path
    of the one that recorded ``docs/demo.svg``. The task's own files keep their paths."""
    return text.replace(f'File "{_PACKAGE_ROOT}numerous{os.sep}', f'File "numerous{os.sep}')


def _is_library_file(filename: str) -> bool:
    """Whether a frame is numerous.tasks' own (the demo's tasks are not)."""
    path = os.path.abspath(filename)
    return path.startswith(_PACKAGE_DIR) and os.path.basename(path) != "_demo.py"


def _format_seconds(seconds: float) -> str:
    """``4.2s``, ``3m05s``, ``2h07m``: short enough for a narrow column."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes}m{rest:02d}s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


# Keep LOG_LEVELS referenced: the display styles exactly the levels tc.log accepts.
assert set(_LEVEL_STYLES) == set(LOG_LEVELS)
