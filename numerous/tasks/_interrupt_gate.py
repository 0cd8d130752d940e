"""Ctrl-C held back while the main thread does a step that must not stop half-way.

A caller's thread waiting for a local instance's result reads that instance's worker pipe
itself (see ``backends.local._dispatcher``): it settles futures and calls handlers,
steps that must not stop half-way. Python raises ``KeyboardInterrupt`` in the main
thread wherever it happens to be, so for the length of such a wait an
:class:`InterruptGate` stands in for the SIGINT handler: where the gate is open (the
wait itself) Ctrl-C reaches the original handler at once; where it is shut (a step) it
is held, and handed to the original handler when the gate is left.

Only the main thread runs Python signal handlers, so only there does the gate do
anything; it leaves a SIGINT handler that is not a Python callable (``SIG_DFL``,
``SIG_IGN``) alone, since that raises nothing.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Any, Callable, Optional, Tuple, Type

__all__ = ["InterruptGate"]

_MAIN = threading.main_thread()


class InterruptGate:
    """``with InterruptGate() as gate:``: SIGINT is held while ``gate.open`` is False
    and handed to the handler it replaced by :meth:`deliver_held` or when the block is
    left (which then raises ``KeyboardInterrupt``, as Ctrl-C would have); while
    ``gate.open`` is True it goes to that handler at once. Starts shut."""

    __slots__ = ("_held", "_replaced", "open")

    def __init__(self) -> None:
        self.open = False
        self._replaced: Optional[Callable[[int, Optional[FrameType]], Any]] = None
        self._held: Optional[Tuple[int, Optional[FrameType]]] = None

    def __enter__(self) -> InterruptGate:
        if threading.current_thread() is _MAIN:
            current = signal.getsignal(signal.SIGINT)
            if callable(current):
                self._replaced = current
                signal.signal(signal.SIGINT, self._arrived)
        return self

    def _arrived(self, signum: int, frame: Optional[FrameType]) -> None:
        replaced = self._replaced
        if self.open and replaced is not None:
            replaced(signum, frame)
        else:
            self._held = (signum, frame)

    def deliver_held(self) -> None:
        """Hand a Ctrl-C held so far to the replaced handler now (call it where no step
        is under way): a SIGINT another thread received is seen by the main thread only
        when it next runs Python, which may be in a step."""
        held, self._held = self._held, None
        if held is not None and self._replaced is not None:
            self._replaced(*held)

    def __exit__(
        self, kind: Optional[Type[BaseException]], error: Optional[BaseException], traceback: Optional[TracebackType]
    ) -> None:
        replaced, self._replaced = self._replaced, None
        if replaced is None:
            return
        signal.signal(signal.SIGINT, replaced)
        held, self._held = self._held, None
        if held is not None and kind is None:
            replaced(*held)  # Ctrl-C came during a step: its KeyboardInterrupt now
