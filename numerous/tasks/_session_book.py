"""numerous-sdk's view of a session: its instances by task name, and its ``id``.

:class:`SessionBook` is mixed into :class:`~numerous.tasks.Session` (numerous-sdk's
``Session(name, session_id)``, ``tasks``, ``add_task_instance`` ...; ``Session.current()``
is the session's own). It knows instances, not sessions: it imports
:mod:`numerous.tasks.task` for their type, and nothing imports it but ``session.py``.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterator, Optional

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

    Every listed instance is held weakly; one not started yet is also held strongly
    (numerous-sdk listed it until it was removed), until ``start()`` hands it to the
    session, which holds it while it runs (:meth:`_started`). Instances refer to their
    session: reference counting frees both, never only a full collection. Adding,
    starting and ending the session cost the same however many instances it made.
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
        self._book: Dict[str, weakref.ReferenceType[TaskInstance[..., Any]]] = {}  # every listed one
        self._book_prune_at = _FIRST_PRUNE
        # Listed instances not finished that nothing else may hold (not started, or
        # started in another session): held here, by instance id.
        self._held: Dict[str, TaskInstance[..., Any]] = {}
        self._held_prune_at = _FIRST_PRUNE

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
            self._book[instance.id] = weakref.ref(instance)
            if len(self._book) >= self._book_prune_at:
                self._prune_book()
            if _unfinished(instance):
                self._held[instance.id] = instance
                if len(self._held) >= self._held_prune_at:
                    self._prune_held()

    def _started(self, instance: TaskInstance[..., Any]) -> None:
        """``instance`` was started in this session, which holds it until it ends."""
        with self._book_lock:
            self._held.pop(instance.id, None)

    def remove_task_instance(self, instance: TaskInstance[..., Any]) -> None:
        """Stop listing ``instance`` (it runs on if it runs: this is bookkeeping only)."""
        with self._book_lock:
            self._book.pop(instance.id, None)
            self._held.pop(instance.id, None)

    def get_running_instances_count(self, task_definition_name: str) -> int:
        """How many listed instances of that task are started and not finished."""
        return sum(1 for i in self._listed() if i.task_definition_name == task_definition_name and i.is_running)

    def cleanup_completed_tasks(self) -> None:
        """Stop listing every finished instance."""
        with self._book_lock:
            self._book = {key: ref for key, ref in self._book.items() if _unfinished(ref())}
            self._book_prune_at = max(_FIRST_PRUNE, 2 * len(self._book))
            self._prune_held()

    def _close_book(self) -> None:
        """The session ended: hold no instance strongly (an instance refers to its
        session, so holding it would keep both alive until a full collection)."""
        with self._book_lock:
            self._held = {}

    def _listed(self) -> Iterator[TaskInstance[..., Any]]:
        with self._book_lock:
            self._prune_held()  # reading is O(n) anyway: let go of what only the book holds
            refs = list(self._book.values())
        for ref in refs:
            instance = ref()
            if instance is not None:
                yield instance

    def _prune_book(self) -> None:
        """Forget collected instances (call with the lock held): when adding finds the
        book doubled since the last time, so adding stays O(1) on average."""
        self._book = {key: ref for key, ref in self._book.items() if ref() is not None}
        self._book_prune_at = max(_FIRST_PRUNE, 2 * len(self._book))

    def _prune_held(self) -> None:
        """Let go of held instances that have finished (call with the lock held)."""
        self._held = {key: instance for key, instance in self._held.items() if _unfinished(instance)}
        self._held_prune_at = max(_FIRST_PRUNE, 2 * len(self._held))


def _unfinished(instance: Optional[TaskInstance[..., Any]]) -> bool:
    """Whether an instance is alive and not finished yet (not started counts)."""
    if instance is None:
        return False
    future = instance.future
    return future is None or not future.done
