"""Unguessable identifiers, drawn from the operating system's CSPRNG in batches.

Instance ids and control block names are made once per started instance, and each
``os.urandom`` call releases the GIL: in a parent starting thousands of instances the
dispatcher thread then waits for the GIL again on every name. One call per
:data:`BATCH` bytes keeps the names exactly as random (every byte still comes from
``os.urandom``) for a fraction of the switches. A forked child starts a batch of its
own, so it never repeats its parent's names.
"""

from __future__ import annotations

import os
import threading

__all__ = ["random_hex"]

BATCH = 4096

_lock = threading.Lock()
_pool = b""
_offset = 0


def random_hex(nbytes: int) -> str:
    """``nbytes`` fresh random bytes from ``os.urandom``, as ``2 * nbytes`` hex digits."""
    global _pool, _offset
    with _lock:
        if _offset + nbytes > len(_pool):
            _pool, _offset = os.urandom(max(BATCH, nbytes)), 0
        start = _offset
        _offset += nbytes
        return _pool[start:_offset].hex()


def _forget_the_pool() -> None:
    """In a forked child: never hand out the parent's bytes again (a pid check per call
    would be a system call per id)."""
    global _pool, _offset, _lock
    _pool, _offset, _lock = b"", 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_the_pool)
