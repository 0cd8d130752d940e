"""The per-instance control block in shared memory.

One fixed-size POSIX shared memory segment per instance (what
``multiprocessing.shared_memory`` makes; opened here without its tracker). The parent writes
only the stop flag; the worker writes progress and status under a sequence counter
(a seqlock), so the parent never reads a torn value::

    offset  size  field            writer   notes
    ------  ----  ---------------  -------  -----------------------------------------
         0     8  stop             parent   0 = run, 1 = stop requested
         8     8  seq              worker   odd while a write is under way
        16     8  progress         worker   float64, already clamped to 0..100
        24     8  meta             worker   bits 0-31 status length in bytes,
                                            bits 32-39 flags (1 progress set,
                                            2 status set, 4 status was cut),
                                            bits 40-47 last kind (1 progress,
                                            2 status)
        32     8  running_ns       worker   time.monotonic_ns() as the body began
                                            (0 before); read by the parent's poll
        40  4056  status           worker   UTF-8 (lone surrogates pass through)

Every header field is one aligned 8-byte item of a ``memoryview.cast`` ("Q" or "d"):
one store each, where ``struct.pack_into`` would zero-fill first (measured here: ~3%
torn reads without the counter, none with it). A write that keeps the status text
copies no text.

Neither side registers the segment with ``multiprocessing``'s resource tracker (it would
start a tracker process per parent and warn on every unlink). The worker unlinks the name
as soon as it has mapped the block, and the parent again (idempotently) when the
instance ends, so no ``/dev/shm`` entry outlives it, whoever dies first.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import Any, Dict, NamedTuple, Optional

from ..._ids import random_hex

__all__ = [
    "BLOCK_SIZE",
    "STATUS_CAPACITY",
    "ControlBlock",
    "ProgressSnapshot",
    "linked_blocks",
    "unlink_block",
]

BLOCK_SIZE = 4096  # one page: the smallest segment the kernel hands out anyway
_STATUS_OFFSET = 40
STATUS_CAPACITY = BLOCK_SIZE - _STATUS_OFFSET
_CUT_MARK = "…".encode()  # appended to a status that was cut to fit

_FLAG_PROGRESS = 1
_FLAG_STATUS = 2
_FLAG_CUT = 4
KIND_PROGRESS = 1
KIND_STATUS = 2

_NAME_PREFIX = "nt_"  # short: macOS limits names to 31 characters
_MAX_READ_ATTEMPTS = 10_000  # a worker killed mid-write leaves seq odd forever

# Names this process created and has not unlinked yet: what a leak check looks at,
# since /dev/shm is shared with every other process on the machine.
_linked: set[str] = set()
_linked_lock = threading.Lock()


def linked_blocks() -> frozenset[str]:
    """Names of the blocks this process created whose names it has not unlinked."""
    with _linked_lock:
        return frozenset(_linked)


class ProgressSnapshot(NamedTuple):
    """One consistent read of what the worker last reported."""

    seq: int
    progress: Optional[float]
    status: Optional[str]
    status_was_cut: bool
    last_kind: int


#: Python 3.13+ maps without the duplicate descriptor ``mmap`` otherwise keeps open until
#: the mapping is closed (two system calls fewer per block on each side).
_NO_DESCRIPTOR_KEPT: Dict[str, Any] = {"trackfd": False} if sys.version_info >= (3, 13) else {}


class _Mapping:
    """One mapping of a POSIX shared memory segment: the ``shm_open`` + ``mmap`` that
    ``multiprocessing.shared_memory.SharedMemory`` makes, minus its resource tracker
    (which would start a tracker process per parent and warn on every unlink), its
    kept descriptor, and the ``multiprocessing`` import (~20 ms on each fresh worker's
    start). A name made here opens with ``SharedMemory(name)`` too."""

    def __init__(self, name: str, create: bool) -> None:
        import _posixshmem
        import mmap

        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        fd = _posixshmem.shm_open("/" + name, flags, mode=0o600)
        try:
            if create:
                # Allocate now (this also sets the size): touching a page of a full
                # tmpfs later would be a SIGBUS; here it is an OSError.
                try:
                    os.posix_fallocate(fd, 0, BLOCK_SIZE)
                except OSError:
                    _posixshmem.shm_unlink("/" + name)
                    raise
            self._mmap = mmap.mmap(fd, BLOCK_SIZE, **_NO_DESCRIPTOR_KEPT)
        finally:
            os.close(fd)
        self.name = name
        self.buf = memoryview(self._mmap)

    def close(self) -> None:
        self.buf.release()
        self._mmap.close()


def unlink_block(name: str) -> None:
    """Remove the segment's name from ``/dev/shm``; a name already gone is fine."""
    import _posixshmem  # the same call SharedMemory.unlink makes, without the tracker

    try:
        _posixshmem.shm_unlink("/" + name if not name.startswith("/") else name)
    except FileNotFoundError:
        pass


class ControlBlock:
    """A mapped control block; see the module docstring for the layout."""

    def __init__(self, segment: Any, owner: bool) -> None:
        self._segment = segment
        self.owner = owner
        self.name = segment.name.lstrip("/")
        buf = segment.buf
        assert buf is not None
        self._buf = buf
        self._words: memoryview = buf[:_STATUS_OFFSET].cast("Q")
        self._doubles = buf[:_STATUS_OFFSET].cast("d")
        self._unlinked = False
        self._closed = False
        # Worker-side state: what the last write said, to fill the other field.
        self._progress = 0.0
        self._status = b""
        self._status_text: Optional[str] = None
        self._status_dirty = False
        self._flags = 0

    # -- lifetime -----------------------------------------------------------------------
    @classmethod
    def create(cls) -> ControlBlock:
        """Create a fresh, zeroed block with a random, unguessable name (mode 0600).

        Raises:
            OSError: no space left for the block (a full ``/dev/shm``); the block is
                not left behind.
        """
        name = _NAME_PREFIX + random_hex(12)
        segment = _Mapping(name, create=True)
        with _linked_lock:
            _linked.add(name)
        return cls(segment, owner=True)

    @classmethod
    def attach(cls, name: str) -> ControlBlock:
        """Map an existing block (in the worker)."""
        return cls(_Mapping(name, create=False), owner=False)

    def unlink(self) -> None:
        """Remove the name from ``/dev/shm`` (mappings stay valid); idempotent."""
        if not self._unlinked:
            self._unlinked = True
            unlink_block(self.name)
            with _linked_lock:
                _linked.discard(self.name)

    def name_is_linked(self) -> bool:
        """Whether the block's name is still in ``/dev/shm``: a worker that took the
        block's job removed it right after mapping the block (one system call)."""
        import _posixshmem

        try:
            fd = _posixshmem.shm_open("/" + self.name, os.O_RDONLY, mode=0o600)
        except FileNotFoundError:
            return False
        os.close(fd)
        return True

    def name_removed_elsewhere(self) -> None:
        """Record that the name is gone already, removed by the process that mapped the
        block (the worker does so before it marks the body running): no system call."""
        if not self._unlinked:
            self._unlinked = True
            with _linked_lock:
                _linked.discard(self.name)

    def close(self) -> None:
        """Unmap the block; idempotent. Call after the last read."""
        if self._closed:
            return
        self._closed = True
        self._words.release()
        self._doubles.release()
        self._buf.release()
        self._segment.close()

    # -- the stop flag (parent writes, worker reads) ------------------------------------
    def request_stop(self) -> None:
        """Set the stop flag; a block already closed (its instance is over) is left be."""
        try:
            self._words[0] = 1
        except ValueError:  # released by the dispatcher a moment ago: nothing to stop
            pass

    @property
    def stop_requested(self) -> bool:
        """Whether the stop flag is set."""
        return self._words[0] != 0

    def stop_flag_view(self) -> memoryview:
        """A one-item view of the stop flag, for the fastest possible polling."""
        return self._words[0:1]

    # -- progress and status (worker writes, parent reads) ------------------------------
    def write_progress(self, progress: float, status: Optional[str]) -> None:
        """Record a progress value and, when not None, a new status."""
        self._progress = progress
        self._flags |= _FLAG_PROGRESS
        if status is not None and status != self._status_text:
            self._set_status(status)
        self._write(KIND_PROGRESS)

    def write_status(self, status: str) -> None:
        """Record a new status text."""
        if status != self._status_text:
            self._set_status(status)
        self._write(KIND_STATUS)

    def _set_status(self, status: str) -> None:
        data = status.encode("utf-8", "surrogatepass")
        self._flags = (self._flags | _FLAG_STATUS) & ~_FLAG_CUT
        if len(data) > STATUS_CAPACITY:
            cut = STATUS_CAPACITY - len(_CUT_MARK)
            while cut > 0 and data[cut] & 0xC0 == 0x80:  # never split a character
                cut -= 1
            data = data[:cut] + _CUT_MARK
            self._flags |= _FLAG_CUT
        self._status_text = status
        self._status = data
        self._status_dirty = True

    def _write(self, kind: int) -> None:
        words = self._words
        seq = words[1]
        words[1] = seq + 1  # odd: readers retry
        self._doubles[2] = self._progress
        data = self._status
        words[3] = len(data) | self._flags << 32 | kind << 40
        if self._status_dirty:
            self._buf[_STATUS_OFFSET : _STATUS_OFFSET + len(data)] = data
            self._status_dirty = False
        words[1] = seq + 2

    def read(self) -> Optional[ProgressSnapshot]:
        """A consistent snapshot, or None if no consistent read was possible."""
        words, buf = self._words, self._buf
        for _ in range(_MAX_READ_ATTEMPTS):
            before = words[1]
            if before & 1:
                continue
            progress = self._doubles[2]
            meta = words[3]
            length, flags, kind = meta & 0xFFFFFFFF, (meta >> 32) & 0xFF, (meta >> 40) & 0xFF
            data = bytes(buf[_STATUS_OFFSET : _STATUS_OFFSET + min(length, STATUS_CAPACITY)])
            if words[1] == before:
                return ProgressSnapshot(
                    seq=before,
                    progress=progress if flags & _FLAG_PROGRESS else None,
                    status=data.decode("utf-8", "surrogatepass") if flags & _FLAG_STATUS else None,
                    status_was_cut=bool(flags & _FLAG_CUT),
                    last_kind=kind,
                )
        return None

    def mark_running(self) -> None:
        """Record that the task's body begins now (worker side)."""
        self._words[4] = time.monotonic_ns()

    @property
    def running_ns(self) -> Optional[int]:
        """When the body began (``time.monotonic_ns()``), or None if it has not."""
        try:
            value = int(self._words[4])
        except ValueError:  # closed
            return None
        return value or None

    @property
    def seq(self) -> int:
        """The sequence counter: it changes with every write."""
        return int(self._words[1])
