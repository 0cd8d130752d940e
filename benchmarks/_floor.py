"""The machine's floor for a stop, with no library at all: what ``stop()`` → ``result()``
could cost here if everything between the flag and the caller's wake-up took no time.

A helper process (spawned, no threads) spins on one byte of shared memory; the caller
sets the byte and blocks in ``poll()`` on a pipe until the helper, having seen it,
writes one byte. Before each sample the helper spins for as long as it is asked to while
the caller waits as the stop figure's caller does (in sleeps of 0.2 ms): a stop is
measured after its task has run for some time, and on this project's machine that time
matters. Code that has not run for a while is slow to run again, on both sides (most
likely evicted meanwhile), so the floor of a stop made 50 ms after the task began
is several times that of one made after 1 ms; the stop figure samples both.

With ``value=True`` the helper sends a value instead, the least any Python library must
do on a stop: it pickles its return value into one framed write, and the caller reads
the frame and unpickles the value. The difference between the two floors is what the
least Python on the path costs here, cold (after a spin, after a wait).

Run as a script it is that helper (``python _floor.py MAPPED_FILE GO_FD SEEN_FD VALUE``).
"""

from __future__ import annotations

import mmap
import os
import pickle
import select
import struct
import subprocess
import sys
import tempfile
import time

_PAGE = 4096
_LENGTH = struct.Struct("<Q")  # the value's frame: its length, then its pickle
_WAIT_STEP = 0.0002  # seconds per sleep while the helper spins (the stop figure's wait_for)


class StopFloor:
    """A spinning helper process and the shared byte that stops its spin.

    Args:
        value: the helper sends a pickled return value (framed), which each sample
            reads and unpickles; else one bare byte.
    """

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._file = tempfile.TemporaryFile()
        self._file.truncate(_PAGE)
        self._shared = mmap.mmap(self._file.fileno(), _PAGE)
        self._go_r, self._go_w = os.pipe()
        self._seen_r, self._seen_w = os.pipe()
        self._poller = select.poll()
        self._poller.register(self._seen_r, select.POLLIN)
        self._helper = subprocess.Popen(
            [sys.executable, __file__, str(self._file.fileno()), str(self._go_r), str(self._seen_w), str(int(value))],
            pass_fds=(self._file.fileno(), self._go_r, self._seen_w),
        )
        os.close(self._go_r)
        os.close(self._seen_w)

    def sample_us(self, spin: float = 0.001) -> float:
        """Start the helper spinning, wait ``spin`` seconds (in sleeps of 0.2 ms, as the
        stop figure waits for its task), then time one flag → helper sees it → pipe
        write → ``poll()`` returns (→ the value unpickled), in µs."""
        os.write(self._go_w, b"g")
        until = time.monotonic() + spin
        while time.monotonic() < until:
            time.sleep(_WAIT_STEP)
        t0 = time.perf_counter_ns()
        self._shared[0] = 1
        self._poller.poll()
        if self._value:
            frame = os.read(self._seen_r, 65536)
            (length,) = _LENGTH.unpack_from(frame)
            pickle.loads(frame[_LENGTH.size : _LENGTH.size + length])
        else:
            os.read(self._seen_r, 1)
        return (time.perf_counter_ns() - t0) / 1e3

    def close(self) -> None:
        """End the helper (it exits when its go pipe closes) and free everything."""
        os.close(self._go_w)
        self._helper.wait(timeout=30)
        os.close(self._seen_r)
        self._shared.close()
        self._file.close()


def _helper(mapped_fd: int, go_fd: int, seen_fd: int, value: int) -> None:
    shared = mmap.mmap(mapped_fd, _PAGE)
    while os.read(go_fd, 1):
        while not shared[0]:
            pass
        shared[0] = 0
        if value:
            body = pickle.dumps("stopped", protocol=pickle.HIGHEST_PROTOCOL)
            os.write(seen_fd, _LENGTH.pack(len(body)) + body)
        else:
            os.write(seen_fd, b"s")


if __name__ == "__main__":
    _helper(*(int(arg) for arg in sys.argv[1:5]))
