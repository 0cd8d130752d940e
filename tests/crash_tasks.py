"""Ways to die at each phase of an instance, for the crash matrix."""

from __future__ import annotations

import ctypes
import os
import signal
import time
from typing import Any, Tuple

from numerous.tasks import task

HOWS = ("error", "exit", "segfault", "sigkill")
EXIT_CODE = 41


class CrashError(Exception):
    """The planned error."""


def crash(how: str, stamp: str) -> None:
    """Record the wall-clock time, then fail in the way ``how`` names."""
    with open(stamp, "w") as f:
        f.write(repr(time.time()))
    if how == "error":
        raise CrashError(f"planned {how}")
    if how == "exit":
        os._exit(EXIT_CODE)
    if how == "segfault":
        ctypes.string_at(0)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(10)
    raise AssertionError(f"unknown way to crash: {how}")


class CrashOnLoad:
    """Crashes whoever unpickles it."""

    def __init__(self, how: str, stamp: str) -> None:
        self.how, self.stamp = how, stamp

    def __reduce__(self) -> Tuple[Any, ...]:
        return crash, (self.how, self.stamp)


class CrashOnDump:
    """Crashes whoever pickles it."""

    def __init__(self, how: str, stamp: str) -> None:
        self.how, self.stamp = how, stamp

    def __reduce__(self) -> Tuple[Any, ...]:
        crash(self.how, self.stamp)
        raise AssertionError("unreachable")


@task(max_parallel=8)
def takes_argument(argument: Any) -> str:
    return "the argument loaded"


@task(max_parallel=8)
def crashes_in_body(how: str, stamp: str) -> None:
    crash(how, stamp)


@task(max_parallel=8)
def returns_crash_on_dump(how: str, stamp: str) -> Any:
    return CrashOnDump(how, stamp)


@task(max_parallel=8)
def returns_crash_on_load(how: str, stamp: str) -> Any:
    return CrashOnLoad(how, stamp)


@task(max_parallel=8)
def sibling(value: int) -> int:
    time.sleep(0.2)
    return value + 1
