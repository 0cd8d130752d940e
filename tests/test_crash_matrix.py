"""The crash matrix, after CPython's test_concurrent_futures/test_deadlock.py.

Each way of dying — an error, ``os._exit``, a segfault, a SIGKILL — at each phase of an
instance — loading its arguments in the worker, running its body, pickling its result —
fails that instance's future, with an error naming what happened, within a second of the
death; sibling instances finish normally; the session stays usable. Each cell runs on a
fresh worker and on a warm one (a worker that has already run a task).

Loading the result happens in *your* process (on the dispatcher thread): an error there
fails the future, but an ``os._exit``, segfault or SIGKILL there would be your process
dying, which no library can isolate — those three cells are not in the matrix.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

import pytest
from crash_tasks import (
    EXIT_CODE,
    HOWS,
    CrashError,
    CrashOnLoad,
    crashes_in_body,
    returns_crash_on_dump,
    returns_crash_on_load,
    sibling,
    takes_argument,
)

from numerous.tasks import Session, Task, TaskFailedError, TaskInstance, WorkerDiedError

# What each phase starts: the task, and its arguments from (how, stamp).
PHASES: Dict[str, Tuple[Task[..., Any], Callable[[str, str], Tuple[Any, ...]]]] = {
    "load-args": (takes_argument, lambda how, stamp: (CrashOnLoad(how, stamp),)),
    "body": (crashes_in_body, lambda how, stamp: (how, stamp)),
    "dump-result": (returns_crash_on_dump, lambda how, stamp: (how, stamp)),
    "load-result": (returns_crash_on_load, lambda how, stamp: (how, stamp)),
}


def start_phase(phase: str, how: str, stamp: str) -> TaskInstance[..., Any]:
    """Start the instance that dies ``how`` during ``phase``."""
    task, arguments = PHASES[phase]
    instance = task.instance()
    instance.start(*arguments(how, stamp))
    return instance


WORKER_DEATHS = {"exit": f"exited with code {EXIT_CODE}", "segfault": "SIGSEGV", "sigkill": "SIGKILL"}
ERROR_WORDS = {
    "load-args": "while loading the task's arguments",
    "dump-result": "while pickling the task's result",
    "load-result": "could not be unpickled in the parent",
}
CASES = [(phase, how) for phase in PHASES for how in HOWS if phase != "load-result" or how == "error"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("worker", ["fresh", "warm"])
@pytest.mark.parametrize("phase, how", CASES, ids=[f"{p}-{h}" for p, h in CASES])
def test_a_death_fails_only_its_own_future(phase: str, how: str, worker: str, tmp_path: Path) -> None:
    stamp = tmp_path / "died-at"
    finished_at: List[float] = []
    warm_pid = None
    with Session():
        if worker == "warm":  # the instance is given the worker this one leaves idle
            warm_up = sibling.instance()
            assert warm_up.start(-1).result(timeout=30) == 0
            warm_pid = warm_up.job.sink.process_id
            assert warm_pid is not None
            instance = start_phase(phase, how, str(stamp))
            siblings = [sibling.instance().start(i) for i in range(2)]
        else:
            siblings = [sibling.instance().start(i) for i in range(2)]
            instance = start_phase(phase, how, str(stamp))
        future = instance.future
        assert future is not None
        future.add_done_callback(lambda f: finished_at.append(time.time()))
        assert future.wait_done(30)
        assert future.status == "failed"
        assert (instance.job.sink.process_id == warm_pid) == (worker == "warm")
        error = future.error
        if how in WORKER_DEATHS:
            assert isinstance(error, WorkerDiedError)
            assert WORKER_DEATHS[how] in str(error)
        elif phase == "body":
            assert isinstance(error, CrashError) and str(error) == "planned error"
        else:
            assert isinstance(error, TaskFailedError)
            assert "CrashError" in error.type_name and error.message == "planned error"
            assert ERROR_WORDS[phase] in str(error)
        died_at = float(stamp.read_text())
        assert finished_at[0] - died_at < 1.0
        assert [f.result(timeout=30) for f in siblings] == [1, 2]
        assert sibling.instance().start(10).result(timeout=30) == 11  # still usable
