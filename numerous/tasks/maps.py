"""``task.map()``: one task over many inputs — :class:`TaskMap` and :class:`MapProgress`.

    from numerous.tasks import Session, task

    @task(max_parallel=2)
    def square(n: int) -> int:
        return n * n

    with Session():
        print(list(square.map(range(10_000), chunksize=500)))

A map cuts its input into chunks; each chunk is one instance of the task, whose worker
calls the function on the chunk's items in turn (``numerous.tasks._map_chunk``). Chunks
take the task's ``max_parallel`` slots like any instance of it, and queue behind the
instances started before them. The engine (its thread, the results waiting to be taken)
is in ``numerous.tasks._map_run``.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Iterable, Iterator, Optional, Sequence, Type, TypeVar

from ._map_progress import MapProgress

if TYPE_CHECKING:
    from ._map_run import MappedTask, MapRun

__all__ = ["ERRORS", "MapProgress", "TaskMap", "start_map"]

R = TypeVar("R")

#: What ``task.map(errors=...)`` accepts: fail fast, or yield exceptions in place.
ERRORS = ("raise", "return")


class TaskMap(Generic[R]):
    """The values of a ``task.map()``, in input order (or as chunks finish with
    ``ordered=False``): iterate it, or call ``next()`` on it.

    The work runs whether or not you iterate: leaving the session normally waits for
    every item. Stopping is by chunk, and a chunk is one instance:

    - :meth:`stop` (or ``with task.map(...) as values:`` leaving its block, or the
      session ending by an exception or Ctrl-C) reads no more input, cancels the chunks
      still waiting for a slot and asks the running ones to stop. A running chunk checks
      ``should_stop`` between items, so the item it is on finishes; a chunk whose item
      ignores the request past the grace period is terminated with its process tree, and
      that chunk's results are lost. Iterating yields what finished, then raises
      :class:`~numerous.tasks.TaskCancelledError`.
    - Breaking out of a ``for`` loop over ``task.map(...)``, or an exception raised in
      its body, stops the map the same way (as closing a generator does). A loop over a
      map you keep in a variable stops it only when the map is dropped, or by ``stop()``
      (``Executor.map``'s generator behaves the same); a map never iterated runs to its end.
    - ``errors="raise"``: the first exception stops the map at once, as above, and
      iterating raises it (results not yet taken are dropped). Its traceback is the
      worker's, with a note naming the input item (Python 3.11+ prints notes).
      ``errors="return"``: an item's exception is yielded in its place; a chunk that
      fails as a whole (its worker died, it timed out) yields its error for each of
      its items.

    After raising, a map is over: ``next()`` raises StopIteration.
    """

    def __init__(self, run: MapRun) -> None:
        self._run = run
        self._values: Iterator[R] = _values(run)

    @property
    def id(self) -> str:
        """The map's id, as handlers and the display show it."""
        return self._run.id

    @property
    def task(self) -> MappedTask:
        """The task mapped (the :class:`~numerous.tasks.Task` whose ``map()`` made this)."""
        return self._run.task

    @property
    def progress(self) -> MapProgress:
        """How far it is now (see :class:`MapProgress`)."""
        return self._run.snapshot()

    @property
    def status(self) -> str:
        """``"running"``, ``"completed"``, ``"failed"`` or ``"cancelled"``."""
        return self._run.snapshot().state

    @property
    def done(self) -> bool:
        """Whether the map ended, every chunk it started finished."""
        return self._run.finished

    def stop(self, timeout: Optional[float] = None) -> None:
        """Read no more input, cancel the waiting chunks and ask the running ones to stop;
        a chunk still running ``timeout`` seconds later (default: the session's
        ``stop_grace``) is terminated. Does not wait; a finished map is left alone."""
        if timeout is not None and timeout != 0:
            from ._options import check_timeout

            check_timeout(timeout)
        self._run.stop(timeout)

    def wait_done(self, timeout: Optional[float] = None) -> bool:
        """Wait until the map ended (without taking its values); True if it did.

        Raises:
            ValueError: ``timeout`` is NaN or negative.
        """
        from .future import check_wait_timeout

        return self._run.wait_done(check_wait_timeout(timeout))

    def __iter__(self) -> Iterator[R]:
        return self._values

    def __next__(self) -> R:
        return next(self._values)

    def __enter__(self) -> TaskMap[R]:
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Stop what is left of the map (see :meth:`stop`)."""
        self._run.stop(None)

    def __repr__(self) -> str:
        progress = self._run.snapshot()
        return f"<TaskMap {progress.map_id} of {progress.task_name!r} {progress.state}: {progress.describe()}>"


def _values(run: MapRun) -> Iterator[Any]:
    """The values, batch by batch; closed before its end (a ``break``), it stops the map."""
    ended = False
    try:
        while True:
            batch = run.take()
            if batch is None:
                ended = True
                return
            yield from batch
    finally:
        if not ended:
            run.abandon()


def start_map(
    task: MappedTask, iterables: Sequence[Iterable[Any]], *, chunksize: int, ordered: bool, errors: str
) -> TaskMap[Any]:
    """What ``task.map()`` does (its docstring says what the arguments mean)."""
    if isinstance(chunksize, bool) or not isinstance(chunksize, int):
        raise TypeError(f"chunksize must be an int, not {type(chunksize).__name__}")
    if chunksize < 1:
        raise ValueError(f"chunksize must be at least 1, not {chunksize}")
    if not isinstance(ordered, bool):
        raise TypeError(f"ordered must be True or False, not {type(ordered).__name__}")
    if not isinstance(errors, str):
        raise TypeError(f"errors must be 'raise' or 'return', not {type(errors).__name__}")
    if errors not in ERRORS:
        raise ValueError(f"errors must be 'raise' (fail fast) or 'return' (yield exceptions), not {errors!r}")
    if not iterables:
        raise TypeError(f"{task.name}.map() needs at least one iterable")
    total = _common_length(iterables)
    iterators = []
    for position, iterable in enumerate(iterables, 1):
        try:
            iterators.append(iter(iterable))
        except TypeError:
            raise TypeError(
                f"argument {position} of {task.name}.map() must be iterable, not {type(iterable).__name__}"
            ) from None
    from ._current import open_host
    from ._map_run import MapRun

    star = len(iterators) > 1
    inputs: Iterator[Any] = zip(*iterators) if star else iterators[0]
    run = MapRun(task, open_host(), inputs, star, total, chunksize, ordered, errors == "return")
    run.start()
    return TaskMap(run)


def _common_length(iterables: Sequence[Iterable[Any]]) -> Optional[int]:
    """How many items a map over these has, if every one has a ``len()``."""
    try:
        return min(len(iterable) for iterable in iterables)  # type: ignore[arg-type]
    except TypeError:
        return None
