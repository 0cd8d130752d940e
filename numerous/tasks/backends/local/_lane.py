"""The lane: jobs queued ahead for busy workers, each taken by exactly one of them.

Without it a worker that finishes a job waits a whole parent round trip for the next
one: its result must reach the dispatcher, which frees the instance's slot and writes
the next job. With it, while the workers of a session run instances of one task, the
dispatcher queues the next instances that would run anyway when one of those ends (the
session picks them: first come first served, ``max_parallel`` and ``max_workers`` as
ever, see ``Slots.reserve``). A worker that ends such an instance takes the next one
from the lane at once and says so (``CLAIMED``) in the same write as the result it
sends: the instance it ends hands its slot to the one it takes, so no count changes.

The lane is one pipe in *packet mode* (Linux ``O_DIRECT`` pipes): each write of up to a
page is one packet and each read takes one whole packet, so a job goes to
exactly one reader, in the order written. Every worker inherits the read end; the
parent keeps one too, to take back (``revoke``) what no worker has taken yet — a
cancelled instance, or every queued one when a slot comes free some other way (the
queued instances are the first in line for it). ::

    dispatcher                                   worker (after a lane job)
    ----------                                   ------
    put(H) ── packet [number | JOB] ──▶ lane ──▶ free claim slot? mark it CLAIMING,
                                                 read one packet (none: say IDLE),
                                                 write the number into the slot,
    claimed(number) ◀── RESULT(J), CLAIMED ──── send J's result and the claim at once,
    J hands its slot to H                       run H in the claimed slot

A worker killed between reading a packet and sending the claim has taken a job nobody
will hear of: its arena's claim slots say so (``reconcile``).

Each reader's arena also shows the **lane hint**: up (before the write) while the lane
may hold jobs, down once every job queued was claimed or taken back. A worker reads the
lane only while it is up, so a lone round trip costs no read of an empty lane. A hint
seen down just as jobs were queued sends the worker IDLE, and the dispatcher hands it
the first one (as for any worker that went idle then).

Every packet is exactly one page (a header, the job, zeros): the kernel fills one page
per packet and never merges packets, so a write of several pages queues a whole batch
(one system call, one handover of the GIL) and each read of a page still takes one job
(a shorter read would lose the rest of its packet). A job with larger
arguments is not queued ahead. Where there are no packet-mode pipes, there is no lane
and every job goes as before.
"""

from __future__ import annotations

import mmap
import os
import struct
import threading
from typing import Callable, Dict, Generic, List, Optional, Tuple, TypeVar

from ._shm import CLAIMING, Arena

__all__ = ["Lane", "LaneEntry", "open_lane", "read_packet"]

_HEADER = struct.Struct("<QI")  # the job's lane number, its body's length
#: Every packet's size: the kernel splits a write into packets of a page, each read whole.
PACKET_SIZE = mmap.PAGESIZE
#: The largest JOB body a packet carries.
MAX_BODY = PACKET_SIZE - _HEADER.size
#: Packets the lane asks room for: one page of the pipe each (a pipe has 16 unless made
#: larger, which open_lane asks for).
MAX_QUEUED = 64
_F_SETPIPE_SZ = 1031  # Linux
_F_GETPIPE_SZ = 1032
_PADDING = bytes(PACKET_SIZE)

E = TypeVar("E")


class LaneEntry(Generic[E]):
    """A job in the lane: the execution, and the working directory and import path it
    was sent with (the worker that takes it has those afterwards)."""

    __slots__ = ("cwd", "execution", "sys_path")

    def __init__(self, execution: E, cwd: str, sys_path: List[str]) -> None:
        self.execution = execution
        self.cwd = cwd
        self.sys_path = sys_path


def open_lane() -> Optional[Tuple[int, int]]:
    """A packet-mode pipe (read end, write end), both non-blocking and not inherited
    (the read end is passed to each worker explicitly); None where there is none. Its
    room is :func:`capacity` packets."""
    pipe2, direct = getattr(os, "pipe2", None), getattr(os, "O_DIRECT", None)
    if pipe2 is None or direct is None:
        return None
    try:
        read_end, write_end = pipe2(direct | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:  # a kernel older than 3.4, or a filesystem that refuses
        return None
    try:
        import fcntl

        fcntl.fcntl(write_end, _F_SETPIPE_SZ, MAX_QUEUED * PACKET_SIZE)
    except (ImportError, OSError):  # over the user's pipe-buffer limit: 16 packets then
        pass
    return read_end, write_end


def capacity(write_end: int) -> int:
    """How many packets the lane's pipe holds (one page each)."""
    try:
        import fcntl

        return max(1, int(fcntl.fcntl(write_end, _F_GETPIPE_SZ)) // PACKET_SIZE)
    except (ImportError, OSError):
        return 16


def packet(number: int, body: bytes) -> bytes:
    """The packet of job ``number`` (``len(body)`` at most :data:`MAX_BODY`)."""
    return _HEADER.pack(number, len(body)) + body + _PADDING[: MAX_BODY - len(body)]


def read_packet(fd: int) -> Optional[Tuple[int, bytes]]:
    """Take one job from the lane (its number and JOB body), or None if it holds none
    now (or only a piece of a packet, which no write of ours leaves)."""
    try:
        data = os.read(fd, PACKET_SIZE)
    except BlockingIOError:
        return None
    if len(data) != PACKET_SIZE:
        return None
    number, length = _HEADER.unpack_from(data)
    return number, data[_HEADER.size : _HEADER.size + length]


class Lane(Generic[E]):
    """The parent's side of the lane: what is queued, what was claimed, what went missing.

    Every method may be called from any thread (a cancel comes from the caller's).
    Whoever also holds a session's lock takes it first.

    Args:
        read_end: the parent's read end (workers inherit a copy).
        write_end: the write end.
    """

    def __init__(self, read_end: int, write_end: int) -> None:
        self.read_end = read_end
        self._write_end = write_end
        self._capacity = min(MAX_QUEUED, capacity(write_end))
        self._lock = threading.Lock()
        self._next_number = 0
        self._queued: Dict[int, LaneEntry[E]] = {}  # in the pipe, as far as we know; in order
        #: Taken by some worker whose claim we have not read yet (or, after a revoke,
        #: neither in the pipe nor claimed: on their way to being claimed).
        self._taken: Dict[int, LaneEntry[E]] = {}
        self.task: object = None  # the task whose instances it queues (one at a time)
        self._readers: List[Arena] = []  # where the hint is shown (each reader's arena)
        self._hint = False

    def watch(self, arena: Arena) -> None:
        """Show the hint in ``arena`` (a new reader's) from now on."""
        with self._lock:
            self._readers.append(arena)
            arena.set_lane_hint(self._hint)

    def unwatch(self, arena: Arena) -> None:
        """Stop showing the hint in ``arena`` (its reader is gone)."""
        with self._lock:
            if arena in self._readers:
                self._readers.remove(arena)

    def _set_hint(self, hint: bool) -> None:
        """Show ``hint`` in every reader's arena if it changed (lock held): after each
        change to what is queued, ``bool(self._queued)``."""
        if hint != self._hint:
            self._hint = hint
            for arena in self._readers:
                arena.set_lane_hint(hint)

    def __len__(self) -> int:
        return len(self._queued)

    @property
    def idle(self) -> bool:
        """Nothing queued and no claim outstanding: it may queue another task's jobs."""
        return not self._queued and not self._taken

    def close(self) -> None:
        """Close both ends (the dispatcher is done)."""
        for fd in (self.read_end, self._write_end):
            try:
                os.close(fd)
            except OSError:
                pass

    def put(self, jobs: List[Tuple[E, bytes]], cwd: str, sys_path: List[str]) -> int:
        """Queue jobs (each an execution and its JOB body) in one write, in order, as
        many as there is room for and up to the first too large for a packet; how many
        were queued."""
        with self._lock:
            room = self._capacity - len(self._queued)
            packets: List[bytes] = []
            number = self._next_number
            for _, body in jobs[: max(0, room)]:
                if len(body) > MAX_BODY:
                    break
                packets.append(packet(number + len(packets), body))
            if not packets:
                return 0
            self._set_hint(True)  # up before the jobs are there to be read
            try:
                written = os.write(self._write_end, b"".join(packets)) // PACKET_SIZE
            except (BlockingIOError, BrokenPipeError):
                written = 0
            for execution, _ in jobs[:written]:
                self._queued[number] = LaneEntry(execution, cwd, sys_path)
                number += 1
            self._next_number = number
            self._set_hint(bool(self._queued))
            return written

    def claimed(self, number: int) -> Optional[LaneEntry[E]]:
        """A worker says it took job ``number``: its entry (None if unknown)."""
        with self._lock:
            entry = self._queued.pop(number, None)
            if entry is None:
                entry = self._taken.pop(number, None)
            self._set_hint(bool(self._queued))
            return entry

    def _drain(self) -> List[Tuple[int, bytes]]:
        """Read every packet in the pipe, in order (call with the lock held)."""
        packets: List[Tuple[int, bytes]] = []
        while True:
            taken = read_packet(self.read_end)
            if taken is None:
                return packets
            packets.append(taken)

    def take_first(self) -> Optional[LaneEntry[E]]:
        """Take the first job no worker has taken (for a worker that went idle just
        before it was queued); None if there is none."""
        with self._lock:
            taken = read_packet(self.read_end)
            entry = None if taken is None else self._queued.pop(taken[0], None)
            self._set_hint(bool(self._queued))
            return entry

    def revoke(self) -> List[E]:
        """Take back every job no worker has taken yet, in queue order; the others are
        taken, and their claims on the way."""
        with self._lock:
            numbers = [number for number, _ in self._drain()]
            revoked = [self._queued.pop(number).execution for number in numbers if number in self._queued]
            self._taken.update(self._queued)  # not in the pipe any more: a worker has them
            self._queued = {}
            self._set_hint(bool(self._queued))
            return revoked

    def reconcile(self, claim_words: Callable[[], List[int]]) -> Optional[List[E]]:
        """After a worker that could read the lane died (its last frames handled): the
        jobs it took and never claimed, which never started. ``claim_words`` reads the
        claim word of every claim slot of every *live* worker that reads the lane; it is
        called after the pipe was looked at, so that a job missing from the pipe is
        either named there, still being claimed (:data:`CLAIMING`), or the dead one's.

        None: it cannot be told yet (a live worker is between reading a packet and
        writing down which); ask again shortly.
        """
        with self._lock:
            still_queued = self._drain()
            if still_queued:  # back, in the same order, in one write
                os.write(self._write_end, b"".join(packet(number, body) for number, body in still_queued))
            still = {number for number, _ in still_queued}
            for number in [n for n in self._queued if n not in still]:
                self._taken[number] = self._queued.pop(number)
            self._set_hint(bool(self._queued))  # up all along while some are back in the pipe
            if not self._taken:
                return []
            words = claim_words()
            if CLAIMING in words:
                return None
            named = {word - 1 for word in words if word}
            lost = [number for number in self._taken if number not in named]
            return [self._taken.pop(number).execution for number in lost]
