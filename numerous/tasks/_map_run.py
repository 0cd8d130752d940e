"""The engine of a ``task.map()``: its thread, its chunks, the values waiting to be taken.

Built on the public instance API only: each chunk is ``task.instance().start(chunk)``,
watched through its future's done-callback, stopped with ``instance.stop()``::

    your thread                  map thread "numerous-map-<id>"          dispatcher thread
    -----------                  ------------------------------          -----------------
    task.map(): starts the       when at most half the window of         a chunk finished:
    first chunk (its errors      chunks is unfinished, a batch:            values kept,
    raise there), then the         read chunksize items per chunk          counts updated,
    map thread                     task.instance() for each                a failure noted;
                                   map_changed (the chunks listed)         wakes who needs
                                   instance.start(MapChunk) for each       it ─────────────┐
    next(): waits for the next   woken ◀─────────────────────────────────────────────────┤
    values (ordered: the next    fail fast or stop(): instance.stop() of                 │
    chunk in input order) ◀────    every unfinished chunk                                │
                                 map_changed (at most every 50 ms)                       │
    stop(): flags, and stops     every chunk finished, nothing to start:                 │
    the unfinished chunks          final map_changed; wait_done() joins ◀────────────────┘

The window is :data:`MIN_WINDOW` chunks, or :data:`WINDOW_PER_SLOT` per ``max_parallel``
slot if more: the chunks waiting for a slot are in the session's queue, so a freed slot
gets its next chunk at once, from the dispatcher thread, and the input is read no
further ahead than that.

The session waits for the map when it ends normally, or stops it first when it ends by
an exception (it is one of the session's activities). Handlers hear of the map only from
the thread that owns it at the time (yours until the map thread starts, then that one),
so its ``map_changed`` calls arrive in order.
"""

from __future__ import annotations

import collections
import contextvars
import functools
import itertools
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Deque, Dict, Iterator, List, Optional, Protocol, Tuple, Union

from ._callbacks import call_user_code, refuse_to_block
from ._ids import random_hex
from ._interruptible import MAIN_THREAD_SLICE, wait_event
from ._map_chunk import MapChunk, decode_item_error, item_note
from ._map_progress import MapProgress
from .control import get_task_control_handler
from .exceptions import SessionError, TaskCancelledError
from .future import COMPLETED, FAILED, Future

if TYPE_CHECKING:
    from ._current import InstanceHost

__all__ = ["DELIVERY_INTERVAL", "MIN_WINDOW", "WINDOW_PER_SLOT", "ChunkInstance", "MapRun", "MappedTask"]

#: Unfinished chunks a map keeps per ``max_parallel`` slot, and at least
#: :data:`MIN_WINDOW`. The map thread tops the window up in batches of half of it: a
#: wake-up per batch, not per chunk, since each wake-up takes the GIL from the
#: dispatcher thread, which launches the next chunk. Measured here (2 cores, loaded):
#: 200 one-item chunks of a max_parallel=2 task took 362 ms with this window (16) and
#: 471 ms with 6, medians of 20 interleaved runs.
WINDOW_PER_SLOT = 4
MIN_WINDOW = 16
#: Seconds the map thread may hold back news of finished chunks, to tell handlers of
#: several in one call: well under what a display redraw waits.
DELIVERY_INTERVAL = 0.05


class ChunkInstance(Protocol):
    """What the map uses of a chunk's instance (a :class:`~numerous.tasks.TaskInstance`)."""

    @property
    def id(self) -> str:
        """The instance's id."""

    def start(self, *args: Any, **kwargs: Any) -> Future[Any]:
        """Start it with these arguments."""

    def stop(self, timeout: Optional[float] = None) -> None:
        """Ask it to stop (cancel it if it waits for a slot)."""


class MappedTask(Protocol):
    """What the map uses of its task (a :class:`~numerous.tasks.Task`, whose ``map()``
    starts the map: this module is below it and knows it only by these)."""

    @property
    def name(self) -> str:
        """The task's name."""

    @property
    def max_parallel(self) -> int:
        """How many instances of it run at once in a session."""

    def instance(self) -> ChunkInstance:
        """A new instance in the current session."""


@dataclass(eq=False)
class _Chunk:
    """A chunk the map started: which items, and its instance."""

    index: int  # the chunk's number, from 0 in input order
    first: int  # its first item's index in the input
    size: int
    instance: Optional[ChunkInstance] = None  # None until made
    future: Optional[Future[Any]] = None  # None until started
    stop_sent: bool = False

    @property
    def items(self) -> str:
        """``items 100-199`` (of the input)."""
        return _span(self.first, self.first + self.size - 1)


def _span(first: int, last: int) -> str:
    """``item 7`` or ``items 100-199``."""
    return f"item {first}" if first == last else f"items {first}-{last}"


@dataclass(eq=False)
class _Finished:
    """A finished chunk's values, until they are taken."""

    chunk: _Chunk
    values: List[Any]  # one per item that ran
    errors: Optional[Dict[int, bytes]] = None  # errors="return": position -> encoded error
    error: Optional[BaseException] = None  # errors="return": the chunk failed as a whole
    unrun: Optional[BaseException] = None  # errors="return": the error of its items that never ran
    cut: bool = False  # the map stopped before all its items ran


@dataclass(eq=False)
class _Counts:
    started: int = 0  # items handed to chunks
    done: int = 0
    failed: int = 0
    chunks: int = 0  # chunks started
    exhausted: bool = False  # the input was read to its end
    total: Optional[int] = None


class MapRun:
    """One map: see the module docstring. Made and started by ``maps.start_map``."""

    def __init__(
        self,
        task: MappedTask,
        session: InstanceHost[Any],
        inputs: Iterator[Any],
        star: bool,
        total: Optional[int],
        chunksize: int,
        ordered: bool,
        return_errors: bool,
    ) -> None:
        self.id = random_hex(6)
        self.task = task
        self.session = session
        self.chunksize = chunksize
        self.ordered = ordered
        self.return_errors = return_errors
        self._inputs = inputs
        self._star = star
        self._window = max(MIN_WINDOW, WINDOW_PER_SLOT * task.max_parallel)
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # wakes the map thread
        self._values = threading.Condition(self._lock)  # wakes takers
        self._counts = _Counts(total=total)
        self._unfinished: Dict[int, _Chunk] = {}
        self._ready: Dict[int, _Finished] = {}  # ordered: by chunk index
        self._ready_queue: Deque[_Finished] = collections.deque()  # unordered: as they finished
        self._next_to_take = 0  # ordered: the chunk whose values come next
        self._failure: Optional[Union[BaseException, Future[Any]]] = None  # what failed the map
        self._failure_taken = False
        self._stopping = False  # no more chunks start; the unfinished ones are stopped
        self._stop_requested = False  # by stop(), a break, or the session
        self._grace: Optional[float] = None
        self._cut = False  # items did not or will not run because the map stopped
        self._cancel_next = False  # ordered: the values taken last ended at such a gap
        self._cancel_taken = False
        self._abandoned = False  # nobody takes values any more: keep none
        self._dirty = False  # something handlers have not heard yet
        self._untold = False  # values a waiting taker was not woken for yet
        self._takers_woken = 0.0  # time.monotonic() of the last wake-up
        self._state = "running"
        self._owner: Optional[object] = None  # the backend whose dispatcher finishes chunks
        self._ended = threading.Event()
        self._thread: Optional[threading.Thread] = None

    # -- starting -----------------------------------------------------------------------
    def start(self) -> None:
        """Start the first chunk here (its errors raise in the caller), then the thread."""
        self.session.add_activity(self)
        try:
            self._deliver()
            self._start_chunks(1)
        except BaseException as exc:
            self._fail(exc)
            self.stop(0.0)
            self._end()
            self.session.remove_activity(self)
            raise
        with self._lock:
            over = self._over()
        if over:  # an empty input: nothing to wait for
            self._end()
            self.session.remove_activity(self)
            return
        context = contextvars.copy_context()  # the thread's instances join the caller's session
        self._thread = threading.Thread(target=context.run, args=(self._serve,), name=f"numerous-map-{self.id}")
        self._thread.daemon = True
        self._thread.start()

    def _serve(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:  # the input raised, or a bug: the map fails with it
            self._fail(exc)
            try:
                while self._step():
                    pass
            except BaseException:
                self.stop(0.0)
        finally:
            self._end()

    def _step(self) -> bool:
        """Wait for something to do; do it. False once the map is over."""
        with self._lock:
            deadline = None
            while True:
                to_stop = self._chunks_to_stop()
                room = self._room()
                over = self._over()
                if to_stop or room or over:
                    break
                if not self._dirty:
                    self._work.wait()
                    continue
                now = time.monotonic()  # changes to tell: batched, but told soon
                deadline = deadline or now + DELIVERY_INTERVAL
                if now >= deadline:
                    break
                self._work.wait(deadline - now)
            dirty, self._dirty = self._dirty, False
            if self._untold:
                self._wake_takers()
        for chunk in to_stop:
            assert chunk.instance is not None
            chunk.instance.stop(self._grace)
        if dirty:
            self._deliver()
        if over:
            return False
        if room:
            self._start_chunks(self._window)
        return True

    def _room(self) -> bool:
        """Whether to start more chunks: the unfinished ones fell to half the window
        (under the lock), so the map thread starts them in batches."""
        if self._stopping or self._counts.exhausted:
            return False
        return len(self._unfinished) <= self._window // 2

    def _over(self) -> bool:
        """Nothing runs and nothing more will start (under the lock)."""
        return not self._unfinished and (self._counts.exhausted or self._stopping)

    def _chunks_to_stop(self) -> List[_Chunk]:
        """The started chunks not yet told to stop, once the map stops (under the lock)."""
        if not self._stopping:
            return []
        chunks = [c for c in self._unfinished.values() if c.future is not None and not c.stop_sent]
        for chunk in chunks:
            chunk.stop_sent = True
        # Those waiting for a slot first: a running one that returns at once (on the inline
        # backend, within milliseconds) must not free its slot for a chunk still queued.
        return sorted(chunks, key=lambda c: c.future is None or c.future.status != "pending")

    def _start_chunks(self, most: int) -> None:
        """Read chunks of input (at most ``most``, and up to the window) and start an
        instance for each; errors starting the first raise when ``most`` is 1 (in
        ``task.map()`` itself), later ones fail their chunk."""
        batch: List[Tuple[_Chunk, List[Any]]] = []
        read_error: Optional[BaseException] = None
        while len(batch) < most:
            with self._lock:
                if self._untold:  # reading the input may take long: values first
                    self._wake_takers()
                if self._stopping or self._counts.exhausted or len(self._unfinished) >= self._window:
                    break
            try:
                items = list(itertools.islice(self._inputs, self.chunksize))  # the user's iterable
            except BaseException as exc:
                read_error = exc  # the chunks read before it still start
                break
            chunk = self._register(items)
            if chunk is None:
                break
            batch.append((chunk, items))
        try:
            for chunk, _ in batch:
                chunk.instance = self.task.instance()
        except SessionError:  # the session is ending: it stops the map's instances itself
            for chunk, _ in batch:
                self._lose(chunk)
            self.stop(None)
            return
        if batch:
            self._deliver()  # handlers learn of the chunks before their instances report "pending"
        for chunk, items in batch:
            self._start_chunk(chunk, items, raise_errors=most == 1)
        if read_error is not None:
            raise read_error

    def _register(self, items: List[Any]) -> Optional[_Chunk]:
        """Count items read; a chunk for them, or None if there are none or the map stops."""
        with self._lock:
            counts = self._counts
            if len(items) < self.chunksize:
                counts.exhausted = True
                counts.total = counts.started + len(items)
                self._dirty = True
            if not items:
                return None
            if self._stopping:  # read, but too late to run
                self._cut = True
                return None
            chunk = _Chunk(counts.chunks, counts.started, len(items))
            counts.chunks += 1
            counts.started += len(items)
            self._unfinished[chunk.index] = chunk  # from here on the map is not over
            return chunk

    def _start_chunk(self, chunk: _Chunk, items: List[Any], raise_errors: bool) -> None:
        assert chunk.instance is not None
        try:
            future = chunk.instance.start(MapChunk(items, chunk.first, self._star, self.return_errors))
        except SessionError:
            self._lose(chunk)
            self.stop(None)
            return
        except BaseException as exc:
            self._lose(chunk)
            if raise_errors:
                raise
            self._chunk_failed_to_start(chunk, exc)
            return
        with self._lock:
            chunk.future = future
            self._owner = self._owner or future.owner
            stop_now = self._stopping and not chunk.stop_sent
            chunk.stop_sent = chunk.stop_sent or stop_now
        future.add_done_callback(functools.partial(self._chunk_done, chunk))
        if stop_now:
            chunk.instance.stop(self._grace)

    def _lose(self, chunk: _Chunk) -> None:
        """Forget a chunk whose instance did not start."""
        with self._lock:
            self._unfinished.pop(chunk.index, None)
            self._dirty = True

    def _chunk_failed_to_start(self, chunk: _Chunk, error: BaseException) -> None:
        """A later chunk could not start (an item that cannot be pickled): it fails."""
        _add_chunk_note(error, self.task.name, chunk)
        with self._lock:
            self._record(_Finished(chunk, [], error=error if self.return_errors else None), error)

    # -- a chunk finished (on the thread that finished its future) -------------------------
    def _chunk_done(self, chunk: _Chunk, future: Future[Any]) -> None:
        values: List[Any] = []
        errors = None
        error = None
        if future.status == COMPLETED:
            values, errors = future.result(timeout=0)
        elif future.status == FAILED:
            error = future.error
            assert error is not None
            _add_chunk_note(error, self.task.name, chunk)
        with self._lock:
            self._unfinished.pop(chunk.index, None)
            finished = _Finished(chunk, values, errors, error if self.return_errors else None)
            self._record(finished, future if error is not None else None)

    def _record(self, finished: _Finished, failure: Optional[Union[BaseException, Future[Any]]]) -> None:
        """Count a finished chunk, keep its values for the taker, fail fast (under the lock)."""
        chunk, counts = finished.chunk, self._counts
        ran = len(finished.values)
        if finished.error is not None:  # errors="return": each item gets the chunk's error
            counts.done += chunk.size
            counts.failed += chunk.size
        else:
            counts.done += ran
            counts.failed += len(finished.errors or ())
        if failure is not None and not self.return_errors:
            self._fail_with(failure)
        elif failure is None and ran < chunk.size:  # some of its items never ran
            if self._stopping:
                finished.cut = self._cut = True
            else:  # stopped from within (tc.request_stop()), not by the map
                unrun = _span(chunk.first + ran, chunk.first + chunk.size - 1)
                error = TaskCancelledError(f"{self.task.name}.map(): {unrun} did not run: their chunk was stopped")
                if self.return_errors:
                    finished.unrun = error
                    counts.done += chunk.size - ran
                    counts.failed += chunk.size - ran
                else:
                    self._fail_with(error)
        if not self._abandoned:
            if self.ordered:
                self._ready[chunk.index] = finished
            else:
                self._ready_queue.append(finished)
        # Wake few threads from here: a woken thread takes the GIL (or the CPU) from the
        # dispatcher thread, which launches the next chunk once this callback returns.
        # A taker waiting for these values is woken at most once per DELIVERY_INTERVAL
        # (else the map thread wakes it with its next report); the map thread when it
        # may start a batch, or to time its next report.
        over = self._over()
        if over:
            self._wake_takers()
        elif not self.ordered or chunk.index == self._next_to_take:
            if time.monotonic() - self._takers_woken >= DELIVERY_INTERVAL:
                self._wake_takers()
            else:
                self._untold = True
        if not self._dirty or over or self._room():
            self._work.notify()
        self._dirty = True

    def _wake_takers(self) -> None:
        """Wake whoever waits for values (under the lock)."""
        self._untold = False
        self._takers_woken = time.monotonic()
        self._values.notify_all()

    def _fail_with(self, failure: Union[BaseException, Future[Any]]) -> None:
        """Fail fast: the first failure is the map's; stop the rest (under the lock)."""
        if self._failure is None:
            self._failure = failure
            self._counts.failed += 1
        self._stopping = True
        self._dirty = True
        self._work.notify()
        self._wake_takers()

    def _fail(self, error: BaseException) -> None:
        """The map fails with ``error`` (reading the input raised it)."""
        with self._lock:
            self._fail_with(error)

    # -- stopping --------------------------------------------------------------------------
    def stop(self, timeout: Optional[float] = None) -> None:
        """Start no more chunks, cancel waiting ones, ask running ones to stop (grace
        ``timeout``; None: the session's). Does not wait."""
        with self._lock:
            if self._state != "running":
                return
            self._stopping = self._stop_requested = True
            self._grace = timeout
            counts = self._counts
            if not counts.exhausted and (counts.total is None or counts.started < counts.total):
                self._cut = True  # input never read
            chunks = self._chunks_to_stop()
            self._dirty = True
            self._work.notify()
            self._wake_takers()
        for chunk in chunks:  # from here too: the map thread may be busy reading the input
            assert chunk.instance is not None
            chunk.instance.stop(timeout)

    def abandon(self) -> None:
        """Nobody will take the values (the loop was left early): stop, keep nothing."""
        with self._lock:
            self._abandoned = True
            self._ready.clear()
            self._ready_queue.clear()
        self.stop(None)

    def wait_done(self, timeout: Optional[float] = None) -> bool:
        """Wait until every chunk has finished and handlers heard the end; then the
        map's thread is joined and the session lets go of the map."""
        if not wait_event(self._ended, timeout):
            return False
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        self.session.remove_activity(self)
        return True

    @property
    def finished(self) -> bool:
        """Whether the map ended."""
        return self._ended.is_set()

    def _end(self) -> None:
        """Every chunk finished: say how it ended, let the session go."""
        with self._lock:
            if self._failure is not None:
                self._state = "failed"
            elif self._stop_requested and self._cut:
                self._state = "cancelled"
            else:
                self._state = "completed"
            self._wake_takers()
        try:
            self._deliver()
        finally:
            self._ended.set()  # the session lets go of the map once it joined its thread

    # -- taking values (your thread) -------------------------------------------------------
    def take(self) -> Optional[List[Any]]:
        """The next values to yield (waiting for them); None once all were taken.

        Raises:
            Exception: the error that failed the map (fail fast), once.
            TaskCancelledError: the map was stopped before every item ran, once, after
                the values that did run (in input order: up to the first gap).
        """
        with self._lock:
            while True:
                if self._failure_taken or self._cancel_taken:
                    return None
                if self._failure is not None:
                    self._failure_taken = True
                    failure = self._failure
                    break
                if self._cancel_next:
                    self._cancel_taken = True
                    raise self._cancelled_error()
                finished = self._pop_ready()
                if finished is not None:
                    return self._values_of(finished)
                if self._all_taken():
                    if self._cut and self._stop_requested:
                        self._cancel_taken = True
                        raise self._cancelled_error()
                    return None
                if self._owner is not None:
                    refuse_to_block(self._owner, f"iterating {self.task.name}.map()")
                self._values.wait(MAIN_THREAD_SLICE)  # see _interruptible: Ctrl-C ends it at once
        if isinstance(failure, Future):
            failure.result(timeout=0)  # raises the task's exception with the worker's frames
            raise AssertionError("a failed chunk's future returned")  # pragma: no cover
        raise failure

    def _pop_ready(self) -> Optional[_Finished]:
        if self.ordered:
            finished = self._ready.pop(self._next_to_take, None)
            if finished is not None:
                self._next_to_take += 1
            return finished
        return self._ready_queue.popleft() if self._ready_queue else None

    def _all_taken(self) -> bool:
        """Every value that will ever come was taken (under the lock)."""
        if not self._over():
            return False
        if self.ordered:
            return self._next_to_take >= self._counts.chunks
        return not self._ready_queue

    def _cancelled_error(self) -> TaskCancelledError:
        counts = self._counts
        of = f" of {counts.total:,}" if counts.total is not None else ""
        return TaskCancelledError(f"{self.task.name}.map() was stopped: {counts.done:,}{of} items ran")

    def _values_of(self, finished: _Finished) -> List[Any]:
        """A finished chunk's values, its errors decoded (under the lock)."""
        chunk = finished.chunk
        if finished.error is not None:
            return [finished.error] * chunk.size
        values = finished.values
        if finished.errors:
            for position, blob in finished.errors.items():
                values[position] = _noted(decode_item_error(blob), item_note(self.task.name, chunk.first + position))
        if finished.unrun is not None:
            values = values + [finished.unrun] * (chunk.size - len(values))
        if finished.cut and self.ordered:  # nothing after a gap can come in input order
            self._cancel_next = True
        return values

    # -- telling handlers ------------------------------------------------------------------
    def snapshot(self) -> MapProgress:
        """How far the map is, now."""
        with self._lock:
            counts = self._counts
            failure = self._failure
            return MapProgress(
                map_id=self.id,
                task_name=self.task.name,
                state=self._state,
                total=counts.total,
                started=counts.started,
                done=counts.done,
                failed=counts.failed,
                chunksize=self.chunksize,
                chunks={c.instance.id: c.size for c in self._unfinished.values() if c.instance is not None},
                stop_requested=self._stopping,
                error=failure.error if isinstance(failure, Future) else failure,
            )

    def _deliver(self) -> None:
        """Tell the handler how far the map is (only from the thread owning the map)."""
        handler = get_task_control_handler()
        call_user_code(handler.map_changed, self.snapshot(), description=f"map_changed() of {handler!r}")


def _add_chunk_note(error: BaseException, task_name: str, chunk: _Chunk) -> None:
    """Say which items a chunk-wide error is about, unless an item's note already does."""
    prefix = f"in {task_name}.map():"
    if not any(str(note).startswith(prefix) for note in getattr(error, "__notes__", ())):
        _noted(error, f"{prefix} the chunk of input {chunk.items}")


def _noted(error: BaseException, note: str) -> BaseException:
    """``error`` with ``note`` added (Python 3.11+, where the class allows it)."""
    add_note = getattr(error, "add_note", None)
    if add_note is not None and note not in getattr(error, "__notes__", ()):
        try:
            add_note(note)
        except Exception:
            pass
    return error
