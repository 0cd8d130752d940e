"""Text helpers of the display: durations, rates, error summaries and tracebacks."""

from __future__ import annotations

import os
import traceback
from typing import Optional

__all__ = ["error_summary", "format_rate", "format_seconds", "format_traceback", "is_library_file"]


def format_seconds(seconds: float) -> str:
    """``4.2s``, ``3m05s``, ``2h07m``: short enough for a narrow column."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        minutes, rest = divmod(int(seconds), 60)
        return f"{minutes}m{rest:02d}s"
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m"


def format_rate(per_second: Optional[float]) -> str:
    """Finished instances per second, two significant figures: ``3.2/s``, ``0.25/s``."""
    if per_second is None:
        return ""
    if per_second >= 10:
        return f"{per_second:.0f}/s"
    return f"{per_second:.2g}/s"


def error_summary(error: BaseException) -> str:
    """``Type: first line of the message`` (the original type for a TaskFailedError)."""
    from ..exceptions import TaskFailedError

    if isinstance(error, TaskFailedError):
        name, message = error.type_name, error.message
    else:
        name, message = type(error).__name__, str(error)
    first = message.strip().splitlines()[0] if message.strip() else ""
    return f"{name}: {first}" if first else name


def format_traceback(error: BaseException) -> str:
    """The full traceback text of a task's exception (the worker's, for TaskFailedError).

    Column markers (``^^^^``) are left out: the frames rebuilt from the worker carry the
    positions of tblib's stub, not of the real line, so the markers would point wrongly.
    """
    from ..exceptions import TaskFailedError

    if isinstance(error, TaskFailedError):
        text = f"Traceback in the worker:\n{error.formatted_traceback.rstrip()}"
        last = f"{error.type_name}: {error.message}".strip()
        if not text.endswith(last):
            text += f"\n{last}"
        return library_paths_relative(text)
    tb = error.__traceback__
    # The worker's own frames (running the task) come first; the task's frames follow.
    while tb is not None and tb.tb_next is not None and is_library_file(tb.tb_frame.f_code.co_filename):
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
    return library_paths_relative("".join(exc.format()).rstrip())


# numerous/tasks/, the package whose frames a traceback starts past.
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


#: Where ``numerous/`` is (site-packages, or the checkout of an editable install).
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(_PACKAGE_DIR.rstrip(os.sep))) + os.sep


def library_paths_relative(text: str) -> str:
    """``File "numerous/tasks/_demo.py"`` for the library's own frames (the demo's, and
    its own below a task's call into it): the same on every machine, and no local path
    of the one that recorded ``docs/demo.svg``. The task's own files keep their paths."""
    return text.replace(f'File "{_PACKAGE_ROOT}numerous{os.sep}', f'File "numerous{os.sep}')


def is_library_file(filename: str) -> bool:
    """Whether a frame is numerous.tasks' own (the demo's tasks are not)."""
    path = os.path.abspath(filename)
    return path.startswith(_PACKAGE_DIR) and os.path.basename(path) != "_demo.py"
