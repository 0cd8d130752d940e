"""The dispatcher thread: one per local backend, waiting on every worker at once.

It multiplexes, in one ``selectors`` set: each worker's result pipe, each worker's exit
handle (a pidfd: readable the moment the worker dies, whoever still holds its pipe),
and a wake-up pipe that other threads use to hand it work. Between events it polls the
control blocks for progress, and it enforces stop deadlines. Every handler call and
every future resolution of the local backend happens here, so each instance's records
reach the handler in order and before its future resolves.
"""

from __future__ import annotations

import collections
import logging
import os
import selectors
import threading
import time
from typing import Any, Callable, Deque, Dict, Optional, Tuple

from ._execution import Execution
from ._platform import group_has_members, reap_orphans

logger = logging.getLogger("numerous.tasks")

#: Seconds between progress polls of running instances: faster than a person can
#: read a progress bar, and cheap (one 8-byte read per instance when nothing changed).
PROGRESS_POLL_INTERVAL = 0.05
#: How long to keep reaping what a finished worker's tree left behind: killed
#: processes die in microseconds, but reach us only once their own parent is gone.
ORPHAN_REAP_WINDOW = 2.0
_ORPHAN_POLL_INTERVAL = 0.01


class Dispatcher:
    """Owns the executions of one backend once they are launched."""

    def __init__(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._inbox: Deque[Callable[[], None]] = collections.deque()
        self._live: Dict[int, Execution] = {}  # by worker pid
        # Process groups of finished workers whose members we still reap: group id ->
        # (wall time the worker was reaped, monotonic time we give up).
        self._orphan_groups: Dict[int, Tuple[float, float]] = {}
        self._killed: Dict[int, Any] = {}  # psutil handles of terminated trees
        self._reap_until = 0.0
        self._closing = False
        self._thread = threading.Thread(target=self._run, name="numerous-dispatcher", daemon=True)
        self._thread.start()

    # -- called from other threads -------------------------------------------------------
    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the dispatcher thread."""
        self._inbox.append(fn)
        self.wake()

    def wake(self) -> None:
        """Make the dispatcher look at its inbox and deadlines now."""
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:  # the pipe is full of wake-ups already
            pass

    def close(self) -> None:
        """Stop the thread once no execution is live, and release its descriptors."""
        self.call_soon(self._begin_closing)
        self._thread.join()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- on the dispatcher thread --------------------------------------------------------
    def register(self, execution: Execution) -> None:
        """Start watching a launched execution."""
        worker = execution.worker
        assert worker is not None and execution.reader is not None
        self._live[worker.pid] = execution
        self._orphan_groups.pop(worker.pid, None)  # the number is free again, so unused
        execution.running(time.monotonic())
        self._selector.register(
            worker.result_fd, selectors.EVENT_READ, lambda: self._on_readable(execution)
        )
        if worker.exit_handle is not None:
            self._selector.register(
                worker.exit_handle, selectors.EVENT_READ, lambda: self._finish(execution)
            )

    def _on_readable(self, execution: Execution) -> None:
        execution.handle_frames()
        assert execution.reader is not None and execution.worker is not None
        if execution.reader.eof:  # stop watching a closed pipe; the exit handle decides
            self._selector.unregister(execution.worker.result_fd)

    def _begin_closing(self) -> None:
        self._closing = True

    def _finish(self, execution: Execution) -> None:
        worker = execution.worker
        assert worker is not None
        del self._live[worker.pid]
        assert execution.reader is not None
        if not execution.reader.eof:
            self._selector.unregister(worker.result_fd)
        if worker.exit_handle is not None:
            self._selector.unregister(worker.exit_handle)
        execution.finish()
        now = time.monotonic()
        if group_has_members(worker.pid):
            self._orphan_groups[worker.pid] = (time.time(), now + ORPHAN_REAP_WINDOW)
        if execution.descendants:
            self._killed.update((p.pid, p) for p in execution.descendants)
            self._reap_until = now + ORPHAN_REAP_WINDOW

    def _reap(self, now: float) -> None:
        groups = {group: reaped_at for group, (reaped_at, _) in self._orphan_groups.items()}
        reap_orphans(groups, self._killed)
        for group, (_, give_up) in list(self._orphan_groups.items()):
            if now >= give_up or not group_has_members(group):
                del self._orphan_groups[group]
        if now >= self._reap_until:
            self._killed.clear()

    def _timeout(self) -> Optional[float]:
        if self._orphan_groups or self._killed:
            return _ORPHAN_POLL_INTERVAL
        if not self._live:
            return None
        now = time.monotonic()
        deadline = min(execution.next_deadline() for execution in self._live.values())
        return max(0.0, min(PROGRESS_POLL_INTERVAL, deadline - now))

    def _run(self) -> None:
        while not (self._closing and not self._live and not self._orphan_groups and not self._killed):
            for key, _ in self._selector.select(self._timeout()):
                if key.data is None:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                else:
                    self._guarded(key.data)
            while self._inbox:
                self._guarded(self._inbox.popleft())
            now = time.monotonic()
            if self._orphan_groups or self._killed:
                self._guarded(lambda: self._reap(now))
            for execution in list(self._live.values()):
                execution.deliver_progress()
                execution.escalate(now)
                worker = execution.worker
                if worker is not None and worker.exit_handle is None and worker.popen.poll() is not None:
                    self._guarded(lambda: self._finish(execution))  # no pidfd: polled

    @staticmethod
    def _guarded(fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception:  # the dispatcher must outlive any one instance's trouble
            logger.exception("numerous.tasks dispatcher: unexpected error")
