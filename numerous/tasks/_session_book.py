"""numerous-sdk's view of a session: its instances by task name, and its ``id``.

:class:`SessionBook` is mixed into :class:`~numerous.tasks.Session` (numerous-sdk's
``Session(name, session_id)``, ``tasks``, ``add_task_instance`` ...; ``Session.current()``
is the session's own). It knows instances, not sessions: it imports
:mod:`numerous.tasks.task` for their type, and nothing imports it but ``session.py``.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional, Union

if TYPE_CHECKING:
    from .task import TaskInstance

__all__ = ["SessionBook"]


#: How many entries the book holds before it first looks for finished instances.
_FIRST_PRUNE = 64


class SessionBook:
    """numerous-sdk's view of a session: its instances by task name, and its ``id``.

    Mixed into :class:`~numerous.tasks.Session`, which calls :meth:`_open_book` from its
    ``__init__``. The book lists an instance from ``task.instance()`` on. A finished one
    stays listed while something else still refers to it (you, usually), or until
    :meth:`cleanup_completed_tasks`: a long session does not keep every result alive.
    Instances refer to their session, so the book holds them weakly once finished (at the
    latest on the next read, or when adding has doubled the book) and all of them once
    the session ended: reference counting frees both, never only a full collection.
    """

    id: str

    def _open_book(self, session_id: Optional[str]) -> None:
        if session_id is None:
            import uuid

            session_id = str(uuid.uuid4())
        elif not isinstance(session_id, str):
            raise TypeError(f"session_id must be a str, not {type(session_id).__name__}")
        self.id = session_id
        self._book_lock = threading.Lock()
        # instance id -> the instance (unfinished), or a weak reference to it (finished)
        self._book: Dict[str, Union[TaskInstance[..., Any], weakref.ReferenceType[TaskInstance[..., Any]]]] = {}
        self._book_prune_at = _FIRST_PRUNE

    @property
    def tasks(self) -> Dict[str, Dict[str, TaskInstance[..., Any]]]:
        """The session's instances, ``{task name: {instance id: instance}}`` (a snapshot)."""
        tasks: Dict[str, Dict[str, TaskInstance[..., Any]]] = {}
        for instance in self._listed():
            tasks.setdefault(instance.task_definition_name, {})[instance.id] = instance
        return tasks

    def add_task_instance(self, instance: TaskInstance[..., Any]) -> None:
        """List ``instance`` under its task's name (``task.instance()`` does this)."""
        with self._book_lock:
            self._book[instance.id] = instance
            if len(self._book) >= self._book_prune_at:
                self._prune()

    def remove_task_instance(self, instance: TaskInstance[..., Any]) -> None:
        """Stop listing ``instance`` (it runs on if it runs: this is bookkeeping only)."""
        with self._book_lock:
            self._book.pop(instance.id, None)

    def get_running_instances_count(self, task_definition_name: str) -> int:
        """How many listed instances of that task are started and not finished."""
        return sum(1 for i in self._listed() if i.task_definition_name == task_definition_name and i.is_running)

    def cleanup_completed_tasks(self) -> None:
        """Stop listing every finished instance."""
        with self._book_lock:
            self._book = {key: entry for key, entry in self._book.items() if _unfinished(entry)}
            self._book_prune_at = max(_FIRST_PRUNE, 2 * len(self._book))

    def _close_book(self) -> None:
        """The session ended: hold every instance weakly (an instance refers to its
        session, so holding it strongly would keep both alive until a full collection)."""
        with self._book_lock:
            self._book = {
                key: weakref.ref(e) if not isinstance(e, weakref.ReferenceType) else e for key, e in self._book.items()
            }

    def _listed(self) -> Iterator[TaskInstance[..., Any]]:
        with self._book_lock:
            self._prune()  # reading is O(n) anyway: let go of what only the book holds
            entries = list(self._book.values())
        for entry in entries:
            instance = entry() if isinstance(entry, weakref.ReferenceType) else entry
            if instance is not None:
                yield instance

    def _prune(self) -> None:
        """Hold finished instances weakly, forget collected ones (call with the lock held).

        Runs on every read, and when adding finds the book doubled since the last time,
        so adding stays O(1) on average however many instances a session makes.
        """
        book: Dict[str, Any] = {}
        for key, entry in self._book.items():
            if isinstance(entry, weakref.ReferenceType):
                if entry() is not None:
                    book[key] = entry
            elif _unfinished(entry):
                book[key] = entry
            else:
                book[key] = weakref.ref(entry)
        self._book = book
        self._book_prune_at = max(_FIRST_PRUNE, 2 * sum(1 for e in book.values() if not isinstance(e, weakref.ref)))


def _unfinished(entry: Any) -> bool:
    """Whether a book entry is an instance not finished yet (not started counts)."""
    if isinstance(entry, weakref.ReferenceType):
        return False
    future = entry.future
    return future is None or not future.done
