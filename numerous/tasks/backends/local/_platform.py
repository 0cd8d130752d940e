"""Operating-system plumbing, each difference behind one small function.

* :func:`set_parent_death_signal` — Linux ``PR_SET_PDEATHSIG``; a no-op elsewhere (the
  worker's watchdog covers every platform).
* :func:`open_exit_handle` — a file descriptor that becomes readable when a child exits
  (Linux ``pidfd_open``), or None where there is none; the dispatcher then polls.
* :func:`signal_process_tree` — signal a worker and every process it started.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from typing import List, Optional

__all__ = ["set_parent_death_signal", "open_exit_handle", "snapshot_tree", "signal_process_tree"]

_PR_SET_PDEATHSIG = 1


def set_parent_death_signal(signum: int) -> bool:
    """Ask the kernel to send ``signum`` to this process when its parent thread exits.

    Returns True where supported. Note the kernel ties this to the *thread* that
    spawned us, which is why the parent spawns from one long-lived thread.
    """
    if not os.uname().sysname == "Linux":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def open_exit_handle(pid: int) -> Optional[int]:
    """A descriptor readable once process ``pid`` (our own child) has exited, or None."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        return int(pidfd_open(pid))
    except OSError:  # kernel older than 5.3, or seccomp forbids it
        return None


def snapshot_tree(pid: int) -> List["psutil.Process"]:  # type: ignore[name-defined]  # noqa: F821
    """The descendants of ``pid`` now, as psutil handles that detect pid reuse."""
    import psutil

    try:
        return list(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def signal_process_tree(pid: int, signum: int, descendants: List["psutil.Process"]) -> None:  # type: ignore[name-defined]  # noqa: F821
    """Send ``signum`` to the worker ``pid``, its process group and ``descendants``.

    ``pid`` must be an unreaped child of ours, so it cannot have been reused. The worker
    leads its own process group; descendants that left the group are reached through
    the psutil handles, which refuse to signal a process whose pid was reused.
    """
    import psutil

    for target in (lambda: os.killpg(pid, signum), lambda: os.kill(pid, signum)):
        try:
            target()
        except (ProcessLookupError, PermissionError):
            pass
    for process in descendants:
        try:
            process.send_signal(signum)
        except psutil.Error:
            pass
