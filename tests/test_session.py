"""Session: which session is current (nesting, threads, asyncio), max_parallel queuing,
start() rules, what leaving the ``with`` block does, and backend selection."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any, Dict, List, Tuple

import api_tasks
import pytest
from api_tasks import RecordingHandler

from numerous.tasks import (
    MaxInstancesReachedError,
    Session,
    SessionNotFoundError,
    TaskCancelledError,
    TaskError,
    UnknownBackendError,
    set_task_control_handler,
)
from numerous.tasks.session import current_session

RESULT_WAIT = 30.0


def _use_handler() -> RecordingHandler:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    return handler


def _run_threads(targets: List[Any]) -> List[BaseException]:
    """Run each callable in a thread of its own; return what they raised."""
    errors: List[BaseException] = []

    def guarded(fn: Any) -> None:
        try:
            fn()
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(fn,)) for fn in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(RESULT_WAIT)
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish"
    return errors


# -- the current session --------------------------------------------------------------------
def test_instance_outside_a_session_raises_and_says_how_to_open_one() -> None:
    with pytest.raises(SessionNotFoundError) as caught:
        api_tasks.double.instance()
    assert "with Session()" in str(caught.value)
    assert isinstance(caught.value, TaskError)


def test_nested_sessions_inner_is_current_inside_outer_after() -> None:
    with Session(name="outer") as outer:
        assert current_session() is outer
        assert api_tasks.double.instance().session is outer
        with Session(name="inner") as inner:
            assert current_session() is inner
            assert api_tasks.double.instance().session is inner
        assert current_session() is outer
        assert api_tasks.double.instance().session is outer
    with pytest.raises(SessionNotFoundError):
        api_tasks.double.instance()


def test_a_plain_thread_started_inside_a_session_uses_it() -> None:
    seen: Dict[str, Any] = {}

    def in_thread() -> None:
        seen["current"] = current_session()
        instance = api_tasks.double.instance()
        seen["session"] = instance.session
        seen["result"] = instance.start(4).result(timeout=RESULT_WAIT)

    with Session() as session:
        assert _run_threads([in_thread]) == []
    assert seen == {"current": session, "session": session, "result": 8}


def test_asyncio_tasks_inherit_the_session_they_were_created_in() -> None:
    async def one(value: int) -> Tuple[Any, Any, int]:
        await asyncio.sleep(0)
        instance = api_tasks.double_many.instance()
        future = instance.start(value)
        result = await asyncio.to_thread(future.result, RESULT_WAIT)
        return current_session(), instance.session, result

    async def main() -> List[Tuple[Any, Any, int]]:
        return list(await asyncio.gather(*(one(i) for i in range(3))))

    with Session() as session:
        results = asyncio.run(main())
    assert results == [(session, session, 2 * i) for i in range(3)]


def test_asyncio_tasks_each_in_their_own_session_do_not_see_each_other() -> None:
    async def in_session(name: str, entered: asyncio.Event, peers_entered: asyncio.Event) -> Tuple[str, str, str]:
        with Session(name=name) as mine:
            entered.set()
            await peers_entered.wait()  # the other task's session is open too by now
            instance = api_tasks.double.instance()
            return current_session().name, instance.session.name, mine.name

    async def main() -> List[Tuple[str, str, str]]:
        a_in, b_in = asyncio.Event(), asyncio.Event()  # made inside the running loop
        return list(await asyncio.gather(in_session("a", a_in, b_in), in_session("b", b_in, a_in)))

    assert asyncio.run(main()) == [("a", "a", "a"), ("b", "b", "b")]
    with pytest.raises(SessionNotFoundError):
        current_session()


@pytest.mark.timeout(60)
def test_one_session_used_from_eight_threads_at_once() -> None:
    barrier = threading.Barrier(8)
    results: Dict[int, List[int]] = {}
    sessions: List[Any] = []

    def starter(n: int) -> None:
        barrier.wait(RESULT_WAIT)  # all eight start instances at the same moment
        instances = [api_tasks.double_many.instance() for _ in range(3)]
        futures = [inst.start(100 * n + i) for i, inst in enumerate(instances)]
        results[n] = [f.result(timeout=RESULT_WAIT) for f in futures]
        sessions.extend(inst.session for inst in instances)

    with Session() as session:
        assert _run_threads([lambda n=n: starter(n) for n in range(8)]) == []
    assert results == {n: [2 * (100 * n + i) for i in range(3)] for n in range(8)}
    assert len(sessions) == 24 and all(s is session for s in sessions)


@pytest.mark.timeout(60)
def test_eight_threads_each_with_a_session_of_their_own() -> None:
    barrier = threading.Barrier(8)
    seen: Dict[int, Tuple[bool, bool, int]] = {}

    def own_session(n: int) -> None:
        with Session(name=f"thread-{n}") as mine:
            barrier.wait(RESULT_WAIT)  # every session is open at the same time
            instance = api_tasks.double.instance()
            value = instance.start(n).result(timeout=RESULT_WAIT)
            seen[n] = (current_session() is mine, instance.session is mine, value)

    assert _run_threads([lambda n=n: own_session(n) for n in range(8)]) == []
    assert seen == {n: (True, True, 2 * n) for n in range(8)}


# -- max_parallel ---------------------------------------------------------------------------------
def _intervals(log: Path) -> Tuple[List[str], Dict[str, Tuple[int, int]]]:
    """Start order and (start_ns, end_ns) per label from the tasks' own records."""
    starts: Dict[str, int] = {}
    ends: Dict[str, int] = {}
    order: List[str] = []
    for line in log.read_text().splitlines():
        what, label, ns = line.split()
        if what == "start":
            starts[label] = int(ns)
            order.append(label)
        else:
            ends[label] = int(ns)
    assert set(starts) == set(ends), f"unbalanced records: {log.read_text()}"
    return order, {label: (starts[label], ends[label]) for label in starts}


def _peak_overlap(intervals: Dict[str, Tuple[int, int]]) -> int:
    """The largest number of intervals that share a moment."""
    edges = sorted([(start, 1) for start, _ in intervals.values()] + [(end, -1) for _, end in intervals.values()])
    running = peak = 0
    for _, step in edges:  # at equal times an end (-1) sorts before a start (+1)
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_max_parallel_two_runs_two_and_queues_the_rest_first_in_first_out(tmp_path: Path) -> None:
    handler = _use_handler()
    log = tmp_path / "runs.log"
    gates = [tmp_path / f"go{i}" for i in range(5)]
    with Session():
        instances = [api_tasks.timed_run.instance() for _ in range(5)]  # max_parallel=2
        futures = [inst.start(str(log), str(i), str(gates[i])) for i, inst in enumerate(instances)]
        handler.wait_for_status("running 0")
        handler.wait_for_status("running 1")
        assert [f.status for f in futures] == ["running"] * 2 + ["pending"] * 3
        assert [f.done for f in futures] == [False] * 5
        for i in range(5):  # free one slot at a time: each lets exactly the next one in
            gates[i].touch()
            assert futures[i].result(timeout=RESULT_WAIT) == str(i)
            if i + 2 < 5:
                handler.wait_for_status(f"running {i + 2}")
                assert [f.status for f in futures[i + 3 :]] == ["pending"] * (5 - i - 3)
                for waiting in instances[i + 3 :]:
                    assert handler.states(waiting.id) == ["pending"]  # never ran yet
    order, intervals = _intervals(log)
    assert _peak_overlap(intervals) == 2  # two did run together, never three
    assert sorted(order[:2]) == ["0", "1"]
    assert order[2:] == ["2", "3", "4"]  # queued ones start in the order start() was called
    assert [f.status for f in futures] == ["completed"] * 5


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_handlers_never_see_more_than_max_parallel_instances_running(tmp_path: Path) -> None:
    handler = _use_handler()
    go = tmp_path / "go"
    go.touch()  # nobody waits: instances finish and hand their slot on at once
    with Session():
        futures = [api_tasks.gated.instance().start(str(go), i) for i in range(6)]  # max_parallel=2
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == list(range(6))
    running = peak = 0
    for event in handler.snapshot():
        if event.kind == "state" and event.payload == "running":
            running += 1
        elif event.kind == "state" and event.payload in ("completed", "failed", "cancelled"):
            running -= 1
        peak = max(peak, running)
    assert peak <= 2, "a handler saw 3 instances of a max_parallel=2 task 'running' at once"


@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_queue_false_raises_when_every_slot_is_taken(tmp_path: Path) -> None:
    handler = _use_handler()
    go = tmp_path / "go"
    with Session():
        first = api_tasks.gated.instance(queue=False).start(str(go), "a")  # a free slot: fine
        second = api_tasks.gated.instance().start(str(go), "b")
        handler.wait_for_status("ready", count=2)
        refused = api_tasks.gated.instance(queue=False)
        with pytest.raises(MaxInstancesReachedError) as caught:
            refused.start(str(go), "c")
        go.touch()
        assert (first.result(timeout=RESULT_WAIT), second.result(timeout=RESULT_WAIT)) == ("a", "b")
    error = caught.value
    assert isinstance(error, TaskError)
    assert "'gated'" in str(error) and "max_parallel=2" in str(error)
    assert (error.task_name, error.max_parallel) == ("gated", 2)
    assert refused.future is None
    assert refused.id not in {event.instance_id for event in handler.events}  # never ran


# -- start() --------------------------------------------------------------------------------------
def test_second_start_of_an_instance_raises_task_error() -> None:
    with Session():
        instance = api_tasks.double.instance()
        future = instance.start(1)
        with pytest.raises(TaskError, match="already started"):
            instance.start(2)
        assert future.result(timeout=RESULT_WAIT) == 2
        assert instance.future is future


@pytest.mark.timeout(60)
def test_an_instance_whose_start_raised_may_be_started_again() -> None:
    with Session():
        instance = api_tasks.double.instance()
        with pytest.raises(TypeError, match="cannot be started with these arguments"):
            instance.start(1, 2)
        assert instance.future is None and instance.status == "pending"
        assert instance.start(3).result(timeout=RESULT_WAIT) == 6


@pytest.mark.timeout(60)
def test_threads_starting_one_instance_at_once_start_it_once() -> None:
    with Session():
        instance = api_tasks.double.instance()
        barrier = threading.Barrier(8)
        outcomes: List[Any] = []

        def start(value: int) -> None:
            barrier.wait()
            try:
                outcomes.append(instance.start(value))
            except TaskError as error:
                outcomes.append(error)

        threads = [threading.Thread(target=start, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        futures = [o for o in outcomes if not isinstance(o, TaskError)]
        assert len(futures) == 1 and len(outcomes) == 8
        assert all("already started" in str(o) for o in outcomes if isinstance(o, TaskError))
        assert instance.future is futures[0] and futures[0].result(timeout=RESULT_WAIT) in range(0, 16, 2)


def test_start_after_the_session_exited_raises_task_error() -> None:
    with Session():
        instance = api_tasks.double.instance()
    with pytest.raises(TaskError) as caught:
        instance.start(1)
    assert "closed" in str(caught.value)
    assert instance.future is None


def test_wrong_arguments_fail_in_start_not_in_the_worker() -> None:
    with Session():
        with pytest.raises(TypeError, match="double"):
            api_tasks.double.instance().start(1, 2)


# -- leaving the with block --------------------------------------------------------------------------
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_normal_exit_waits_for_running_and_pending_instances(tmp_path: Path) -> None:
    handler = _use_handler()
    go = tmp_path / "go"
    outs = [tmp_path / f"out{i}" for i in range(2)]
    with Session():  # gated_then_write has max_parallel=1: the second waits its turn
        futures = [api_tasks.gated_then_write.instance().start(str(go), str(outs[i]), i) for i in range(2)]
        handler.wait_for_status("ready")
        assert [f.status for f in futures] == ["running", "pending"]
        go.touch()  # both can now finish, but only after the block is left
    assert [f.done for f in futures] == [True, True]
    assert [f.status for f in futures] == ["completed", "completed"]
    assert [f.result(timeout=0) for f in futures] == [0, 1]
    assert [p.read_text() for p in outs] == ["0", "1"]


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_exit_by_exception_stops_running_and_cancels_pending(tmp_path: Path) -> None:
    handler = _use_handler()
    ran = [tmp_path / f"ran{i}" for i in range(4)]
    with pytest.raises(RuntimeError, match="boom"):
        with Session():
            instances = [api_tasks.until_stopped.instance() for _ in range(4)]  # max_parallel=2
            futures = [inst.start(str(ran[i])) for i, inst in enumerate(instances)]
            handler.wait_for_status("ready", count=2)
            assert [f.status for f in futures] == ["running"] * 2 + ["pending"] * 2
            raise RuntimeError("boom")
    assert [f.status for f in futures] == ["completed"] * 2 + ["cancelled"] * 2
    assert [f.result(timeout=0) for f in futures[:2]] == ["stopped", "stopped"]  # they saw should_stop
    for future in futures[2:]:
        with pytest.raises(TaskCancelledError):
            future.result(timeout=0)
    assert [p.exists() for p in ran] == [True, True, False, False]  # the pending ones never ran
    for instance in instances[2:]:
        assert handler.states(instance.id) == ["pending", "cancelled"]


@pytest.mark.timeout(60)
def test_unfinished_lists_the_running_and_pending_instances_in_start_order(tmp_path: Path) -> None:
    handler = _use_handler()
    go = tmp_path / "go"
    with Session() as session:
        assert session.unfinished() == []
        instances = [api_tasks.gated_then_write.instance() for _ in range(3)]  # max_parallel=1
        not_started = api_tasks.gated_then_write.instance()
        futures = [inst.start(str(go), str(tmp_path / f"out{i}"), i) for i, inst in enumerate(instances)]
        handler.wait_for_status("ready")
        assert session.unfinished() == instances  # running, then the pending in order
        instances[2].stop()  # a cancelled one is over
        assert session.unfinished() == instances[:2] and not_started not in session.unfinished()
        go.touch()
        assert [f.result(timeout=RESULT_WAIT) for f in futures[:2]] == [0, 1]
        assert session.unfinished() == []


@pytest.mark.timeout(60)
def test_close_leaves_a_session_entered_without_with_as_a_normal_exit_does(tmp_path: Path) -> None:
    handler = _use_handler()
    go = tmp_path / "go"
    session = Session().__enter__()
    future = api_tasks.gated_then_write.instance().start(str(go), str(tmp_path / "out"), "done")
    handler.wait_for_status("ready")
    threading.Timer(0.2, go.touch).start()  # close() must wait for it
    session.close()
    assert future.status == "completed" and future.result(timeout=0) == "done"
    assert not session.is_open
    with pytest.raises(SessionNotFoundError):
        current_session()
    session.close()  # closed already: nothing to do


@pytest.mark.timeout(60)
def test_close_with_a_grace_stops_what_runs_and_cancels_what_waits(tmp_path: Path) -> None:
    handler = _use_handler()
    session = Session(stop_grace=30.0).__enter__()
    instances = [api_tasks.until_stopped.instance() for _ in range(3)]  # max_parallel=2
    futures = [inst.start(str(tmp_path / f"ran{i}")) for i, inst in enumerate(instances)]
    handler.wait_for_status("ready", count=2)
    with pytest.raises(ValueError, match="grace"):
        session.close(grace=-1)
    assert session.is_open  # a refused close leaves it as it was
    session.close(grace=1.0)
    assert [f.status for f in futures] == ["completed", "completed", "cancelled"]
    assert [f.result(timeout=0) for f in futures[:2]] == ["stopped", "stopped"]
    assert session.unfinished() == [] and not session.is_open


@pytest.mark.timeout(60)
def test_an_instance_started_while_the_session_aborts_is_refused_or_stopped(tmp_path: Path) -> None:
    # Another thread may call start() while `with Session()` is being left by an
    # exception. The handler below does it at a fixed point of that exit (when the
    # pending instance is cancelled), on the exiting thread, which makes it repeatable.
    late: Dict[str, Any] = {}

    class StartsLate(RecordingHandler):
        def instance_state_changed(self, task_control: Any, state: str, error: Any) -> None:
            super().instance_state_changed(task_control, state, error)
            if state == "cancelled" and not late:
                try:
                    late["future"] = api_tasks.until_stopped.instance().start(str(tmp_path / "late"), 2.0)
                except TaskError as exc:  # refused: fine
                    late["refused"] = exc

    handler = StartsLate()
    set_task_control_handler(handler)
    with pytest.raises(RuntimeError, match="boom"):
        with Session():
            futures = [api_tasks.until_stopped.instance().start(str(tmp_path / f"ran{i}")) for i in range(3)]
            handler.wait_for_status("ready", count=2)
            raise RuntimeError("boom")
    assert [f.status for f in futures] == ["completed", "completed", "cancelled"]
    assert late, "the handler was never told of the cancellation"
    if "future" in late:  # accepted: then it must have been stopped (or cancelled) too
        future = late["future"]
        assert future.status == "cancelled" or future.result(timeout=0) == "stopped", (
            f"started during the abort, it ran unstopped to its own end: {future.result(timeout=0)!r}"
        )


# -- backends -------------------------------------------------------------------------------------------
def test_unknown_backend_in_the_environment_fails_the_first_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "bogus")
    with Session():  # entering does not need the backend yet
        with pytest.raises(UnknownBackendError) as caught:
            api_tasks.double.instance()
    error = caught.value
    assert isinstance(error, ValueError) and isinstance(error, TaskError)
    assert "bogus" in str(error) and "local" in str(error)


def test_backend_local_works_by_name_even_when_the_environment_names_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "bogus")
    with Session(backend="local"):
        assert api_tasks.double.instance().start(3).result(timeout=RESULT_WAIT) == 6


def test_unknown_backend_named_in_the_session_fails_the_first_instance() -> None:
    with Session(backend="nope"):
        with pytest.raises(UnknownBackendError, match=r"Session\(backend=\.\.\.\)='nope'.*local"):
            api_tasks.double.instance()


def test_environment_naming_local_works(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "local")
    with Session():
        assert api_tasks.double.instance().start(5).result(timeout=RESULT_WAIT) == 10


# -- a session is used once --------------------------------------------------------------------------------
def test_a_session_cannot_be_entered_again_after_it_exited() -> None:
    session = Session()
    with session:
        pass
    with pytest.raises(TaskError, match="already entered"):
        with session:
            pass  # pragma: no cover
    with pytest.raises(SessionNotFoundError):
        current_session()


def test_a_session_cannot_be_entered_again_while_it_is_open() -> None:
    with Session() as session:
        with pytest.raises(TaskError, match="already entered"):
            with session:
                pass  # pragma: no cover
        assert current_session() is session
        assert api_tasks.double.instance().start(4).result(timeout=RESULT_WAIT) == 8
