"""What a test may leave behind: child processes, ``/dev/shm`` blocks, fds, threads.

Take a :func:`take_snapshot` before, and ask :meth:`ResourceSnapshot.leaks_since`
after: it names what is new, and cleans it up (kills the processes, unlinks the
blocks) so that one leaking test does not fail every test after it. Only this
process's own resources are looked at, so parallel test runs (tox envs, pytest-xdist
workers) never see each other's.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Collection, Dict, FrozenSet, List

__all__ = ["CHECKS", "ResourceSnapshot", "take_snapshot"]

#: Every kind of leak :meth:`ResourceSnapshot.leaks_since` can look for.
CHECKS = ("children", "shm", "fds", "threads")
_SHM_DIR = "/dev/shm"
#: Seconds to wait for a leaked child process to die after SIGKILL (microseconds, normally).
KILL_WAIT = 5.0
#: Library threads that live as long as the process by design (one spawner thread,
#: from which every worker is spawned, see the local backend's ``_spawn``).
PROCESS_LIFETIME_THREADS = frozenset({"numerous-spawner"})


def _children() -> FrozenSet[int]:
    import psutil

    try:
        return frozenset(p.pid for p in psutil.Process().children(recursive=True) if p.is_running())
    except psutil.Error:
        return frozenset()


def _shm_blocks() -> FrozenSet[str]:
    """Control blocks this process created that are still in /dev/shm."""
    from ..backends.local import shared_memory_names

    names = shared_memory_names()
    if not names or not os.path.isdir(_SHM_DIR):
        return frozenset()
    return frozenset(os.listdir(_SHM_DIR)) & names


def _fds() -> FrozenSet[int]:
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            listed = [int(fd) for fd in os.listdir(directory)]
        except OSError:
            continue
        # The listing includes the descriptor listdir itself had open, closed by now.
        return frozenset(fd for fd in listed if _is_open(fd))
    return frozenset()


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _threads() -> Dict[int, str]:
    return {
        t.ident: t.name
        for t in threading.enumerate()
        if t.ident is not None and t.name.startswith("numerous-") and t.name not in PROCESS_LIFETIME_THREADS
    }


def _describe_fd(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return "?"


@dataclass(frozen=True)
class ResourceSnapshot:
    """This process's child processes, control blocks, fds and library threads."""

    children: FrozenSet[int] = field(default_factory=frozenset)
    shm_blocks: FrozenSet[str] = field(default_factory=frozenset)
    fds: FrozenSet[int] = field(default_factory=frozenset)
    threads: FrozenSet[int] = field(default_factory=frozenset)

    def leaks_since(self, checks: Collection[str] = CHECKS, clean_up: bool = True) -> List[str]:
        """One line per kind of leak found now that was not there at the snapshot.

        Args:
            checks: which of :data:`CHECKS` to look at.
            clean_up: kill leaked processes and unlink leaked blocks (fds and threads
                cannot be taken back safely, and are only reported).
        """
        problems: List[str] = []
        if "children" in checks:
            problems += _leaked_children(self.children, clean_up)
        if "shm" in checks:
            blocks = sorted(_shm_blocks() - self.shm_blocks)
            if blocks:
                problems.append(f"/dev/shm blocks left behind: {blocks}")
                if clean_up:
                    for name in blocks:
                        try:
                            os.unlink(os.path.join(_SHM_DIR, name))
                        except OSError:
                            pass
        if "fds" in checks:
            fds = sorted(_fds() - self.fds)
            if fds:
                problems.append(
                    f"file descriptors left open: {{{', '.join(f'{fd}: {_describe_fd(fd)!r}' for fd in fds)}}}"
                )
        if "threads" in checks:
            threads = sorted(name for ident, name in _threads().items() if ident not in self.threads)
            if threads:
                problems.append(f"library threads still running: {threads}")
        return problems


def _leaked_children(before: FrozenSet[int], clean_up: bool) -> List[str]:
    import psutil

    leaked = []
    for pid in sorted(_children() - before):
        try:
            process = psutil.Process(pid)
            leaked.append(_describe_process(process))
            if clean_up:
                process.kill()
                # Reap it (when it is our own child): a killed child left unreaped would
                # be a zombie, re-parented to whichever subreaper is above us.
                process.wait(KILL_WAIT)
        except psutil.TimeoutExpired:
            pass
        except psutil.Error:  # gone meanwhile: not a leak after all
            pass
    return [f"child processes left running: {leaked}"] if leaked else []


def _describe_process(process: Any) -> str:
    """``pid (name) status, parent ppid: command line`` (cut to 200 characters), as far
    as the process still tells (a zombie has no command line)."""
    import psutil

    text = f"{process.pid} ({process.name()})"
    try:
        text += f" {process.status()}, parent {process.ppid()}"
        return text + f": {' '.join(process.cmdline())[:200]}"
    except psutil.Error:
        return text


def take_snapshot() -> ResourceSnapshot:
    """What this process holds now (see :meth:`ResourceSnapshot.leaks_since`)."""
    return ResourceSnapshot(_children(), _shm_blocks(), _fds(), frozenset(_threads()))
