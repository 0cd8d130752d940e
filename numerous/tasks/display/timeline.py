"""A session's timeline as a picture: one bar per instance, saved as one self-contained file.

    from numerous.tasks import Session

    with Session(timeline="run.html"):      # or "run.svg"
        ...

    numerous-tasks run script.py --timeline run.html     # every session of the script

Each bar shows an instance's life from its :class:`~numerous.tasks.timing.InstanceTimes`:
*queued* from ``start()`` until its body began running (waiting for a slot, then for
its worker), *running*, *stopping* from the first stop request, and a cap coloured by
how it ended (completed, stopped, failed, cancelled). Hovering a bar shows the figures;
the label beside it says the outcome and how long it ran. The file has no script, no
font and no link to load: it opens in any browser, offline, and a ``.svg`` one also
goes into a README or a report as an image.

Nothing is drawn while the session runs: the recorder keeps each instance's timing
record (not its arguments or result), and the file is written when the session ends.
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING, Any, List, Optional, Union

from ..timing import InstanceTimes
from ._timeline_entry import TimelineEntry

if TYPE_CHECKING:
    from ..future import Future

__all__ = ["Timeline", "TimelineEntry", "default_timeline", "set_default_timeline"]

PathLike = Union[str, "os.PathLike[str]"]


class Timeline:
    """Records the instances of one or more sessions and saves them as a picture.

    Args:
        path: the file to write: ``.svg`` for an SVG image, anything else for an HTML
            page (with the SVG inside).
        title: the page's heading (default: the sessions' names).

    Raises:
        TypeError: ``path`` is not a str or path.
        FileNotFoundError: the directory ``path`` would be written in does not exist.
    """

    def __init__(self, path: PathLike, title: Optional[str] = None) -> None:
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"timeline must be a path to an .html or .svg file, not {type(path).__name__}")
        self.path = os.path.abspath(os.fspath(path))
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise FileNotFoundError(f"cannot save the timeline {os.fspath(path)!r}: no such directory {directory!r}")
        self.title = title
        self._lock = threading.Lock()
        self._entries: List[TimelineEntry] = []

    @property
    def entries(self) -> List[TimelineEntry]:
        """The instances recorded so far, in the order they were started."""
        with self._lock:
            return list(self._entries)

    def add(
        self, session: str, task_name: str, instance_id: str, times: InstanceTimes, future: Future[Any]
    ) -> TimelineEntry:
        """Record a started instance; its outcome is taken from ``future`` when it ends.

        Only the timing record and the outcome are kept, not the future (nor the
        result it holds).
        """
        entry = TimelineEntry(session, task_name, instance_id, times)
        with self._lock:
            self._entries.append(entry)
        future.add_done_callback(lambda done: entry.finish(done.status, done.error))
        return entry

    def render(self) -> str:
        """The file's text: an SVG image or an HTML page, as ``path`` says."""
        from ._timeline_page import html_page, svg_image

        entries = self.entries
        title = self.title or ", ".join(dict.fromkeys(e.session for e in entries)) or "numerous-tasks"
        now_ns = time.monotonic_ns()
        if self.path.lower().endswith(".svg"):
            return svg_image(entries, title, now_ns)
        return html_page(entries, title, now_ns)

    def save(self) -> None:
        """Write the file (again): every instance recorded so far.

        Raises:
            OSError: the file cannot be written.
        """
        text = self.render()
        temporary = f"{self.path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, self.path)  # a reader never sees half a file


_default_lock = threading.Lock()
_default: Optional[Timeline] = None


def set_default_timeline(path: Optional[PathLike]) -> Optional[Timeline]:
    """Record every ``Session(timeline=None)`` opened from now on into one timeline at
    ``path`` (written again as each session ends), or stop doing so (None).

    ``numerous-tasks run script.py --timeline run.html`` uses this. Returns the timeline.
    """
    global _default
    timeline = None if path is None else Timeline(path)
    with _default_lock:
        _default = timeline
    return timeline


def default_timeline() -> Optional[Timeline]:
    """The timeline sessions record into when they name none (see :func:`set_default_timeline`)."""
    return _default
