"""Pure render functions: a :class:`~._rows.Board` (and the time) in, rich renderables out.

Like rich's ``ProgressColumn.render``, nothing here keeps state, locks or reads a
clock, so each function is tested by rendering into
``Console(file=io.StringIO(), force_terminal=True, width=...)`` with a made-up board.

The live frame, top to bottom::

    38 finished not shown: 37 completed, 1 cancelled        only when rows do not fit
    step     a1b2c3 failed    ━━━━╺━━━━━  40%   1.2s         ValueError: bad input
    step     0f0f0f completed ━━━━━━━━━━ 100%   0.8s
    step     77aa01 running   ━━━━━━╺━━━  61%   2.0s  eta 1.3s  item 61/100
    resize   5e6f70 running   ━━━╺━━━━━━  31%   4.1s  eta 9.0s  3,100/10,000 items · 760/s
    +3 more running                                           only when rows do not fit
    152 pending: step                                         one line, never a row each
    ━━━━━━━━━━━━━━━━━━━━ 40/200 done · 2 failed · 3.2/s · 12.5s · eta 48s

Rows that do not fit the screen are folded into the count lines, oldest finished
first, failures last (their tracebacks were printed above anyway): every number on
screen counts exactly what it says. A ``task.map()`` is one row (``resize`` above),
however many instances run its chunks, and counts as one in the footer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from ..control import FROM_LOGGING, LOGGING_RECORD_EXTRAS
from ._format import format_rate, format_seconds, format_traceback
from ._rows import LABELS, Board, Row

__all__ = [
    "Layout",
    "final_summary",
    "footer",
    "frame",
    "interrupt_line",
    "log_line",
    "map_status",
    "plan",
    "prefix",
    "progress_summary",
    "row_cells",
    "state_line",
    "traceback_block",
]

#: Characters of the instance id shown: enough to tell a session's instances apart.
SHORT_ID = 6
#: Columns of the CPU and memory cell: ``1600% 9999 MB`` (16 busy cores) fits uncut.
RESOURCES_WIDTH = 13
#: Lines of the screen the frame leaves alone: one for the cursor below it, one spare.
SPARE_LINES = 2
#: The hint shown while instances run (the CLI makes it true; in a script it is too).
STOP_HINT = "Ctrl-C stops all, twice kills"

STATE_STYLES = {
    "running": "cyan",
    "retrying": "yellow",
    "stopping": "yellow",
    "pending": "dim",
    "completed": "green",
    "stopped": "yellow",
    "failed": "bold red",
    "cancelled": "magenta",
}
_BAR_STYLES = {"completed": "green", "stopped": "yellow", "failed": "red", "cancelled": "magenta"}
LEVEL_STYLES = {"debug": "dim", "info": "", "warning": "yellow", "error": "bold red"}


# -- which rows a frame shows ---------------------------------------------------------------
@dataclass(frozen=True)
class Layout:
    """The rows a frame shows and what it folds into counts."""

    finished: List[Row]  # shown, in the order they finished
    hidden_finished: List[Row]  # folded into the count line on top
    active: List[Row]  # running or stopping, shown, in the order they appeared
    hidden_active: int  # running rows beyond the screen
    pending: List[Row]  # one count line


def plan(board: Board, room: int) -> Layout:
    """Choose what fits in ``room`` lines (rows and count lines; the footer not included).

    Running rows come first, then finished ones: failures before the rest, the newest
    before the oldest. Pending instances are always one count line.
    """
    rows = list(board.unfinished.values())
    pending = [r for r in rows if r.state == "pending"]
    active = [r for r in rows if r.state in ("running", "retrying")]
    finished = list(board.finish_order)
    room -= 1 if pending else 0
    hidden_active = 0
    if len(active) > room:
        shown = max(0, room - 1)  # one line says how many more
        hidden_active = len(active) - shown
        active = active[:shown]
        room = 0
    else:
        room -= len(active)
    if len(finished) <= room:
        return Layout(finished, [], active, hidden_active, pending)
    room = max(0, room - 1)  # the count line
    failed = [r for r in finished if r.label == "failed"]
    keep = set(map(id, failed[len(failed) - room :] if room else []))
    others = [r for r in finished if r.label != "failed"]
    left = room - len(keep)
    keep |= set(map(id, others[len(others) - left :] if left > 0 else []))
    shown_finished = [r for r in finished if id(r) in keep]
    hidden = [r for r in finished if id(r) not in keep]
    return Layout(shown_finished, hidden, active, hidden_active, pending)


# -- the live frame -------------------------------------------------------------------------
def frame(board: Board, now: float, width: int, height: int, hint: bool = True) -> RenderableType:
    """Everything below the printed lines: the rows that fit, count lines, the footer.

    Args:
        board: the rows.
        now: the display's clock.
        width, height: of the screen, in characters.
        hint: say how Ctrl-C stops the instances while they run.
    """
    layout = plan(board, height - SPARE_LINES - 1)
    parts: List[RenderableType] = []
    if layout.hidden_finished:
        parts.append(_hidden_line(layout.hidden_finished))
    shown = layout.finished + layout.active
    if shown:
        parts.append(_table(shown, now, width))
    if layout.hidden_active:
        parts.append(Text(f"+{layout.hidden_active} more running (not shown)", style="dim", no_wrap=True))
    if layout.pending:
        parts.append(_pending_line(layout.pending, width))
    parts.append(footer(board, now, width, hint))
    return Group(*parts)


def _table(rows: Sequence[Row], now: float, width: int) -> Table:
    bar_width = 20 if width >= 110 else 10
    resources = width >= 100
    table = Table.grid(padding=(0, 1), expand=True)
    table.add_column(no_wrap=True, max_width=20 if width >= 100 else 16, overflow="ellipsis")  # task name
    table.add_column(no_wrap=True, width=SHORT_ID)  # instance id
    table.add_column(no_wrap=True, width=9)  # state
    table.add_column(no_wrap=True, width=bar_width)  # bar
    table.add_column(no_wrap=True, width=4, justify="right")  # percent
    table.add_column(no_wrap=True, width=6, justify="right")  # elapsed
    table.add_column(no_wrap=True, width=9, justify="right")  # time left
    if resources:
        table.add_column(no_wrap=True, width=RESOURCES_WIDTH, justify="right")  # cpu, memory
    table.add_column(no_wrap=True, ratio=1, overflow="ellipsis")  # status or error
    for row in rows:
        table.add_row(*row_cells(row, now, bar_width, resources))
    return table


def row_cells(row: Row, now: float, bar_width: int, resources: bool) -> List[RenderableType]:
    """The cells of one row: name, id, state, bar, percent, elapsed, time left,
    (CPU and memory,) status or error."""
    label = row.label
    elapsed = row.elapsed(now)
    left = row.time_left(now)
    progress = row.shown_progress
    bar_style = _BAR_STYLES.get(label, "cyan")
    cells: List[RenderableType] = [
        Text(row.task_name, style="bold"),
        Text(row.instance_id[:SHORT_ID], style="dim"),
        Text(label, style=STATE_STYLES.get(label, "")),
        ProgressBar(
            total=100.0,
            completed=progress,
            width=bar_width,
            complete_style=bar_style,
            finished_style=bar_style if label != "running" else "green",
        ),
        Text(f"{progress:.0f}%"),
        Text(format_seconds(elapsed) if elapsed is not None else "", style="dim"),
        Text(f"eta {format_seconds(left)}" if left is not None else "", style="dim"),
    ]
    if resources:
        cells.append(Text(_resources(row), style="dim"))
    if row.error:
        cells.append(Text(_with_retry(row, row.error), style="red"))
    elif row.state == "retrying":
        cells.append(Text(f"{row.retry} after {row.retried_error}", style="yellow"))
    else:
        cells.append(Text(map_status(row, now) if row.map is not None else _with_retry(row, row.status)))
    return cells


def _with_retry(row: Row, text: str) -> str:
    """``retry 1/3 · text`` once an instance is retried; ``text`` before."""
    retry = row.retry
    return text if not retry else f"{retry} · {text}" if text else retry


def map_status(row: Row, now: float) -> str:
    """``3,100/10,000 items · 760/s · 2 failed``: a map's items (the total, while its
    input's end is not known, as ``3,100/3,200+``)."""
    items = row.map
    assert items is not None
    done = int(items.items_done()) if row.state == "running" else items.done
    text = f"{done:,}/{items.total:,}" if items.total is not None else f"{done:,}/{items.started:,}+"
    text += " items"
    speed = items.speed.per_second(now) if row.state == "running" else _average_rate(row)
    if speed:
        text += f" · {_items_per_second(speed)}"
    if items.failed:
        text += f" · {items.failed:,} failed"
    return text


def _average_rate(row: Row) -> Optional[float]:
    """A finished map's items per second over its whole run."""
    assert row.map is not None
    elapsed = row.elapsed(row.finished or 0.0)
    return row.map.done / elapsed if elapsed else None


def _items_per_second(speed: float) -> str:
    """``760/s``, ``12k/s``, ``1.3M/s``: short enough for a status cell."""
    if speed >= 1e6:
        return f"{speed / 1e6:.1f}M/s"
    if speed >= 1e4:
        return f"{speed / 1e3:.0f}k/s"
    return format_rate(speed)


def _resources(row: Row) -> str:
    if row.state == "running" and (row.cpu is not None or row.rss is not None):
        cpu = f"{row.cpu:.0f}%" if row.cpu is not None else ""
        memory = _memory(row.rss) if row.rss is not None else ""
        return f"{cpu} {memory}".strip()
    if row.done and row.peak_rss is not None:
        return _memory(row.peak_rss)  # the most it was seen using
    return ""


def _memory(rss: int) -> str:
    """``850 MB``, ``9999 MB``, ``12.3 GB``, ``512 GB``: at most 7 characters."""
    if rss < 9999.5e6:
        return f"{rss / 1e6:.0f} MB"
    return f"{rss / 1e9:.1f} GB" if rss < 99.95e9 else f"{rss / 1e9:.0f} GB"


def _count_text(rows: Sequence[Row]) -> str:
    counts: Dict[str, int] = {}
    for row in rows:
        counts[row.label] = counts.get(row.label, 0) + 1
    return ", ".join(f"{counts[label]} {label}" for label in LABELS if label in counts)


def _hidden_line(hidden: Sequence[Row]) -> Text:
    text = f"{len(hidden)} finished not shown: {_count_text(hidden)}"
    if any(r.label == "failed" for r in hidden):
        text += " (tracebacks above)"
    return Text(text, style="dim", no_wrap=True, overflow="ellipsis")


def _pending_line(pending: Sequence[Row], width: int) -> Text:
    """``152 pending: render ×100, fetch ×52``, whole entries only, as many as fit."""
    line = Text(f"{len(pending)} pending", style="dim", no_wrap=True)
    per_task: Dict[str, int] = {}
    for row in pending:
        per_task[row.task_name] = per_task.get(row.task_name, 0) + 1
    entries = [name if len(per_task) == 1 else f"{name} ×{n}" for name, n in per_task.items()]
    shown: List[str] = []
    for i, entry in enumerate(entries):
        rest = len(entries) - i - 1
        more = f", +{rest} more" if rest else ""
        candidate = ", ".join([*shown, entry])
        if len(line.plain) + 2 + len(candidate) + len(more) > width:
            shown.append(f"+{len(entries) - i} more")
            break
        shown.append(entry)
    if shown and not shown[0].startswith("+"):
        line.append(": " + ", ".join(shown), style="dim")
    return line


def footer(board: Board, now: float, width: int, hint: bool = True) -> RenderableType:
    """The session's line: an overall bar, done/total, failures, rate, elapsed and time
    left while instances run; the counts by state once all have finished. Parts that
    do not fit ``width`` are left out whole, least useful first: never cut mid-word."""
    if not board.rows:
        return Text(f"no task instances yet · {format_seconds(board.elapsed(now))}", style="dim", no_wrap=True)
    if board.all_done():
        return Text(final_summary(board, now), style="bold", no_wrap=True, overflow="ellipsis")
    counts = board.counts()
    left = board.time_left(now)
    # (text, priority): the lowest priority goes first when the line is too long.
    parts = [(f"{board.finished}/{board.total} done", 9)]
    if counts["failed"]:
        parts.append((f"{counts['failed']} failed", 8))
    if board.rate(now) is not None:
        parts.append((format_rate(board.rate(now)), 4))
    parts.append((format_seconds(board.elapsed(now)), 5))
    if left is not None:
        parts.append((f"eta {format_seconds(left)}", 6))
    if hint:
        parts.append((STOP_HINT, 1))
    bar_width = 20 if width >= 80 else 10
    room = width - bar_width - 1
    while len(" · ".join(p for p, _ in parts)) > room and len(parts) > 1:
        parts.remove(min(parts, key=lambda part: part[1]))
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True, width=bar_width)
    grid.add_column(no_wrap=True)
    bar = ProgressBar(total=float(board.total), completed=board.work_done(), width=bar_width)
    grid.add_row(bar, Text(" · ".join(p for p, _ in parts), style="dim", no_wrap=True, overflow="ellipsis"))
    return grid


def final_summary(board: Board, now: float) -> str:
    """``200 instances: 196 completed, 4 failed · 1m02s · 3.2/s`` (``3 instances and
    1 map: ...`` when there are maps: a map counts once, whatever its chunks)."""
    total = board.total
    if not total:
        return f"no task instances · {format_seconds(board.elapsed(now))}"
    maps = sum(1 for row in board.rows.values() if row.map is not None)
    instances = total - maps
    what = [f"{instances} instance{'s' if instances != 1 else ''}"] if instances else []
    what += [f"{maps} map{'s' if maps != 1 else ''}"] if maps else []
    text = f"{' and '.join(what)}: {_count_text(list(board.rows.values()))}"
    text += f" · {format_seconds(board.elapsed(now))}"
    last_end = board.finish_order[-1].finished if board.finish_order else None
    rate = board.rate(last_end if last_end is not None else now)  # over the run, not the wait after it
    if rate is not None and total > 1:
        text += f" · {format_rate(rate)}"
    return text


# -- printed lines --------------------------------------------------------------------------
def prefix(task_name: str, instance_id: str) -> Text:
    """``task a1b2c3``: who a printed line is about."""
    return Text.assemble((task_name, "bold"), " ", (instance_id[:SHORT_ID], "dim"))


def log_line(task_name: str, instance_id: str, message: str, level: str, extra: Dict[str, Any]) -> Text:
    """A ``tc.log`` record (or a record the task sent through ``logging``) as one line."""
    style = LEVEL_STYLES.get(level, "")
    line = prefix(task_name, instance_id)
    line.append(" ")
    line.append(f"{level:<7}", style=style or "dim")
    line.append(" ")
    from_logging = FROM_LOGGING in extra
    details: List[Any] = []
    if from_logging:  # a record the task sent through stdlib logging: "logger: message"
        line.append(f"{extra[FROM_LOGGING]}: ", style="dim")
        details = [extra.get("exc_text"), extra.get("stack_info")]
        extra = {k: v for k, v in extra.items() if k != FROM_LOGGING and k not in LOGGING_RECORD_EXTRAS}
    line.append(message, style=style)
    if extra:
        line.append(" " + " ".join(f"{k}={v!r}" for k, v in extra.items()), style="dim")
    for text in details:
        if text:
            line.append("\n" + str(text), style=style or "dim")
    return line


def state_line(row: Row, now: float) -> Text:
    """A state change as one line: ``crawl c0ffee stopped after 1.5s (50%, page 50)``."""
    label = row.label
    line = prefix(row.task_name, row.instance_id)
    line.append(f" {label}", style=STATE_STYLES.get(label, ""))
    if row.state == "running" and row.pid is not None and not row.stop_requested:
        line.append(f" (pid {row.pid})", style="dim")
    if row.state == "retrying":
        line.append(f" ({row.retry})", style="dim")
        line.append(f" after {row.retried_error}", style="yellow")
    elif row.done:
        elapsed = row.elapsed(now)
        if elapsed is not None:
            line.append(f" {'in' if label == 'completed' else 'after'} {format_seconds(elapsed)}")
        if row.error:
            line.append(f": {_with_retry(row, row.error)}", style="red")
        elif row.map is not None:
            line.append(f" ({map_status(row, now)})", style="dim")
        else:
            parts = [row.retry] if row.retry else []
            parts += [] if label == "completed" or row.started is None else [f"{row.progress:.0f}%"]
            parts += [row.status] if row.status else []
            if parts:
                line.append(f" ({', '.join(parts)})", style="dim")
    elif row.map is not None and row.state == "running":
        line.append(f" ({map_status(row, now)})", style="dim")
    return line


def progress_summary(board: Board, now: float) -> Text:
    """The periodic line of a log: totals, then each running instance's percentage.

    ``40/200 done · 2 failed · 8 running · 150 pending · 3.2/s · eta 48s · running:
    step a1b2c3 45% (eta 2.0s), ...``
    """
    counts = board.counts()
    parts = [f"{board.finished}/{board.total} done"]
    parts += [
        f"{counts[label]} {label}"
        for label in ("failed", "running", "retrying", "stopping", "pending")
        if counts[label]
    ]
    rate = board.rate(now)
    if rate is not None:
        parts.append(format_rate(rate))
    left = board.time_left(now)
    if left is not None:
        parts.append(f"eta {format_seconds(left)}")
    line = Text(" · ".join(parts), style="bold")
    running = [r for r in board.rows.values() if r.state == "running"]
    if running:
        each = []
        for row in running:
            text = f"{row.task_name} {row.instance_id[:SHORT_ID]} {row.label if row.stop_requested else ''}"
            text = f"{text.rstrip()} {row.progress:.0f}%"
            left = row.time_left(now)
            if left is not None:
                text += f" (eta {format_seconds(left)})"
            each.append(text)
        line.append(" · running: " + ", ".join(each), style="")
    return line


def traceback_block(task_name: str, instance_id: str, error: BaseException, plain: bool) -> RenderableType:
    """A failed instance's full traceback, printed once above the rows."""
    text = format_traceback(error)
    if plain:
        return Text(text)
    header = prefix(task_name, instance_id)
    header.append(" ")
    header.append("failed; its traceback from the worker:", style="bold red")
    return Group(header, Text(text, style="red"))


def interrupt_line(times: int) -> Text:
    """What the display says when the user presses Ctrl-C for the ``times``-th time."""
    if times == 1:
        message = "Ctrl-C: stopping every task (each may finish its step); press Ctrl-C again to kill them"
    else:
        message = "Ctrl-C again: killing every task"
    return Text(message, style="bold yellow")
