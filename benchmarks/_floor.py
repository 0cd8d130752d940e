"""The machine's floor for a stop, with no library at all: what ``stop()`` → ``result()``
could cost here if everything between the flag and the caller's wake-up took no time.

A helper process (spawned, no threads) spins on one byte of shared memory; the caller
sets the byte and blocks in ``poll()`` on a pipe until the helper, having seen it,
writes one byte. Between samples the caller waits, as the stop figure's caller does
while its task starts, so both pay the same cost of waking a waiting caller.

Run as a script it is that helper (``python _floor.py MAPPED_FILE GO_FD SEEN_FD``).
"""

from __future__ import annotations

import mmap
import os
import select
import subprocess
import sys
import tempfile
import time

_PAGE = 4096


class StopFloor:
    """A spinning helper process and the shared byte that stops its spin."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile()
        self._file.truncate(_PAGE)
        self._shared = mmap.mmap(self._file.fileno(), _PAGE)
        self._go_r, self._go_w = os.pipe()
        self._seen_r, self._seen_w = os.pipe()
        self._poller = select.poll()
        self._poller.register(self._seen_r, select.POLLIN)
        self._helper = subprocess.Popen(
            [sys.executable, __file__, str(self._file.fileno()), str(self._go_r), str(self._seen_w)],
            pass_fds=(self._file.fileno(), self._go_r, self._seen_w),
        )
        os.close(self._go_r)
        os.close(self._seen_w)

    def sample_us(self, wait: float = 0.001) -> float:
        """Start the helper spinning, wait ``wait`` seconds, then time one flag →
        helper sees it → pipe write → ``poll()`` returns, in µs."""
        os.write(self._go_w, b"g")
        time.sleep(wait)
        t0 = time.perf_counter_ns()
        self._shared[0] = 1
        self._poller.poll()
        os.read(self._seen_r, 1)
        return (time.perf_counter_ns() - t0) / 1e3

    def close(self) -> None:
        """End the helper (it exits when its go pipe closes) and free everything."""
        os.close(self._go_w)
        self._helper.wait(timeout=30)
        os.close(self._seen_r)
        self._shared.close()
        self._file.close()


def _helper(mapped_fd: int, go_fd: int, seen_fd: int) -> None:
    shared = mmap.mmap(mapped_fd, _PAGE)
    while os.read(go_fd, 1):
        while not shared[0]:
            pass
        shared[0] = 0
        os.write(seen_fd, b"s")


if __name__ == "__main__":
    _helper(*(int(arg) for arg in sys.argv[1:4]))
