"""The process-wide side of displays: the default for sessions, and who is drawing.

Only one display draws at a time: one entered while another draws stays passive, since
the outer one already shows every instance of the process. This module knows a display
only as something that counts Ctrl-Cs (:class:`Drawing`): ``_display.py`` imports it,
never the other way round, so reading the default costs no rich.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List, Optional, Protocol

__all__ = ["Drawing", "claim", "default_enabled", "default_options", "note_interrupt", "release", "set_default"]


class Drawing(Protocol):
    """A display that draws: what this module keeps of it."""

    #: Ctrl-Cs the user pressed while it drew (its own thread prints them).
    interrupts: int


# Options for the displays that sessions open with Session(display=None); see set_default.
# The lock also guards _live.
_lock = threading.Lock()
_default_options: Optional[Dict[str, Any]] = None
_live: List[Drawing] = []  # displays drawing now (at most one)


def set_default(enabled: bool, **options: Any) -> None:
    """Make every ``Session(display=None)`` opened from now on show a display (or not).

    Args:
        enabled: True to show one per session, False for the library default (none).
        **options: keyword arguments for the :class:`TaskDisplay` each session makes.

    The ``numerous-tasks run script.py`` command uses this, so that every session the
    script opens shows the display.
    """
    global _default_options
    with _lock:
        _default_options = dict(options) if enabled else None


def default_enabled() -> bool:
    """Whether ``Session(display=None)`` shows a display (see :func:`set_default`)."""
    return _default_options is not None


def default_options() -> Dict[str, Any]:
    """The keyword arguments :func:`set_default` gave, for each session's display."""
    with _lock:
        return dict(_default_options or {})


def note_interrupt() -> None:
    """Tell every drawing display that the user pressed Ctrl-C (the CLI calls this).

    Safe to call from a signal handler: it only counts; the display's thread prints.
    """
    for display in list(_live):
        display.interrupts += 1


def claim(display: Drawing) -> bool:
    """Make ``display`` the one that draws; False if another one already does."""
    with _lock:
        if _live:
            return False
        _live.append(display)
        return True


def release(display: Drawing) -> None:
    """``display`` no longer draws."""
    with _lock:
        if display in _live:
            _live.remove(display)
