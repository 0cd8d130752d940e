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
from typing import Callable, Deque, Dict, Optional

from ._execution import Execution

logger = logging.getLogger("numerous.tasks")

#: Seconds between progress polls of running instances: faster than a person can
#: read a progress bar, and cheap (one 8-byte read per instance when nothing changed).
PROGRESS_POLL_INTERVAL = 0.05


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

    def _timeout(self) -> Optional[float]:
        if not self._live:
            return None
        timeout = PROGRESS_POLL_INTERVAL
        now = time.monotonic()
        for execution in self._live.values():
            deadline = execution.next_deadline()
            if deadline is not None:
                timeout = min(timeout, max(0.0, deadline - now))
        return timeout

    def _run(self) -> None:
        while not (self._closing and not self._live):
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
