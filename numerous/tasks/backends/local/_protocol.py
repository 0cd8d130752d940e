"""The pipe protocol between the parent and one worker.

Each direction is a plain ``os.pipe``. A message is a frame::

    +----------------+------+----------------------+
    | length (u64 LE)| kind | body (length bytes)  |
    +----------------+------+----------------------+

Parent → worker: a ``JOB`` frame (the instance to run), or ``EXIT`` (leave now).
Worker → parent, per job: any number of ``LOGS`` batches, exactly one ``RESULT`` or
``ERROR``, and then ``IDLE`` if the worker is clean and waits for another job (else it
exits), or ``CLAIMED`` if it took its next job from the lane (see ``_lane``): the frames
after it are that job's. When the body started is written into the control block, not sent: a message
would wake the parent once more per job.

The worker writes with blocking writes. The parent reads with non-blocking reads through
:class:`FrameReader`, so one dispatcher thread serves every worker: a large result is
read in pieces as it arrives, interleaved with the other workers' traffic, and a worker
that dies half-way through a frame never blocks the parent.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

from ..._lifecycle import messages

__all__ = [
    "CLAIMED",
    "ERROR",
    "EXIT",
    "IDLE",
    "JOB",
    "LOGS",
    "OUTCOME_FRAMES",
    "OUTCOME_KINDS",
    "RESULT",
    "BlockingFrameReader",
    "FrameReader",
    "JobMessage",
    "SentEnvironment",
    "job_message",
    "write_frame",
    "write_frames",
]

JOB = b"J"
EXIT = b"X"
LOGS = b"L"
RESULT = b"R"
ERROR = b"E"
IDLE = b"I"
CLAIMED = b"C"
#: A CLAIMED body: the lane number of the job taken and the claim slot it runs in.
CLAIM = struct.Struct("<QI")
#: The frame kinds an instance's outcome travels in, and the outcome kind of each.
OUTCOME_KINDS: Dict[bytes, str] = {RESULT: messages.RESULT, ERROR: messages.ERROR}
OUTCOME_FRAMES: Dict[str, bytes] = {kind: frame for frame, kind in OUTCOME_KINDS.items()}


class JobMessage(NamedTuple):
    """What a JOB frame carries: one instance for the worker to run."""

    instance_id: str
    slot: int  # its control block: the slot of the worker's arena
    payload: bytes  # the pickled (task, args, kwargs)
    # The parent's working directory and import path as they were at launch; None: as
    # for the worker's previous job (they are sent when they changed).
    cwd: Optional[str]
    sys_path: Optional[List[str]]
    reusable: bool  # the worker may run another job after this one
    attempt: int = 1  # which run of the instance (retries), for its TaskControl
    #: After this job, the worker takes its next one from the lane if one is there.
    lane: bool = False

    def encode(self) -> bytes:
        """The JOB frame's body."""
        return pickle.dumps(tuple(self), protocol=pickle.HIGHEST_PROTOCOL)

    @classmethod
    def decode(cls, body: bytes) -> JobMessage:
        """A JOB frame's body, read back (a plain tuple travels: nothing to import)."""
        fields: Tuple[Any, ...] = pickle.loads(body)
        return cls(*fields)


class SentEnvironment:
    """The working directory and import path a worker was last sent (the parent's side)."""

    __slots__ = ("cwd", "sys_path")

    def __init__(self) -> None:
        self.cwd: Optional[str] = None
        self.sys_path: Optional[List[str]] = None

    def set(self, cwd: str, sys_path: List[str]) -> None:
        """The worker was sent these (in a job it took from the lane)."""
        self.cwd, self.sys_path = cwd, sys_path

    def changes(self) -> Tuple[Optional[str], Optional[List[str]]]:
        """This process's working directory and import path, each None if it is what the
        worker was last sent; what is returned counts as sent from here on."""
        cwd: Optional[str] = os.getcwd()
        if cwd == self.cwd:
            cwd = None
        else:
            self.cwd = cwd
        if sys.path == self.sys_path:
            return cwd, None
        self.sys_path = list(sys.path)
        return cwd, self.sys_path


def job_message(
    instance_id: str, slot: int, payload: bytes, reusable: bool, attempt: int, sent: SentEnvironment, lane: bool
) -> JobMessage:
    """A job as the parent sends it now, with the directory and import path that changed
    since ``sent`` (the worker's last job)."""
    cwd, sys_path = sent.changes()
    return JobMessage(instance_id, slot, payload, cwd, sys_path, reusable, attempt, lane)


_HEADER = struct.Struct("<Qc")
#: A frame as the parent receives it: its kind and body (a large body stays the
#: bytearray it was read into; pickle reads either).
ReceivedFrame = Tuple[bytes, Union[bytes, bytearray]]
_CHUNK = 1 << 18  # read size for small frames
_DIRECT_READ_THRESHOLD = 1 << 20  # larger bodies are read straight into their buffer


def write_frame(fd: int, kind: bytes, body: bytes) -> None:
    """Write one frame, blocking until all of it is in the pipe.

    Raises:
        BrokenPipeError: the reader has gone.
    """
    write_frames(fd, [(kind, body)])


def write_frames(fd: int, frames: List[Tuple[bytes, bytes]]) -> None:
    """Write frames in order; small ones together in one write, so the reader wakes once."""
    pending = b""
    for kind, body in frames:
        header = _HEADER.pack(len(body), kind)
        if len(body) < _CHUNK:
            pending += header + body
        else:  # no concatenated copy of a large body
            _write_all(fd, pending + header)
            _write_all(fd, body)
            pending = b""
    if pending:
        _write_all(fd, pending)


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)  # a blocking write takes all of a small one at once
    if written == len(data):
        return
    view = memoryview(data)[written:]
    while view:
        written = os.write(fd, view)
        view = view[written:]


class BlockingFrameReader:
    """Reads whole frames with blocking reads (the worker's side), as many bytes at a
    time as the pipe holds: a frame and its header usually arrive in one read."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._staged = bytearray()
        self._landing = _Landing()

    def read_frame(self) -> Tuple[bytes, bytes]:
        """The next whole frame.

        Raises:
            EOFError: the pipe closed before a whole frame arrived.
        """
        staged = self._staged
        while len(staged) < _HEADER.size:
            self._read_more(_HEADER.size - len(staged))
        length, kind = _HEADER.unpack_from(staged, 0)
        end = _HEADER.size + length
        while len(staged) < end:
            self._read_more(end - len(staged))
        body = bytes(staged[_HEADER.size : end])
        del staged[:end]
        return kind, body

    def _read_more(self, wanted: int) -> None:
        chunk = self._landing.read(self.fd, wanted)
        if not chunk:
            raise EOFError("the pipe closed in the middle of a frame")
        self._staged += chunk


class _Landing:
    """A buffer that reads land in and are copied out of: ``os.read(fd, 256 KiB)`` would
    allocate (mmap), shrink (mremap) and free (munmap) 256 KiB on every read."""

    def __init__(self) -> None:
        self._view = memoryview(bytearray(_CHUNK))

    def read(self, fd: int, wanted: int = 0) -> memoryview:
        """What one read of ``fd`` returned (at least ``wanted`` bytes asked for), valid
        until the next read; empty at EOF.

        Raises:
            BlockingIOError: a non-blocking ``fd`` holds nothing now.
        """
        view = self._view
        if wanted > len(view):
            view = memoryview(bytearray(wanted))
        return view[: os.readv(fd, [view])]


class FrameReader:
    """Collects frames from a non-blocking pipe, however the bytes arrive."""

    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.eof = False
        self._staged = bytearray()
        self._landing = _Landing()
        self._body: Optional[bytearray] = None  # a large body being read in place
        self._body_kind = b""
        self._body_got = 0

    def read_available(self) -> List[ReceivedFrame]:
        """Read what the pipe holds now and return the frames it completed.

        Sets :attr:`eof` when the writer has closed its end.
        """
        frames: List[ReceivedFrame] = []
        while not self.eof:
            try:
                if self._body is not None:
                    view = memoryview(self._body)[self._body_got :]
                    n = os.readv(self.fd, [view])
                    if n:
                        self._body_got += n
                        if self._body_got == len(self._body):
                            # Handed over as it is (pickle reads a bytearray alike): a
                            # copy of a large body would cost as much as reading it.
                            frames.append((self._body_kind, self._body))
                            self._body = None
                        if n < len(view):  # a pipe gives what it holds: it is empty now
                            break
                        continue
                else:
                    chunk = self._landing.read(self.fd)
                    n = len(chunk)
                    if n:
                        self._staged += chunk
                        self._parse(frames)
                        if n < _CHUNK:  # a pipe gives what it holds: it is empty now
                            break
                        continue
            except BlockingIOError:
                break
            self.eof = True
        return frames

    def _parse(self, frames: List[ReceivedFrame]) -> None:
        staged = self._staged
        pos = 0
        while len(staged) - pos >= _HEADER.size:
            length, kind = _HEADER.unpack_from(staged, pos)
            start = pos + _HEADER.size
            available = len(staged) - start
            if available >= length:
                frames.append((kind, bytes(staged[start : start + length])))
                pos = start + length
            elif length >= _DIRECT_READ_THRESHOLD:
                body = bytearray(length)
                body[:available] = staged[start:]
                self._body, self._body_kind, self._body_got = body, kind, available
                pos = len(staged)
                break
            else:
                break
        del staged[:pos]
