"""TaskDisplay — a live view of every task instance in this process.

    from numerous.tasks import Session
    from numerous.tasks.display import TaskDisplay

    with TaskDisplay():          # or: with Session(display=True):
        with Session():
            ...

The display is a :class:`~numerous.tasks.control.TaskControlHandler`: while it is
entered it is the process's handler, and it hands every call on to the handler that was
installed before it (which it puts back on exit), so a handler of your own keeps working.

It is split the way rich splits its progress display::

    _rows.py      Row, Board       what is known: data only, no clock, no lock
    _render.py    frame(), ...     Board + time -> rich renderables, pure functions
    _display.py   TaskDisplay      the handler: feeds the board, queues lines to print
    _outputs.py   Terminal/Log/    where it goes: a terminal (rich Live), a log (pipe,
                  NotebookOutput   CI: timestamped lines), a notebook (updated in place)
    _refresh.py   RefreshThread    the "numerous-display" thread that redraws
    _sampler.py   Sampler          CPU % and memory of local task processes (psutil)
    _defaults.py  set_default ...  the process default, and which display draws
                                  (it knows a display only as a Drawing: no rich)

Where things happen::

    dispatcher thread(s)              "numerous-display" thread         your thread
    --------------------              -------------------------         -----------
    handler calls ──▶ board (lock) ◀─ renders frame, redraws ~8/s       __enter__: output starts
                  ──▶ print queue ──▶ prints logs/tracebacks above      __exit__: thread joined,
    final state: flushes the queue    samples CPU/RSS with psutil 2/s    final frame, handler
                 itself, so a task's  notices stop requests; in a log,   restored
                 records are printed  prints summaries every 10 s
                 before result() returns

Handler calls only update the board and queue text; they never render, and they never
call psutil, so a slow terminal cannot slow the dispatcher down.

CPU and memory: a local instance's process is read here, by the display's thread. A
backend whose processes run elsewhere (Dask) reads them where they run, at the display's
``sample_interval`` (``resource_sample_interval()``), and hands the figures to
``resources_sampled()``; the display never reads such an instance's pid here.

``timeline.py`` is the after-the-fact view: a session's instances as bars in one
self-contained HTML or SVG file (``Session(timeline="run.html")``).

rich is imported when :class:`TaskDisplay` is first used, not with this package, so a
session that only saves a timeline does not pay for it.
"""

from typing import TYPE_CHECKING, Any

from ._defaults import default_enabled, note_interrupt, set_default

if TYPE_CHECKING:
    from ._display import TaskDisplay as TaskDisplay
    from ._display import session_display as session_display

__all__ = ["TaskDisplay", "default_enabled", "note_interrupt", "session_display", "set_default"]


def __getattr__(name: str) -> Any:
    """``TaskDisplay`` and ``session_display``, imported (with rich) on first use."""
    if name in ("TaskDisplay", "session_display"):
        from . import _display

        return getattr(_display, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
