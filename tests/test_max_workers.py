"""Session(max_workers=N): at most N instances run at once across all tasks of a
session, first come first served; its default, its validation, and what still works
under it (queue=False, stopping queued instances, leaving the session, map)."""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any, List

import pytest
import worker_tasks
from api_tasks import RecordingHandler
from test_session import _intervals, _peak_overlap

import numerous.tasks.session
from numerous.tasks import MaxInstancesReachedError, Session, TaskCancelledError, TaskError, set_task_control_handler
from numerous.tasks.session import usable_cpus

RESULT_WAIT = 30.0


def _use_handler() -> RecordingHandler:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    return handler


def _peak_running(handler: RecordingHandler) -> int:
    """The most instances the handler saw "running" at once."""
    running = peak = 0
    for event in handler.snapshot():
        if event.kind == "state" and event.payload == "running":
            running += 1
        elif event.kind == "state" and event.payload in ("completed", "failed", "cancelled"):
            running -= 1
        peak = max(peak, running)
    return peak


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_max_workers_two_runs_two_across_tasks_and_the_rest_in_start_order(tmp_path: Path) -> None:
    handler = _use_handler()
    log = tmp_path / "runs.log"
    # five instances of three tasks, each task free to run 4: only the session cap holds
    plan = [("a0", worker_tasks.timed_a), ("b0", worker_tasks.timed_b), ("c0", worker_tasks.timed_c)]
    plan += [("a1", worker_tasks.timed_a), ("b1", worker_tasks.timed_b)]
    gates = {label: tmp_path / f"go-{label}" for label, _ in plan}
    with Session(max_workers=2):
        instances = [task.instance() for _, task in plan]
        futures = [inst.start(str(log), label, str(gates[label])) for inst, (label, _) in zip(instances, plan)]
        handler.wait_for_status("running a0")
        handler.wait_for_status("running b0")
        assert [f.status for f in futures] == ["running"] * 2 + ["pending"] * 3
        for i, (label, _) in enumerate(plan):  # free one at a time: each lets exactly the next in
            gates[label].touch()
            assert futures[i].result(timeout=RESULT_WAIT) == label
            if i + 2 < len(plan):
                handler.wait_for_status(f"running {plan[i + 2][0]}")
                assert [f.status for f in futures[i + 3 :]] == ["pending"] * (len(plan) - i - 3)
                for waiting in instances[i + 3 :]:
                    assert handler.states(waiting.id) == ["pending"]  # never ran yet
    order, intervals = _intervals(log)
    assert _peak_overlap(intervals) == 2  # two did run together, never three
    assert sorted(order[:2]) == ["a0", "b0"]
    assert order[2:] == ["c0", "a1", "b1"]  # in start() order, whichever task
    assert _peak_running(handler) == 2


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_an_instance_its_own_max_parallel_holds_lets_a_later_one_of_another_task_go_first(tmp_path: Path) -> None:
    handler = _use_handler()
    log = tmp_path / "runs.log"
    plan = [("s0", worker_tasks.timed_single), ("s1", worker_tasks.timed_single), ("a0", worker_tasks.timed_a)]
    gates = {label: tmp_path / f"go-{label}" for label, _ in plan}
    with Session(max_workers=2):
        futures = {label: task.instance().start(str(log), label, str(gates[label])) for label, task in plan}
        handler.wait_for_status("running s0")
        handler.wait_for_status("running a0")  # s1 waits for timed_single's one slot: a0 goes ahead
        assert {label: f.status for label, f in futures.items()} == {"s0": "running", "s1": "pending", "a0": "running"}
        gates["a0"].touch()
        assert futures["a0"].result(timeout=RESULT_WAIT) == "a0"
        assert futures["s1"].status == "pending"  # a free worker, but its own task is full
        gates["s0"].touch()
        handler.wait_for_status("running s1")
        gates["s1"].touch()
    order, intervals = _intervals(log)
    assert sorted(order[:2]) == ["a0", "s0"] and order[2:] == ["s1"]  # the first two ran together
    assert _peak_overlap(intervals) == 2


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_handlers_never_see_more_than_max_workers_instances_running(tmp_path: Path) -> None:
    handler = _use_handler()
    log, go = tmp_path / "runs.log", tmp_path / "go"
    go.touch()  # nobody waits: instances finish and hand their worker on at once
    tasks = itertools.cycle([worker_tasks.timed_a, worker_tasks.timed_b, worker_tasks.timed_c])
    with Session(max_workers=2):
        futures = [next(tasks).instance().start(str(log), str(i), str(go)) for i in range(12)]
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == [str(i) for i in range(12)]
    assert _peak_running(handler) <= 2, "a handler saw 3 instances 'running' in a max_workers=2 session"
    _, intervals = _intervals(log)
    assert _peak_overlap(intervals) <= 2


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_queue_false_raises_when_the_session_runs_its_max_workers(tmp_path: Path) -> None:
    handler = _use_handler()
    log, go = tmp_path / "runs.log", tmp_path / "go"
    with Session(max_workers=1):
        first = worker_tasks.timed_a.instance(queue=False).start(str(log), "a", str(go))  # room: fine
        handler.wait_for_status("running a")
        refused = worker_tasks.timed_b.instance(queue=False)  # timed_b runs nothing: the session is full
        with pytest.raises(MaxInstancesReachedError) as caught:
            refused.start(str(log), "b", str(go))
        go.touch()
        assert first.result(timeout=RESULT_WAIT) == "a"
    error = caught.value
    assert isinstance(error, TaskError)
    assert "'timed_b'" in str(error) and "max_workers=1" in str(error)
    assert (error.task_name, error.max_parallel, error.max_workers) == ("timed_b", None, 1)
    assert refused.future is None
    assert refused.id not in {event.instance_id for event in handler.snapshot()}  # never ran


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_queued_instance_stopped_never_runs_and_the_next_one_takes_the_worker(tmp_path: Path) -> None:
    handler = _use_handler()
    log = tmp_path / "runs.log"
    plan = [("a0", worker_tasks.timed_a), ("b0", worker_tasks.timed_b), ("c0", worker_tasks.timed_c)]
    gates = {label: tmp_path / f"go-{label}" for label, _ in plan}
    with Session(max_workers=1):
        instances = {label: task.instance() for label, task in plan}
        futures = {label: instances[label].start(str(log), label, str(gates[label])) for label, _ in plan}
        handler.wait_for_status("running a0")
        instances["b0"].stop()  # queued: cancelled at once
        assert futures["b0"].status == "cancelled"
        with pytest.raises(TaskCancelledError):
            futures["b0"].result(timeout=0)
        gates["a0"].touch()
        handler.wait_for_status("running c0")
        gates["c0"].touch()
    order, _ = _intervals(log)
    assert order == ["a0", "c0"]
    assert handler.states(instances["b0"].id) == ["pending", "cancelled"]


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_exit_by_exception_stops_what_runs_and_cancels_what_waits_for_a_worker(tmp_path: Path) -> None:
    handler = _use_handler()
    log, never = tmp_path / "runs.log", str(tmp_path / "never")
    plan = [("a0", worker_tasks.timed_a), ("b0", worker_tasks.timed_b), ("c0", worker_tasks.timed_c)]
    with pytest.raises(RuntimeError, match="boom"):
        with Session(max_workers=1):
            instances = [task.instance() for _, task in plan]
            futures = [inst.start(str(log), label, never) for inst, (label, _) in zip(instances, plan)]
            handler.wait_for_status("running a0")
            raise RuntimeError("boom")
    assert [f.status for f in futures] == ["completed", "cancelled", "cancelled"]
    assert futures[0].result(timeout=0) == "stopped"  # it saw should_stop
    order, _ = _intervals(log)
    assert order == ["a0"]  # the ones waiting for a worker never ran
    for instance in instances[1:]:
        assert handler.states(instance.id) == ["pending", "cancelled"]


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_map_keeps_to_max_workers_alongside_other_tasks(tmp_path: Path) -> None:
    log, go = tmp_path / "runs.log", tmp_path / "go"
    handler = _use_handler()
    labels = [f"m{i}" for i in range(8)]
    with Session(max_workers=2):
        other = worker_tasks.timed_a.instance().start(str(log), "other", str(go))
        handler.wait_for_status("running other")
        mapped = worker_tasks.recorded_item.map(itertools.repeat(str(log)), labels)  # max_parallel=4
        go.touch()
        assert list(mapped) == labels
        assert other.result(timeout=RESULT_WAIT) == "other"
    _, intervals = _intervals(log)
    assert set(intervals) == {"other", *labels}
    assert _peak_overlap(intervals) <= 2


# -- the default and validation ----------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_the_default_is_the_usable_cpus_on_the_local_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numerous.tasks.session, "usable_cpus", lambda: 1)
    handler = _use_handler()
    log, go = tmp_path / "runs.log", tmp_path / "go"
    with Session(backend="local") as session:
        assert session.max_workers == "auto"
        futures = [worker_tasks.timed_a.instance().start(str(log), str(i), str(go)) for i in range(2)]
        handler.wait_for_status("running 0")
        assert [f.status for f in futures] == ["running", "pending"]  # one CPU: one at a time
        go.touch()
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == ["0", "1"]


@pytest.mark.timeout(60)
def test_none_is_no_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(numerous.tasks.session, "usable_cpus", lambda: 1)
    handler = _use_handler()
    log, go = tmp_path / "runs.log", tmp_path / "go"
    with Session(max_workers=None):
        futures = [task.instance().start(str(log), label, str(go)) for label, task in _three()]
        for label, _ in _three():
            handler.wait_for_status(f"running {label}")  # all three at once, on one CPU
        go.touch()
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == ["a", "b", "c"]


@pytest.mark.timeout(120)
def test_the_default_sets_no_cap_on_a_dask_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dask_cluster: Any
) -> None:
    monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", dask_cluster.address)
    monkeypatch.setattr(numerous.tasks.session, "usable_cpus", lambda: 1)
    handler = _use_handler()
    log, go = tmp_path / "runs.log", tmp_path / "go"
    with Session(backend="dask"):  # the test cluster has 2 workers of 2 threads
        futures = [task.instance().start(str(log), label, str(go)) for label, task in _three()]
        for label, _ in _three():
            handler.wait_for_status(f"running {label}")
        go.touch()
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == ["a", "b", "c"]


def _three() -> List[tuple]:  # type: ignore[type-arg]
    return [("a", worker_tasks.timed_a), ("b", worker_tasks.timed_b), ("c", worker_tasks.timed_c)]


@pytest.mark.parametrize("bad", [0, -1])
def test_max_workers_below_one_is_a_value_error(bad: int) -> None:
    with pytest.raises(ValueError, match=f"max_workers must be at least 1, not {bad}"):
        Session(max_workers=bad)


@pytest.mark.parametrize("bad", [2.0, True, b"2"])
def test_max_workers_of_another_type_is_a_type_error(bad: object) -> None:
    with pytest.raises(TypeError, match="max_workers must be an int >= 1, None or 'auto'"):
        Session(max_workers=bad)  # type: ignore[arg-type]


def test_max_workers_as_an_unknown_word_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="max_workers must be an int >= 1, None or 'auto', not 'cpus'"):
        Session(max_workers="cpus")


def test_usable_cpus_counts_the_cpus_this_process_may_run_on() -> None:
    if hasattr(os, "process_cpu_count"):
        expected = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        expected = len(os.sched_getaffinity(0))
    else:
        expected = os.cpu_count()
    assert usable_cpus() == expected and usable_cpus() >= 1
