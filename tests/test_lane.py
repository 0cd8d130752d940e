"""The local backend's lane: instances queued ahead for busy workers (see
``numerous.tasks.backends.local._lane``). What it must keep: ``max_parallel`` and
``max_workers`` exact, first come first served, a queued-ahead instance cancelled with
``cancel()`` True and never run, none lost or run twice when a worker dies."""

from __future__ import annotations

import collections
import os
import signal
from pathlib import Path
from typing import Any, Dict, List

import lane_tasks
import pytest
from api_tasks import RecordingHandler
from backend_tasks import wait_until
from test_max_workers import _peak_running
from test_session import _intervals, _peak_overlap

from numerous.tasks import Session, TaskCancelledError, WorkerDiedError, set_task_control_handler
from numerous.tasks._slots import Slots
from numerous.tasks.backends.base import Job
from numerous.tasks.backends.local import _dispatcher
from numerous.tasks.backends.local._lane import MAX_BODY, Lane, open_lane, read_packet
from numerous.tasks.backends.local._shm import CLAIMING

RESULT_WAIT = 30.0

pytestmark = pytest.mark.skipif(open_lane() is None, reason="no packet-mode pipes here: there is no lane")


def _count_claims(monkeypatch: pytest.MonkeyPatch) -> Dict[str, int]:
    counts: Dict[str, int] = collections.Counter()
    original = _dispatcher.LocalDispatcher._claimed

    def claimed(self: Any, *args: Any) -> None:
        counts["claimed"] += 1
        original(self, *args)

    monkeypatch.setattr(_dispatcher.LocalDispatcher, "_claimed", claimed)
    return counts


# -- in sessions ------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_busy_workers_take_the_next_instances_and_max_parallel_still_holds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    claims = _count_claims(monkeypatch)
    log = tmp_path / "runs.log"
    with Session(max_workers=4):  # tick's max_parallel=2 is the limit that holds
        futures = [lane_tasks.tick.instance().start(str(log), str(i)) for i in range(300)]
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == [str(i) for i in range(300)]
    assert claims["claimed"] > 0, "no worker ever took an instance from the lane"
    order, intervals = _intervals(log)
    assert sorted(order, key=int) == [str(i) for i in range(300)]  # each ran, once
    assert _peak_overlap(intervals) <= 2
    assert _peak_running(handler) <= 2, "a handler saw 3 instances of a max_parallel=2 task 'running'"


@pytest.mark.timeout(60)
def test_an_instance_queued_ahead_is_cancelled_with_true_never_runs_and_the_rest_keep_their_order(
    tmp_path: Path,
) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    log = tmp_path / "runs.log"
    gates = [tmp_path / f"go-{i}" for i in range(8)]
    with Session(max_workers=2) as session:
        instances = [lane_tasks.gated.instance() for _ in range(8)]
        futures = [inst.start(str(log), str(i), str(gates[i])) for i, inst in enumerate(instances)]
        handler.wait_for_status("running 0")
        handler.wait_for_status("running 1")
        # nothing signals it: poll the session's own state
        assert wait_until(lambda: session._slots.is_reserved(instances[2].job), 10), "never queued ahead: instance 2"
        assert futures[2].status == "pending"
        assert futures[2].cancel() is True  # queued ahead, not started: taken back
        assert futures[2].status == "cancelled"
        order = [0, 1, 3, 4, 5, 6, 7]
        for at, i in enumerate(order):  # free one at a time: each lets exactly the next in
            gates[i].touch()
            assert futures[i].result(timeout=RESULT_WAIT) == str(i)
            if at + 2 < len(order):
                handler.wait_for_status(f"running {order[at + 2]}")
    with pytest.raises(TaskCancelledError):
        futures[2].result(timeout=0)
    ran = [line.split()[1] for line in log.read_text().splitlines() if line.startswith("run ")]
    assert sorted(ran[:2]) == ["0", "1"]  # together, on the two workers
    assert ran[2:] == ["3", "4", "5", "6", "7"]  # then in start order; 2 never ran
    assert _peak_running(handler) <= 2


@pytest.mark.timeout(60)
def test_a_worker_killed_while_instances_wait_in_the_lane_loses_none_and_runs_none_twice(tmp_path: Path) -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    log = tmp_path / "runs.log"
    held, go = tmp_path / "held", tmp_path / "go"
    go.touch()
    with Session(max_workers=2) as session:
        victim = lane_tasks.gated.instance().start(str(log), "victim", str(held))
        other = lane_tasks.gated.instance().start(str(log), "other", str(held))
        rest = [lane_tasks.gated.instance().start(str(log), str(i), str(go)) for i in range(30)]
        handler.wait_for_status("running victim")
        handler.wait_for_status("running other")
        assert wait_until(lambda: session._slots.has_reserved, 10), "never queued ahead: any instance"
        pid = next(int(line.split()[2]) for line in log.read_text().splitlines() if line.startswith("run victim "))
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerDiedError):
            victim.result(timeout=RESULT_WAIT)
        held.touch()
        assert other.result(timeout=RESULT_WAIT) == "other"
        assert [f.result(timeout=RESULT_WAIT) for f in rest] == [str(i) for i in range(30)]
    runs = collections.Counter(line.split()[1] for line in log.read_text().splitlines() if line.startswith("run "))
    assert all(runs[str(i)] == 1 for i in range(30)), f"run twice or never: {runs}"


@pytest.mark.timeout(60)
def test_a_worker_whose_task_left_a_child_gives_its_claimed_successor_back(tmp_path: Path) -> None:
    # The worker sends the outcome with its claim of the next instance from the lane and
    # only then finds the child left behind: it exits, and the claimed instance, which
    # never began there, runs elsewhere, once.
    log = tmp_path / "runs.log"
    with Session(max_workers=2):
        futures = [
            lane_tasks.leaves_a_child_when_told.instance().start(str(log), str(i), i % 10 == 0) for i in range(40)
        ]
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == [str(i) for i in range(40)]
    runs = [line.split() for line in log.read_text().splitlines()]
    assert collections.Counter(label for _, label, _ in runs) == {str(i): 1 for i in range(40)}
    left = set()  # workers whose task left a child: none runs anything after that
    for _, label, pid in runs:  # in the order they ran
        assert pid not in left, f"instance {label} ran on a worker whose last task left a child"
        if int(label) % 10 == 0:
            left.add(pid)


@pytest.mark.timeout(60)
def test_an_instance_taken_from_the_lane_starts_in_the_parents_directory_whatever_the_last_one_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Lane jobs all carry the parent's directory; the worker changes back to it after
    # each task, so one that wandered off leaves nothing for the next.
    claims = _count_claims(monkeypatch)
    with Session(max_workers=2):
        futures = [lane_tasks.starts_in_then_wanders.instance().start(str(tmp_path)) for _ in range(60)]
        started_in = [f.result(timeout=RESULT_WAIT) for f in futures]
    assert claims["claimed"] > 0, "no worker ever took an instance from the lane"
    assert started_in == [os.getcwd()] * 60


# -- the lane itself --------------------------------------------------------------------------
@pytest.fixture
def lane() -> Any:
    ends = open_lane()
    assert ends is not None
    made: Lane[str] = Lane(*ends)
    yield made
    made.close()


def _put(lane: Lane[str], *names: str) -> None:
    assert lane.put([(name, name.encode()) for name in names], "/", []) == len(names)


def test_each_job_goes_to_one_reader_in_order_and_revoke_takes_back_only_what_none_took(lane: Lane[str]) -> None:
    _put(lane, "a", "b", "c", "d")  # one write, four packets
    taken = read_packet(lane.read_end)  # a worker takes the first
    assert taken is not None and taken[1] == b"a"
    assert lane.revoke() == ["b", "c", "d"]
    assert read_packet(lane.read_end) is None  # nothing left for anyone
    entry = lane.claimed(taken[0])  # the claim of the one taken still finds it
    assert entry is not None and entry.execution == "a"
    assert lane.idle


def test_a_job_too_large_for_one_packet_stops_the_batch_there(lane: Lane[str]) -> None:
    jobs = [("small", bytes(MAX_BODY)), ("big", bytes(MAX_BODY + 1)), ("after", b"")]
    assert lane.put(jobs, "/", []) == 1  # nothing after the one that cannot go: order is kept
    taken = read_packet(lane.read_end)
    assert taken is not None and taken[1] == bytes(MAX_BODY)
    assert read_packet(lane.read_end) is None


def test_the_lane_queues_no_more_than_its_pipe_holds(lane: Lane[str]) -> None:
    names = [str(i) for i in range(200)]
    queued = lane.put([(name, name.encode()) for name in names], "/", [])
    assert 16 <= queued < 200 and len(lane) == queued
    bodies = []
    while (taken := read_packet(lane.read_end)) is not None:
        bodies.append(taken[1].decode())
    assert bodies == names[:queued]  # every one whole, in order


def test_reconcile_gives_back_what_a_dead_worker_took_and_never_claimed(lane: Lane[str]) -> None:
    _put(lane, "a", "b", "c")
    first, second = read_packet(lane.read_end), read_packet(lane.read_end)
    assert first is not None and second is not None
    # a live worker is still between reading and writing down which: cannot tell yet
    assert lane.reconcile(lambda: [0, CLAIMING]) is None
    # the live worker wrote down the second: the first was the dead worker's
    assert lane.reconcile(lambda: [second[0] + 1, 0]) == ["a"]
    assert read_packet(lane.read_end) is not None  # "c" is still queued for the others
    entry = lane.claimed(second[0])
    assert entry is not None and entry.execution == "b"


def test_the_hint_a_worker_reads_is_up_exactly_while_jobs_may_be_queued(lane: Lane[str]) -> None:
    from numerous.tasks.backends.local._shm import Arena

    arena = Arena.create()
    worker_side = Arena.attach(os.dup(arena.fd))  # what the worker maps and reads
    try:
        lane.watch(arena)
        assert not worker_side.lane_may_hold_jobs  # nothing queued: a lone round trip reads no lane
        _put(lane, "a", "b")
        assert worker_side.lane_may_hold_jobs
        first = read_packet(lane.read_end)
        assert first is not None
        assert lane.claimed(first[0]) is not None
        assert worker_side.lane_may_hold_jobs  # "b" is still there
        assert lane.revoke() == ["b"]
        assert not worker_side.lane_may_hold_jobs  # taken back: empty
        _put(lane, "c")
        later = Arena.create()  # a worker spawned while a job waits sees the hint up at once
        try:
            lane.watch(later)
            assert later.lane_may_hold_jobs
            lane.unwatch(later)
        finally:
            later.retire()
        taken = lane.take_first()  # handed to a worker that had gone idle
        assert taken is not None and taken.execution == "c"
        assert not worker_side.lane_may_hold_jobs
        lane.unwatch(arena)
        _put(lane, "d")
        assert not worker_side.lane_may_hold_jobs  # a reader no longer watched is not written
    finally:
        worker_side._close()  # a worker never lets go of its arena; this test must
        arena.retire()


# -- Slots.reserve --------------------------------------------------------------------------
class _Task:
    def __init__(self, max_parallel: int) -> None:
        self.max_parallel = max_parallel


def _job(task: _Task, name: str) -> Job:
    return Job(name, name, b"", None, lambda job: None, None, None, task=task)  # type: ignore[arg-type]


def test_reserve_hands_out_the_job_that_would_run_next_only_while_nothing_can_run() -> None:
    a, b = _Task(max_parallel=2), _Task(max_parallel=1)
    slots = Slots(max_workers=3)
    a0, a1, a2, a3 = (_job(a, f"a{i}") for i in range(4))
    for job in (a0, a1, a2, a3):
        slots.add(job)
    assert slots.take_all() == [a0, a1]
    b0, b1 = _job(b, "b0"), _job(b, "b1")
    slots.add(b0)
    assert slots.reserve(a) is None  # b0 can run now: nothing is reserved while something can
    assert slots.take_all() == [b0]
    slots.add(b1)
    assert slots.reserve(a) is a2  # what an end of a0 or a1 lets in
    assert slots.reserve(b) is b1  # a3 is passed over at b0's end: a is full
    assert slots.reserve(a) is a3
    assert slots.reserve(a) is None  # nothing left
    slots.transfer(a0, a2)  # a0 ended, a2 took its slot: no count changed
    assert not slots.release(a0)
    assert slots.take() is None
    slots.give_back([a3])  # a3 back, ahead of every later job
    assert slots.release(a1)
    assert slots.take() is a3
    slots.give_back([b1])
    assert not slots.has_reserved
    assert slots.release(b0)
    assert slots.take() is b1


def test_a_job_of_another_task_first_in_line_is_never_passed_by_a_reservation() -> None:
    a, c = _Task(max_parallel=4), _Task(max_parallel=4)
    slots = Slots(max_workers=1)
    a0, c0, a1 = _job(a, "a0"), _job(c, "c0"), _job(a, "a1")
    for job in (a0, c0, a1):
        slots.add(job)
    assert slots.take_all() == [a0]
    assert slots.reserve(a) is None  # when a0 ends, c0 runs, not a1
    assert slots.release(a0)
    assert slots.take() is c0


def test_given_back_jobs_keep_their_places() -> None:
    a = _Task(max_parallel=1)
    slots = Slots(max_workers=None)
    jobs: List[Job] = [_job(a, f"a{i}") for i in range(4)]
    for job in jobs:
        slots.add(job)
    assert slots.take_all() == [jobs[0]]
    assert [slots.reserve(a), slots.reserve(a)] == jobs[1:3]
    slots.give_back([jobs[2], jobs[1]])
    assert slots.release(jobs[0])
    assert [slots.take(), slots.release(jobs[1]), slots.take()] == [jobs[1], True, jobs[2]]


def test_start_order_holds_when_each_start_adds_and_takes_at_once() -> None:
    # What start() does, one instance at a time: a task with some waiting takes its
    # place behind them; another task's instance runs if there is room for it.
    a, b = _Task(max_parallel=1), _Task(max_parallel=2)
    slots = Slots(max_workers=2)
    a0, a1, a2, b0, b1 = _job(a, "a0"), _job(a, "a1"), _job(a, "a2"), _job(b, "b0"), _job(b, "b1")
    assert slots.add_then_take_all(a0) == [a0]
    assert slots.add_then_take_all(a1) == []  # a runs max_parallel
    assert slots.add_then_take_all(a2) == []  # behind a1
    assert slots.add_then_take_all(b0) == [b0]  # b passes a1: a is full, a worker is free
    assert slots.add_then_take_all(b1, weight=1) == []  # no worker free
    assert slots.release(a0)
    assert slots.take_all() == [a1]  # first in start order, b1 after it
    assert slots.release(b0)
    assert slots.take_all() == [b1]
    assert slots.release(a1) and slots.release(b1)
    assert slots.take_all() == [a2]


def test_a_claim_slot_says_claiming_until_it_names_its_job_and_is_free_again_once_given_back() -> None:
    from numerous.tasks.backends.local._shm import PARENT_SLOTS, Arena

    arena = Arena.create()
    try:
        worker_side = Arena.attach(os.dup(arena.fd))
        slot = worker_side.begin_claim()
        assert slot is not None and slot >= PARENT_SLOTS  # never one the parent hands out
        assert arena.claim_words()[slot - PARENT_SLOTS] == CLAIMING
        leftover = worker_side.block(slot)
        leftover.write_progress(50.0, "from the last job")
        worker_side.end_claim(slot, 7)
        assert arena.claim_words()[slot - PARENT_SLOTS] == 8  # the job's number + 1
        block = arena.claimed_block(slot)
        assert block.read() == (0, None, None, False)  # zeroed for the job it took
        block.close()
        assert arena.claim_words()[slot - PARENT_SLOTS] == 0  # the worker may claim into it again
        leftover.close()
        worker_side._close()  # a worker never lets go of its arena; this test must
    finally:
        arena.retire()
