"""Session: the current-session context, max_parallel queuing, exit semantics, backends."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import List

import pytest

from numerous.tasks import (
    MaxInstancesReachedError,
    Session,
    SessionNotFoundError,
    TaskError,
    UnknownBackendError,
    set_task_control_handler,
)
from numerous.tasks.session import current_session

from task_helpers import RecordingHandler, double, double_many, record_run, touch, wait_for_go


def test_instance_outside_a_session_says_how_to_open_one() -> None:
    with pytest.raises(SessionNotFoundError, match=r"with Session\(\)"):
        double.instance()


def test_nested_sessions_each_become_current_and_unwind() -> None:
    with Session(name="outer") as outer:
        assert current_session() is outer
        with Session(name="inner") as inner:
            assert current_session() is inner
            assert double.instance().session is inner
        assert current_session() is outer
    with pytest.raises(SessionNotFoundError):
        current_session()


def test_threads_started_inside_a_session_use_it() -> None:
    seen: List[object] = []
    with Session() as session:
        thread = threading.Thread(target=lambda: seen.append(double.instance().start(4).result()))
        thread.start()
        thread.join(30)
        assert current_session() is session
    assert seen == [8]


def test_asyncio_tasks_see_their_own_session() -> None:
    async def in_session(name: str) -> str:
        with Session(name=name):
            await asyncio.sleep(0)
            return current_session().name

    async def main() -> List[str]:
        return list(await asyncio.gather(in_session("a"), in_session("b")))

    assert asyncio.run(main()) == ["a", "b"]


@pytest.mark.timeout(60)
def test_many_threads_share_one_session() -> None:
    results: List[int] = []
    lock = threading.Lock()

    def worker(base: int) -> None:
        futures = [double_many.instance().start(base + i) for i in range(3)]
        values = [f.result(timeout=30) for f in futures]
        with lock:
            results.extend(values)

    with Session():
        threads = [threading.Thread(target=worker, args=(10 * n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert sorted(results) == sorted(2 * (10 * n + i) for n in range(8) for i in range(3))


@pytest.mark.timeout(60)
def test_max_parallel_queues_the_rest_in_start_order(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    log = tmp_path / "runs.log"
    gates = [tmp_path / f"go{i}" for i in range(7)]
    with Session():  # record_run has max_parallel=3
        futures = [record_run.instance().start(str(log), str(i), str(gates[i])) for i in range(7)]
        for i in range(3):
            handler.wait_for_status(f"running {i}")
        assert [f.status for f in futures] == ["running"] * 3 + ["pending"] * 4
        for i in range(7):  # release one at a time: each release lets the next one in
            gates[i].touch()
            futures[i].result(timeout=30)
            if i + 3 < 7:
                handler.wait_for_status(f"running {i + 3}")
    lines = log.read_text().split("\n")[:-1]
    running = 0
    peak = 0
    for line in lines:
        running += 1 if line.startswith("start") else -1
        peak = max(peak, running)
    assert peak == 3
    started = [line.split()[1] for line in lines if line.startswith("start")]
    assert sorted(started[:3]) == ["0", "1", "2"]  # launched together: any order
    assert started[3:] == ["3", "4", "5", "6"]  # the queue is first in, first out


def test_queue_false_refuses_instead_of_waiting(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session():
        futures = [record_run.instance().start(str(tmp_path / "l"), str(i), str(go)) for i in range(3)]
        with pytest.raises(MaxInstancesReachedError, match=r"'record_run'.*max_parallel=3"):
            record_run.instance(queue=False).start(str(tmp_path / "l"), "x", str(go))
        go.touch()
    assert [f.result() for f in futures] == ["0", "1", "2"]


def test_an_instance_starts_once() -> None:
    with Session():
        instance = double.instance()
        assert instance.start(1).result() == 2
        with pytest.raises(TaskError, match="already started"):
            instance.start(1)


def test_wrong_arguments_fail_in_start() -> None:
    with Session():
        with pytest.raises(TypeError, match="double"):
            double.instance().start(1, 2)


def test_starting_after_the_session_closed_fails() -> None:
    with Session():
        instance = double.instance()
    with pytest.raises(TaskError, match="closed"):
        instance.start(1)


def test_normal_exit_waits_for_every_started_instance(tmp_path: Path) -> None:
    with Session():
        futures = [touch.instance().start(str(tmp_path / f"f{i}")) for i in range(2)]
    assert all(f.done and f.status == "completed" for f in futures)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0", "f1"]


@pytest.mark.timeout(60)
def test_exit_by_exception_stops_running_and_cancels_pending(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with pytest.raises(RuntimeError, match="boom"):
        with Session():
            running = [wait_for_go.instance().start(str(tmp_path / "never"), i) for i in range(8)]
            handler.wait_for(lambda e: sum(1 for x in handler.events if x[2] == "ready") == 8)
            pending = wait_for_go.instance()  # max_parallel=8: this one waits
            pending_future = pending.start(str(tmp_path / "never"), "late")
            assert pending_future.status == "pending"
            raise RuntimeError("boom")
    assert [f.result() for f in running] == ["stopped"] * 8
    assert pending_future.status == "cancelled"
    assert pending.id not in {event[1] for event in handler.events}  # it never ran


def test_unknown_backend_is_named_at_the_first_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "bogus")
    with Session():
        with pytest.raises(UnknownBackendError, match=r"NUMEROUS_TASK_BACKEND='bogus'.*local") as caught:
            double.instance()
    assert isinstance(caught.value, ValueError)


def test_backend_can_be_chosen_per_session() -> None:
    with Session(backend="local"):
        assert double.instance().start(3).result() == 6
    with Session(backend="nope"):
        with pytest.raises(UnknownBackendError, match="Session"):
            double.instance()


def test_a_session_is_entered_once() -> None:
    session = Session()
    with session:
        pass
    with pytest.raises(TaskError, match="already entered"):
        with session:
            pass
