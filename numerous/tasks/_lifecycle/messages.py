"""The typed records an instance's outcome travels in, on every backend."""

from __future__ import annotations

from typing import NamedTuple, Optional, Union

__all__ = ["ERROR", "IN_THE_TASK", "LOADING", "PICKLING_THE_RESULT", "RESULT", "ErrorInfo", "Outcome"]

#: Outcome kinds.
RESULT = "result"
ERROR = "error"

#: Where an error happened (ends "raised it ..." in the message of the error result() raises).
LOADING = "while loading the task's arguments"
IN_THE_TASK = "in the task"
PICKLING_THE_RESULT = "while pickling the task's result"


class Outcome(NamedTuple):
    """What an instance's body came to, ready to travel.

    ``body`` is the pickled return value (RESULT) or a pickled :class:`ErrorInfo` (ERROR).
    ``ended_normally``: the task returned or raised an ``Exception`` (not a ``SystemExit``
    or ``KeyboardInterrupt``), which a process needs to be reused.
    """

    kind: str
    body: Union[bytes, bytearray]
    ended_normally: bool = True


class ErrorInfo(NamedTuple):
    """An exception described for another process: itself if it pickles, and always its
    type name, message and formatted traceback as a fallback."""

    type_name: str
    message: str
    traceback: str
    phase: str  # where it happened: LOADING, IN_THE_TASK, PICKLING_THE_RESULT or a backend's own
    exception: Optional[bytes]  # the exception, pickled with its frames (tblib); None if it did not pickle
    pickle_error: Optional[str]  # why it did not pickle
