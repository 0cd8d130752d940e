"""Ctrl-C held back while the main thread does a step that must not stop half-way.

A caller's thread waiting for a local instance's result reads that instance's worker pipe
itself (see ``backends.local._dispatcher``): it settles futures and calls handlers,
steps that must not stop half-way. Python raises ``KeyboardInterrupt`` in the main
thread wherever it happens to be, so the gate stands in for the SIGINT handler it
replaced: while a step is under way (:meth:`InterruptGate.hold`) Ctrl-C is held, and
handed to the replaced handler when the last step ends (:meth:`InterruptGate.release`);
otherwise it goes to that handler at once, as if the gate were not there.

Putting a handler in place is a system call (a few microseconds, on the path of every
round trip), so the gate stays in place once put there, until the session that put it
there ends (:func:`remove_gate`). Only the main thread runs Python signal handlers, so
only there is there a gate; a SIGINT handler that is not a Python callable
(``SIG_DFL``, ``SIG_IGN``) raises nothing and is left alone.
"""

from __future__ import annotations

import importlib
import signal
import threading
from types import FrameType
from typing import Any, Callable, Optional, Tuple

__all__ = ["InterruptGate", "gate_for_this_thread", "remove_gate"]


def _raw_getsignal() -> Callable[[int], Any]:
    """CPython's ``_signal.getsignal``: ``signal.getsignal`` wraps it, looking every answer
    up as an enum member (a failed lookup for a callable: ~2 µs on each round trip)."""
    try:
        return importlib.import_module("_signal").getsignal  # type: ignore[no-any-return]
    except (ImportError, AttributeError):  # pragma: no cover - another interpreter
        return signal.getsignal


_current_handler = _raw_getsignal()

_MAIN = threading.main_thread()
_Handler = Callable[[int, Optional[FrameType]], Any]


class InterruptGate:
    """Holds Ctrl-C during steps: ``hold()`` before one, ``release()`` after it (nested
    holds count). Its :meth:`arrived` is the SIGINT handler while it is in place."""

    __slots__ = ("_depth", "_held", "_replaced")

    def __init__(self) -> None:
        self._depth = 0
        self._replaced: Optional[_Handler] = None  # the handler it stands in for, while in place
        self._held: Optional[Tuple[int, Optional[FrameType]]] = None

    def put_in_place(self) -> None:
        """Stand in for the current SIGINT handler, unless it already does or that handler
        raises nothing (call on the main thread)."""
        current = _current_handler(signal.SIGINT)
        if current == self.arrived or not callable(current):
            return
        self._replaced = current
        signal.signal(signal.SIGINT, self.arrived)

    def take_out(self) -> None:
        """Put the replaced handler back, if the gate is the handler and no step is under
        way (call on the main thread)."""
        replaced = self._replaced
        if replaced is None or self._depth:
            return
        self._replaced = None
        if _current_handler(signal.SIGINT) == self.arrived:
            signal.signal(signal.SIGINT, replaced)

    def arrived(self, signum: int, frame: Optional[FrameType]) -> None:
        """The SIGINT handler: hold it during a step, else pass it on."""
        if self._depth:
            self._held = (signum, frame)
            return
        replaced = self._replaced
        if replaced is not None:
            replaced(signum, frame)

    def hold(self) -> None:
        """A step begins: Ctrl-C is held until the last step ends."""
        self._depth += 1

    def release(self) -> None:
        """A step ended: when it was the last, hand on a Ctrl-C that came during it (the
        replaced handler raises ``KeyboardInterrupt``, as Ctrl-C would have)."""
        self._depth -= 1
        if self._depth == 0 and self._held is not None:
            held, self._held = self._held, None
            replaced = self._replaced
            if replaced is not None:
                replaced(*held)


class _NoGate(InterruptGate):
    """For threads other than the main one, where no signal handler runs."""

    __slots__ = ()

    def hold(self) -> None:
        """Nothing to hold here."""

    def release(self) -> None:
        """Nothing was held."""


_gate = InterruptGate()
_no_gate = _NoGate()


def gate_for_this_thread() -> InterruptGate:
    """The gate to hold Ctrl-C on the calling thread: on the main thread, the process's,
    put in place if it is not; elsewhere one that does nothing."""
    if threading.current_thread() is not _MAIN:
        return _no_gate
    _gate.put_in_place()
    return _gate


def remove_gate() -> None:
    """Put the SIGINT handler the gate stands in for back (on the main thread; elsewhere
    the gate stays, passing every Ctrl-C straight on)."""
    if threading.current_thread() is _MAIN:
        _gate.take_out()
