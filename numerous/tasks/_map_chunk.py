"""One chunk of a ``task.map()``: the argument that makes one instance run many items.

``task.map()`` starts one instance of the task per chunk, with a :class:`MapChunk` as its
only argument. Every backend runs a task body through ``Task.call_with_control``, which
hands such an argument to :meth:`MapChunk.run`: the worker then calls the task's function
once per item, in input order, and returns a :class:`ChunkOutcome` — so a chunk costs one
instance (one pickled call, one control block, one result), however many items it holds.

Inside the chunk::

    for each block of items (1, 2, 4 ... items: a block takes 2-20 ms)
        should_stop?  ── yes: return what is done so far (the rest never runs)
        call the function on each item ── errors="raise": the first exception ends the
                                           chunk, noted with its item's index
                                        ── errors="return": kept with its traceback,
                                           the next item runs
        chunk progress = items done / items in the chunk

A task that takes a TaskControl gets one per item whose ``log`` names the task and the
chunk's instance (plus a ``map_item`` extra: the item's index in the input), whose
``update_progress(p)`` is the item's own progress (the chunk's moves by ``p`` of one item)
and whose ``should_stop`` is the chunk's.

Imported with ``numerous.tasks.task``, so in every worker: keep it light (``pickle``,
tblib and the rest only where an item's error is encoded).
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Protocol, Tuple

from .control import TaskControl

__all__ = ["ChunkOutcome", "ChunkedTask", "MapChunk", "decode_item_error", "item_note"]

#: Seconds a block of items should take at least: below it the block doubles, so fast
#: items pay one stop check and one progress write per many items.
BLOCK_FAST = 0.002
#: Seconds above which a block halves: a stop request is seen within about this long
#: after the item that runs when it arrives.
BLOCK_SLOW = 0.02

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class ChunkedTask(Protocol):
    """What a chunk uses of its task (a :class:`~numerous.tasks.Task`, which imports this
    module to recognise a chunk among its arguments)."""

    @property
    def name(self) -> str:
        """The task's name, for an item's error note."""

    @property
    def function(self) -> Callable[..., Any]:
        """The function, called directly when it takes no TaskControl."""

    @property
    def takes_control(self) -> bool:
        """Whether the function declares a TaskControl parameter."""

    def check_arguments(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        """Raise TypeError if the function cannot take these arguments."""

    def call_with_control(self, control: TaskControl, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Any:
        """Call the function with ``control`` injected."""


class ChunkOutcome(NamedTuple):
    """What a chunk returns: one value per item that ran, in input order.

    ``values`` is shorter than the chunk when it was stopped part-way (the rest never
    ran). ``errors`` (``errors="return"`` only) maps an item's position in the chunk to
    its exception, encoded with :func:`encode_item_error` (its value is None).
    """

    values: List[Any]
    errors: Optional[Dict[int, bytes]]


class MapChunk:
    """Items of one chunk and how to run them (see the module docstring).

    Args:
        items: the items, each a value (one iterable) or a tuple of arguments (several).
        first: the index of the first item in the map's input.
        star: whether each item is a tuple of positional arguments.
        return_errors: keep an item's exception and go on (``errors="return"``) instead
            of ending the chunk with it.
    """

    __slots__ = ("first", "items", "return_errors", "star")

    def __init__(self, items: List[Any], first: int, star: bool, return_errors: bool) -> None:
        self.items = items
        self.first = first
        self.star = star
        self.return_errors = return_errors

    def __getstate__(self) -> Tuple[List[Any], int, bool, bool]:
        return self.items, self.first, self.star, self.return_errors

    def __setstate__(self, state: Tuple[List[Any], int, bool, bool]) -> None:
        self.items, self.first, self.star, self.return_errors = state

    def arguments(self, item: Any) -> Tuple[Any, ...]:
        """The positional arguments one item stands for."""
        return tuple(item) if self.star else (item,)

    def check(self, task: ChunkedTask) -> None:
        """Raise TypeError here, in the caller, if the map's first item does not fit the
        function (the others fail in the worker, each as its item's error: checking
        100,000 items here would cost more than running them)."""
        if self.items and self.first == 0:
            task.check_arguments(self.arguments(self.items[0]), {})

    def run(self, task: ChunkedTask, control: TaskControl) -> ChunkOutcome:
        """Call the task's function on every item (in the worker); see the module docstring."""
        size = len(self.items)
        values: List[Any] = []
        errors: Optional[Dict[int, bytes]] = {} if self.return_errors else None
        run_block = self._block_runner(task, control, values, errors)
        done, block, clock = 0, 1, time.monotonic
        while done < size and not control.should_stop:
            began = clock()
            end = min(size, done + block)
            run_block(done, end)
            done = end
            control.update_progress(100.0 * done / size)
            took = clock() - began
            if took < BLOCK_FAST:
                block *= 2
            elif took > BLOCK_SLOW and block > 1:
                block //= 2
        return ChunkOutcome(values, errors or None)

    def _block_runner(
        self, task: ChunkedTask, control: TaskControl, values: List[Any], errors: Optional[Dict[int, bytes]]
    ) -> Callable[[int, int], None]:
        """What runs items ``start`` to ``end`` (not included), appending to ``values``."""
        items, star, function = self.items, self.star, task.function
        if task.takes_control:
            sink = _ItemSink(control, len(items), self.first)
            item_control = TaskControl(control.instance_id, control.task_definition_name, sink=sink)

            def call(position: int) -> Any:
                sink.position = position
                item_control._progress, item_control._status = 0.0, ""
                return task.call_with_control(item_control, self.arguments(items[position]), {})

        elif star:

            def call(position: int) -> Any:
                return function(*items[position])

        else:

            def call(position: int) -> Any:
                return function(items[position])

        if errors is not None:

            def run_collecting(start: int, end: int) -> None:
                append = values.append
                for position in range(start, end):
                    try:
                        append(call(position))
                    except Exception as exc:
                        errors[position] = encode_item_error(exc)
                        append(None)

            return run_collecting

        def run_raising(start: int, end: int) -> None:
            before = len(values)
            try:
                if task.takes_control:
                    values.extend(map(call, range(start, end)))
                else:  # the common case at C speed: what ProcessPoolExecutor's chunks do
                    values.extend((itertools.starmap if star else map)(function, items[start:end]))
            except Exception as exc:
                # extend() keeps what it appended before the exception: the next item failed.
                _add_note(exc, item_note(task.name, self.first + start + len(values) - before))
                raise

        return run_raising


def item_note(task_name: str, index: int) -> str:
    """The note an item's exception gets: which item of which map."""
    return f"in {task_name}.map(): input item {index}"


def _add_note(exc: BaseException, note: str) -> None:
    """PEP 678 note (Python 3.11+; shown under the traceback), where the class allows it."""
    add_note = getattr(exc, "add_note", None)
    if add_note is not None:
        try:
            add_note(note)
        except Exception:  # a class that blocks attribute assignment: leave it as it is
            pass


class _ItemSink:
    """What an item's TaskControl calls: the chunk's TaskControl, with the item's
    progress scaled into the chunk's."""

    __slots__ = ("_chunk", "_first", "_size", "position")

    def __init__(self, chunk: TaskControl, size: int, first: int) -> None:
        self._chunk = chunk
        self._size = size
        self._first = first
        self.position = 0

    @property
    def process_id(self) -> Optional[int]:
        return self._chunk.process_id

    def should_stop(self) -> bool:
        return self._chunk.should_stop

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        extra.setdefault("map_item", self._first + self.position)
        self._chunk.log(message, level, **extra)

    def update_progress(self, progress: float, status: Optional[str]) -> None:
        self._chunk.update_progress(100.0 * (self.position + progress / 100.0) / self._size, status)

    def update_status(self, status: str) -> None:
        self._chunk.update_status(status)

    def request_stop(self) -> None:
        self._chunk.request_stop()


# -- an item's exception, for errors="return" --------------------------------------------------
def encode_item_error(exc: BaseException) -> bytes:
    """``exc`` with its traceback (tblib), or, if it cannot be pickled, its type name,
    message and formatted traceback."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next  # start at the task's own frames, not at this module's loop
    exc.with_traceback(tb)
    import pickle

    type_name = f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", "")
    try:
        from ._pickling import dumps_exception

        return pickle.dumps(("exception", dumps_exception(exc), type_name, _safe_str(exc)))
    except Exception as error:
        import traceback

        formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        reason = f"the exception could not be pickled in the worker: {type(error).__name__}: {error}"
        return pickle.dumps(("text", formatted, type_name, _safe_str(exc), reason))


def decode_item_error(blob: bytes) -> BaseException:
    """The exception :func:`encode_item_error` encoded (in the caller's process): itself
    with the worker's frames, or a :class:`~numerous.tasks.TaskFailedError`."""
    import pickle

    from .exceptions import TaskFailedError

    kind, body, type_name, message, *reason = pickle.loads(blob)
    if kind == "exception":
        try:
            error: BaseException = pickle.loads(body)
            return error
        except Exception as exc:
            why = f"the exception could not be unpickled here: {type(exc).__name__}: {exc}"
            return TaskFailedError(type_name, message, "", why)
    return TaskFailedError(type_name, message, body, reason[0])


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return f"<str() of the {type(exc).__name__} failed>"
