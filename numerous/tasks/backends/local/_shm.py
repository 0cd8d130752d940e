"""Control blocks: each instance's page of shared memory, a slot of its worker's arena.

Every worker gets one **arena** when it is spawned: nameless shared memory (a Linux
``memfd``; elsewhere a POSIX segment whose name is removed the moment it is opened) of
:data:`ARENA_SLOTS` pages and one more, mapped by the parent and by the worker, whose
descriptor the worker inherits. Each instance the worker runs gets one **slot** — its own page, zeroed
for it — as its control block. Nothing has a name, so nothing can outlive its owners: the
memory goes when the last process that maps it exits, however it exits. No descriptor is
opened and no page mapped per instance.

The parent writes only the stop flag; the worker writes progress and status under a
sequence counter (a seqlock), so the parent never reads a torn value. One slot::

    offset  size  field            writer   notes
    ------  ----  ---------------  -------  -----------------------------------------
         0     8  stop             parent   0 = run, 1 = stop requested
         8     8  seq              worker   odd while a write is under way
        16     8  progress         worker   float64, already clamped to 0..100
        24     8  meta             worker   bits 0-31 status length in bytes,
                                            bits 32-39 flags (1 progress set,
                                            2 status set, 4 status was cut)
        32     8  running_ns       worker   time.monotonic_ns() as the body began
                                            (0 before); read by the parent's poll
        40     8  taken_ns         worker   time.monotonic_ns() as the worker took the
                                            job, before loading its arguments (0 before)
        48     8  claim            both     claim slots only (see below): 0 free,
                                            CLAIMING, or the lane number + 1 of the job
                                            the worker claimed into it
        56  4040  status           worker   UTF-8 (lone surrogates pass through)

Every header field is one aligned 8-byte item of a ``memoryview.cast`` ("Q" or "d"):
one store each, where ``struct.pack_into`` would zero-fill first (measured here: ~3%
torn reads without the counter, none with it). A write that keeps the status text
copies no text.

A slot is free again once the parent has read the instance's last progress; a
``TaskControl`` the task kept after it ended fails cleanly, since its views of the slot
are released (it never sees the next instance's page).

The first :data:`PARENT_SLOTS` slots are the parent's to hand out with a job it writes
to the worker. The others are **claim slots**, for jobs the worker takes itself from
the dispatcher's lane (see ``_lane``): the worker picks one whose claim word is 0, sets
the word to :data:`CLAIMING` *before* it reads the lane and, if it got a job, zeroes the
slot and sets the word to the job's lane number + 1; the parent sets it back to 0 once
it has read the instance's last progress. So a worker that dies mid-claim leaves, in its arena, what it
may have taken.

After the slots, one more page holds words the parent writes for the worker alone: the
**lane hint** (word 0), up while the lane may hold jobs, down once the parent knows it
is empty. A worker that ends a job reads it before it reads the lane: with nothing
queued (a lone round trip) it says IDLE at once, with no system call and no claim.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
import time
from typing import Any, Dict, List, NamedTuple, Optional

from ..._ids import random_hex

__all__ = [
    "ARENA_SIZE",
    "ARENA_SLOTS",
    "CLAIMING",
    "PARENT_SLOTS",
    "SLOT_SIZE",
    "STATUS_CAPACITY",
    "Arena",
    "ControlBlock",
    "ProgressSnapshot",
    "linked_blocks",
]

SLOT_SIZE = 4096  # one page: no two instances ever share one
#: Slots per worker: the running instance's, and those of instances whose end the
#: parent is still delivering while the worker starts the next one; the first
#: PARENT_SLOTS for jobs the parent writes, the rest for jobs the worker claims. A worker
#: ending tiny tasks runs as many ahead of the parent as it has claim slots, then says
#: IDLE and waits for a job written to it (a wake-up each way): with 8 claim slots that
#: was 1 job in 10 of 2,000 tiny tasks on 2 workers, with 24 about 1 in 30. With the lane
#: hint's page, an arena is 132 KiB.
ARENA_SLOTS = 32
PARENT_SLOTS = 8
#: An arena's size: its slots, then a page of words the parent writes for the worker.
ARENA_SIZE = (ARENA_SLOTS + 1) * SLOT_SIZE
#: A claim slot's claim word while its worker reads the lane (see the module docstring).
CLAIMING = 1 << 63
_CLAIM_WORD = 6
_LANE_HINT_WORD = ARENA_SLOTS * SLOT_SIZE // 8  # the first word after the slots
_STATUS_OFFSET = 56
#: The byte of the stop word that holds its 0 or 1 (the word is native-endian).
_STOP_LOW_BYTE = 0 if sys.byteorder == "little" else 7
STATUS_CAPACITY = SLOT_SIZE - _STATUS_OFFSET
_CUT_MARK = "…".encode()  # appended to a status that was cut to fit
_ZEROS = bytes(SLOT_SIZE)
_SLOT_WORDS = SLOT_SIZE // 8

_FLAG_PROGRESS = 1
_FLAG_STATUS = 2
_FLAG_CUT = 4

_NAME_PREFIX = "nt_"  # the fallback's short-lived names (macOS limits names to 31 characters)
_MAX_READ_ATTEMPTS = 10_000  # a worker killed mid-write leaves seq odd forever

# Names this process created and has not removed yet: only the fallback makes any, for
# the microseconds between creating a segment and removing its name (what a leak check
# looks at, since /dev/shm is shared with every other process on the machine).
_linked: set[str] = set()
_linked_lock = threading.Lock()


def linked_blocks() -> frozenset[str]:
    """Names of the shared memory segments this process created and has not removed."""
    with _linked_lock:
        return frozenset(_linked)


class ProgressSnapshot(NamedTuple):
    """One consistent read of what the worker last reported."""

    seq: int
    progress: Optional[float]
    status: Optional[str]
    status_was_cut: bool


#: Python 3.13+ maps without the duplicate descriptor ``mmap`` otherwise keeps open until
#: the mapping is closed.
_NO_DESCRIPTOR_KEPT: Dict[str, Any] = {"trackfd": False} if sys.version_info >= (3, 13) else {}


def _nameless_fd(size: int) -> int:
    """A descriptor of ``size`` bytes of zeroed shared memory that has no name.

    Raises:
        OSError: no descriptor left (EMFILE), or no memory for it (ENOMEM, ENOSPC).
    """
    memfd_create = getattr(os, "memfd_create", None)
    fd = -1
    if memfd_create is not None:
        try:
            fd = int(memfd_create("numerous-tasks-arena", os.MFD_CLOEXEC))
        except OSError as exc:
            if exc.errno not in (38, 1):  # ENOSYS, EPERM (seccomp): the fallback below
                raise
    if fd < 0:
        fd = _opened_and_unlinked()
    try:
        # Reachable by its descriptor alone (or /proc/<pid>/fd, which only the same user
        # may open); a memfd is made 0777, so make it the user's alone anyway.
        os.fchmod(fd, 0o600)
        # Allocated now (this also sets the size): touching a page of a full tmpfs later
        # would be a SIGBUS; here it is an OSError.
        os.posix_fallocate(fd, 0, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _opened_and_unlinked() -> int:
    """Where there is no memfd: a POSIX segment whose name is removed at once."""
    import _posixshmem

    name = _NAME_PREFIX + random_hex(12)
    with _linked_lock:
        _linked.add(name)
    try:
        fd = int(_posixshmem.shm_open("/" + name, os.O_RDWR | os.O_CREAT | os.O_EXCL, mode=0o600))
    except BaseException:
        with _linked_lock:
            _linked.discard(name)
        raise
    try:
        _posixshmem.shm_unlink("/" + name)
    except FileNotFoundError:
        pass
    except BaseException:  # the name stays, and stays on the list a leak check reads
        os.close(fd)
        raise
    with _linked_lock:
        _linked.discard(name)
    return fd


class Arena:
    """A worker's control blocks: :data:`ARENA_SLOTS` pages of nameless shared memory
    (and a page of words for the worker: the lane hint).

    The parent makes it with :meth:`create` (before spawning the worker, which inherits
    :attr:`fd`), hands out slots with :meth:`take` and :meth:`give_back`, and lets it go
    with :meth:`retire` once the worker is reaped; the worker maps it with :meth:`attach`.
    Slots are taken and given back on any thread (callers take warm workers directly).
    """

    def __init__(self, fd: int, owner: bool) -> None:
        self.fd = fd
        self._mmap = mmap.mmap(fd, ARENA_SIZE, **_NO_DESCRIPTOR_KEPT)
        self._buf = memoryview(self._mmap)
        self._free: List[int] = list(range(PARENT_SLOTS - 1, -1, -1)) if owner else []
        self._words = self._buf.cast("Q")  # every slot's header words, and the lane hint
        self._lock = threading.Lock()
        self._in_use = 0
        self._retired = False

    @classmethod
    def create(cls) -> Arena:
        """Make a zeroed, nameless arena; its descriptor stays open (see :meth:`close_fd`).

        Raises:
            OSError: no descriptor left (EMFILE), or no memory for it (ENOMEM, ENOSPC);
                nothing is left behind.
        """
        fd = _nameless_fd(ARENA_SIZE)
        try:
            return cls(fd, owner=True)
        except BaseException:
            os.close(fd)
            raise

    @classmethod
    def attach(cls, fd: int) -> Arena:
        """Map the arena a worker inherited as ``fd`` (and close that descriptor)."""
        try:
            return cls(fd, owner=False)
        finally:
            os.close(fd)

    def close_fd(self) -> None:
        """Close the parent's descriptor once the worker has inherited it (the mapping stays)."""
        fd, self.fd = self.fd, -1
        if fd >= 0:
            os.close(fd)

    def take(self) -> Optional[ControlBlock]:
        """A free slot, zeroed, as a control block; None if every slot is in use."""
        with self._lock:
            if not self._free or self._retired:
                return None
            slot = self._free.pop()
            self._in_use += 1
        offset = slot * SLOT_SIZE
        self._buf[offset : offset + SLOT_SIZE] = _ZEROS
        return ControlBlock(self._buf[offset : offset + SLOT_SIZE], slot, self)

    def block(self, slot: int) -> ControlBlock:
        """The control block in ``slot`` (worker side: the parent chose and zeroed it)."""
        offset = slot * SLOT_SIZE
        return ControlBlock(self._buf[offset : offset + SLOT_SIZE], slot, None)

    def give_back(self, slot: int) -> None:
        """Return a slot taken with :meth:`take`, or a claim slot adopted with
        :meth:`claimed_block` (its block's views are released)."""
        with self._lock:
            if slot < PARENT_SLOTS:
                self._free.append(slot)
            else:  # the worker may claim into it again
                self._words[slot * _SLOT_WORDS + _CLAIM_WORD] = 0
            self._in_use -= 1
            close = self._retired and not self._in_use
        if close:
            self._close()

    # -- claim slots ------------------------------------------------------------------------
    def claimed_block(self, slot: int) -> ControlBlock:
        """Parent side: the claim slot ``slot``, into which the worker claimed a job, as
        that job's control block (given back like any other)."""
        with self._lock:
            self._in_use += 1
        offset = slot * SLOT_SIZE
        return ControlBlock(self._buf[offset : offset + SLOT_SIZE], slot, self)

    def claim_words(self) -> List[int]:
        """Parent side: the claim word of every claim slot, in slot order."""
        words = self._words
        return [words[slot * _SLOT_WORDS + _CLAIM_WORD] for slot in range(PARENT_SLOTS, ARENA_SLOTS)]

    def begin_claim(self) -> Optional[int]:
        """Worker side: a free claim slot, marked :data:`CLAIMING`; None if the parent
        still reads every one."""
        words = self._words
        for slot in range(PARENT_SLOTS, ARENA_SLOTS):
            if words[slot * _SLOT_WORDS + _CLAIM_WORD] == 0:
                words[slot * _SLOT_WORDS + _CLAIM_WORD] = CLAIMING
                return slot
        return None

    def end_claim(self, slot: int, number: Optional[int]) -> None:
        """Worker side: the lane gave the job numbered ``number`` (the slot is zeroed for
        it and its claim word becomes ``number + 1``), or nothing (None: the slot is
        free again)."""
        if number is None:
            self._words[slot * _SLOT_WORDS + _CLAIM_WORD] = 0
            return
        offset, claim = slot * SLOT_SIZE, _CLAIM_WORD * 8
        # Zeroed around the claim word, which says CLAIMING throughout (never 0: the
        # parent would take the slot for free and the job for lost).
        self._buf[offset : offset + claim] = _ZEROS[:claim]
        self._buf[offset + claim + 8 : offset + SLOT_SIZE] = _ZEROS[claim + 8 :]
        self._words[slot * _SLOT_WORDS + _CLAIM_WORD] = number + 1

    # -- the lane hint ----------------------------------------------------------------------
    def set_lane_hint(self, may_hold_jobs: bool) -> None:
        """Parent side: whether the lane may hold jobs now (see the module docstring);
        an arena already unmapped (its worker is gone) is left be."""
        try:
            self._words[_LANE_HINT_WORD] = 1 if may_hold_jobs else 0
        except ValueError:
            pass

    @property
    def lane_may_hold_jobs(self) -> bool:
        """Worker side: whether the parent said the lane may hold jobs."""
        return self._words[_LANE_HINT_WORD] != 0

    def retire(self) -> None:
        """The worker is gone: unmap once the last slot in use is given back."""
        with self._lock:
            self._retired = True
            close = not self._in_use
        self.close_fd()
        if close:
            self._close()

    def _close(self) -> None:
        self._words.release()
        self._buf.release()
        self._mmap.close()


class ControlBlock:
    """One instance's slot; see the module docstring for the layout."""

    def __init__(self, buf: memoryview, slot: int, arena: Optional[Arena]) -> None:
        self.slot = slot
        self._arena = arena  # the parent's: the slot goes back to it on close()
        self._buf = buf
        self._words: memoryview = buf[:_STATUS_OFFSET].cast("Q")
        self._doubles = buf[:_STATUS_OFFSET].cast("d")
        self._closed = False
        # Worker-side state: what the last write said, to fill the other field.
        self._progress = 0.0
        self._status = b""
        self._status_text: Optional[str] = None
        self._status_dirty = False
        self._flags = 0

    def close(self) -> None:
        """Release the views (a kept reference then raises ValueError) and, on the
        parent's side, give the slot back; idempotent. Call after the last read."""
        if self._closed:
            return
        self._closed = True
        self._words.release()
        self._doubles.release()
        self._buf.release()
        if self._arena is not None:
            self._arena.give_back(self.slot)

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

    def stop_flag_view(self) -> memoryview[bool]:
        """A one-item ``bool`` view of the stop flag's low byte, for the fastest possible
        polling: ``view[0]`` is already True or False, no comparison needed."""
        return self._buf[_STOP_LOW_BYTE : _STOP_LOW_BYTE + 1].cast("?")

    # -- progress and status (worker writes, parent reads) ------------------------------
    def write_progress(self, progress: float, status: Optional[str]) -> None:
        """Record a progress value and, when not None, a new status."""
        self._progress = progress
        self._flags |= _FLAG_PROGRESS
        if status is not None and status != self._status_text:
            self._set_status(status)
        self._write()

    def write_status(self, status: str) -> None:
        """Record a new status text."""
        if status != self._status_text:
            self._set_status(status)
        self._write()

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

    def _write(self) -> None:
        words = self._words
        seq = words[1]
        words[1] = seq + 1  # odd: readers retry
        self._doubles[2] = self._progress
        data = self._status
        words[3] = len(data) | self._flags << 32
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
            length, flags = meta & 0xFFFFFFFF, (meta >> 32) & 0xFF
            data = bytes(buf[_STATUS_OFFSET : _STATUS_OFFSET + min(length, STATUS_CAPACITY)])
            if words[1] == before:
                return ProgressSnapshot(
                    seq=before,
                    progress=progress if flags & _FLAG_PROGRESS else None,
                    status=data.decode("utf-8", "surrogatepass") if flags & _FLAG_STATUS else None,
                    status_was_cut=bool(flags & _FLAG_CUT),
                )
        return None

    # -- when the worker took the job and began its body (worker writes) ---------------
    def mark_taken(self) -> None:
        """Record that the worker has taken the job (before loading its arguments)."""
        self._words[5] = time.monotonic_ns()

    @property
    def taken(self) -> bool:
        """Whether the worker took the job (False: it never began it)."""
        try:
            return self._words[5] != 0
        except ValueError:  # closed
            return True

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
