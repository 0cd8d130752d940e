"""``MapProgress``: how far one ``task.map()`` is — what handlers and ``TaskMap.progress`` get.

A record and nothing else, so that :mod:`numerous.tasks.control` (the handlers' module)
can name it without importing the map machinery; :mod:`numerous.tasks.maps` is its
public home.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

__all__ = ["MapProgress"]


@dataclass(frozen=True)
class MapProgress:
    """How far one ``task.map()`` is: what ``TaskControlHandler.map_changed`` gets and
    :attr:`TaskMap.progress` returns (a snapshot; it does not change)."""

    #: The map's id (``TaskMap.id``), 12 hex digits.
    map_id: str
    #: The task's name.
    task_name: str
    #: ``"running"``, then ``"completed"`` (every item ran; with ``errors="return"``,
    #: some may have failed), ``"failed"`` (an error stopped it: ``error``) or
    #: ``"cancelled"`` (stopped before every item ran).
    state: str
    #: Items in the input, known at once for inputs with a ``len()``, else None until
    #: the input has been read to its end.
    total: Optional[int]
    #: Items read from the input and handed to a chunk so far.
    started: int
    #: Items that ran (their value or their error is back).
    done: int
    #: Items whose error you get (``errors="return"``), or 1 for the error that stopped
    #: a failed map.
    failed: int
    #: Items per chunk (the last chunk may hold fewer).
    chunksize: int
    #: The chunks started and not finished, as instance id -> items in the chunk.
    chunks: Mapping[str, int]
    #: Whether the map was asked to stop (``stop()``, a ``break``, the session ending by
    #: an exception) or is stopping after a failure.
    stop_requested: bool
    #: The error a failed map raises, else None.
    error: Optional[BaseException] = None

    @property
    def finished(self) -> bool:
        """Whether the map ended, every chunk it started finished."""
        return self.state != "running"

    def describe(self) -> str:
        """``1,200/10,000 items done, 3 failed, 2 chunks running``."""
        text = f"{self.done:,}/{self.total:,}" if self.total is not None else f"{self.done:,}/{self.started:,}+"
        text += " items done"
        if self.failed:
            text += f", {self.failed:,} failed"
        if self.chunks:
            text += f", {len(self.chunks)} chunk{'s' if len(self.chunks) != 1 else ''} running"
        return text
