"""Backends and callables for test_backend_registry.py (module level: workers import
the callables by reference, and the fake installed package imports the backends)."""

from __future__ import annotations

import os
import time
from typing import ClassVar, List

from numerous.tasks import TaskControl, task
from numerous.tasks.backends.base import Job
from numerous.tasks.backends.inline import InlineBackend

WAIT_LIMIT = 20.0


class CountingInline(InlineBackend):
    """The inline backend, counting what it was made for and asked to do."""

    made: ClassVar[List[CountingInline]] = []

    def __init__(self) -> None:
        super().__init__()
        self.launched: List[str] = []
        self.shut_down = 0
        type(self).made.append(self)

    def launch(self, job: Job) -> None:
        self.launched.append(job.task.name)
        super().launch(job)

    def shutdown(self, wait: bool = True) -> None:
        self.shut_down += 1
        super().shutdown(wait)


class OtherInline(CountingInline):
    """A second kind, to tell which name a session resolved."""

    made: ClassVar[List[CountingInline]] = []


def pid() -> int:
    """Where the call ran."""
    return os.getpid()


@task
def where() -> int:
    """Where the instance ran."""
    return os.getpid()


def until_stopped(tc: TaskControl, label: str) -> str:
    """Return once asked to stop (``tc.should_stop``)."""
    tc.update_status("waiting")
    deadline = time.monotonic() + WAIT_LIMIT
    while not tc.should_stop:
        if time.monotonic() > deadline:
            raise TimeoutError("nobody asked me to stop")
        time.sleep(0.002)
    return f"{label} stopped"
