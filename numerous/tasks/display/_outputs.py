"""Where a display draws: a terminal, a log (pipe, file, CI), or a Jupyter notebook.

Each output prints lines (log records, tracebacks, state lines) and shows the frame
the display renders; :func:`open_output` picks one for the console:

=============  ===========================================  ==============================
output         frame (rows, footer)                         printed lines
=============  ===========================================  ==============================
terminal       redrawn in place (one ``rich.live.Live``)    above the frame, coloured
log            none: a progress summary line now and then   plain, each with a timestamp
notebook       one output, updated in place (display_id)    one stream output below it
=============  ===========================================  ==============================
"""

from __future__ import annotations

import io
import sys
import time
from typing import Any, Callable, Dict, Optional, Tuple

from rich.console import Console, RenderableType
from rich.text import Text

__all__ = ["LogOutput", "NotebookOutput", "Output", "TerminalOutput", "open_output"]

#: Lines a notebook's view is laid out for: a notebook has no screen height, and 30
#: lines keep the view within one screen of the page.
NOTEBOOK_LINES = 30
#: Seconds between updates of a notebook's view: each update sends the whole view to
#: the browser, and a notebook need not move as smoothly as a terminal.
NOTEBOOK_REFRESH = 0.25


class Output:
    """What every output does; the base prints plain lines and draws no frame."""

    #: Whether this output shows no frame: the display then prints state lines and
    #: periodic summaries instead.
    plain = True

    def __init__(self, console: Console, transcript: Optional[Console]) -> None:
        self.console = console
        self.transcript = transcript

    def start(self, get_frame: Callable[[], RenderableType]) -> bool:
        """Begin showing; False if it cannot (the display falls back to a log)."""
        return True

    def print(self, item: RenderableType, stamp: str = "") -> None:
        """Print ``item`` above the frame; ``stamp`` is a timestamp a log shows."""
        self.console.print(item, soft_wrap=True, highlight=False, markup=False)
        self._record(item)

    def refresh(self) -> None:
        """Redraw the frame (nothing to do without one)."""

    def stop(self, final: RenderableType) -> None:
        """Show the final frame and stop (a log has printed its final line already)."""

    def _record(self, item: RenderableType) -> None:
        if self.transcript is not None:
            self.transcript.print(item, highlight=False, markup=False)


class LogOutput(Output):
    """A pipe, a file, a CI log: plain lines without escape codes, each timestamped."""

    def print(self, item: RenderableType, stamp: str = "") -> None:
        """Print ``item``, prefixed with ``stamp`` when it is a line of text."""
        if stamp and isinstance(item, Text):
            item = Text.assemble((stamp, "dim"), " ", item)
        super().print(item)


class TerminalOutput(Output):
    """A terminal: the frame redrawn in place, lines printed above it."""

    plain = False

    def __init__(self, console: Console, transcript: Optional[Console]) -> None:
        super().__init__(console, transcript)
        self._live: Any = None

    def start(self, get_frame: Callable[[], RenderableType]) -> bool:
        """Start a ``rich.live.Live`` that asks ``get_frame`` for each redraw."""
        from rich.errors import LiveError
        from rich.live import Live

        self._get_frame = get_frame
        self._live = Live(
            console=self.console,
            get_renderable=get_frame,
            auto_refresh=False,  # the display's thread redraws; rich's would be a second one
            transient=False,
            # print() output that would land on the same terminal goes above the rows
            # instead of through them; output sent to a file or pipe stays there.
            redirect_stdout=_same_terminal(sys.stdout, self.console),
            redirect_stderr=_same_terminal(sys.stderr, self.console),
        )
        try:
            self._live.start(refresh=True)
        except LiveError:  # rich < 14 and someone else's Live on this console
            self._live = None
            return False
        return True

    def print(self, item: RenderableType, stamp: str = "") -> None:
        """Print above the rows (rich redraws them below)."""
        self.console.print(item, highlight=False, markup=False)
        self._record(item)

    def refresh(self) -> None:
        """Redraw the rows."""
        if self._live is not None:
            self._live.refresh()

    def stop(self, final: RenderableType) -> None:
        """Draw the final frame and leave it on the screen."""
        if self._live is not None:
            self._live.stop()
            self._live = None
        self._record(final)


class NotebookOutput(Output):
    """A Jupyter notebook: one output that is updated in place (IPython's
    ``display_id``), and printed lines as one stream output below it.

    The frame is rendered by rich to HTML (with a plain-text version for consoles
    and ``nbconvert --to markdown``), so it looks as on a terminal. Only IPython
    is needed; no widgets, so the view also shows in a saved notebook.
    """

    plain = False

    def __init__(self, console: Console, transcript: Optional[Console]) -> None:
        super().__init__(console, transcript)
        # Lines go to the console's stream with colour codes, which notebooks show.
        self._stream = Console(
            file=console.file, force_jupyter=False, force_terminal=True, width=console.width, color_system="standard"
        )
        self._handle: Any = None
        self._shown: Optional[str] = None
        self._last_update = 0.0
        self._get_frame: Callable[[], RenderableType] = lambda: Text("")

    def start(self, get_frame: Callable[[], RenderableType]) -> bool:
        """Create the view (an empty frame until the first update)."""
        from IPython.display import display

        self._get_frame = get_frame
        bundle = self._bundle(get_frame())
        self._handle = display(bundle, raw=True, display_id=True)  # type: ignore[no-untyped-call, unused-ignore]
        return True

    def print(self, item: RenderableType, stamp: str = "") -> None:
        """Print to the cell's stream output."""
        self._stream.print(item, soft_wrap=True, highlight=False, markup=False)
        self._record(item)

    def refresh(self) -> None:
        """Update the view, at most every :data:`NOTEBOOK_REFRESH` seconds."""
        now = time.monotonic()
        if now - self._last_update >= NOTEBOOK_REFRESH:
            self._last_update = now
            self._update(self._get_frame())

    def stop(self, final: RenderableType) -> None:
        """Leave the final frame in the view."""
        self._update(final)
        self._record(final)

    def _update(self, frame: RenderableType) -> None:
        bundle = self._bundle(frame)
        if self._handle is not None and bundle["text/plain"] != self._shown:
            self._shown = bundle["text/plain"]
            self._handle.update(bundle, raw=True)

    def _bundle(self, frame: RenderableType) -> Dict[str, str]:
        from rich.jupyter import JUPYTER_HTML_FORMAT

        recorder = Console(
            record=True,
            file=io.StringIO(),
            width=self.console.width,
            force_terminal=True,
            force_jupyter=False,
            color_system="truecolor",
        )
        recorder.print(frame)
        text = recorder.export_text(clear=False)
        html = recorder.export_html(inline_styles=True, code_format=JUPYTER_HTML_FORMAT)
        return {"text/plain": text.rstrip("\n"), "text/html": html}


def open_output(console: Console, transcript: Optional[Console]) -> Output:
    """The output that suits ``console``: notebook, terminal, or else a log."""
    if console.is_jupyter:
        return NotebookOutput(console, transcript)
    if console.is_terminal and not console.is_dumb_terminal:
        return TerminalOutput(console, transcript)
    return LogOutput(console, transcript)


def frame_size(console: Console) -> Tuple[int, int]:
    """Width and height a frame is laid out for on ``console``."""
    width, height = console.size
    if console.is_jupyter:
        height = NOTEBOOK_LINES
    return width, height


def _same_terminal(stream: Any, console: Console) -> bool:
    """Whether ``stream`` writes where ``console`` draws (then it is routed above the rows)."""
    if stream is console.file:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # replaced or closed streams
        return False
