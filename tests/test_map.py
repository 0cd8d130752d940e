"""task.map(): order, unordered, option checks, max_parallel, fail fast or collect,
stopping (stop(), break, an exception, the session, Ctrl-C), what handlers hear, and
what runs inside a chunk."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Dict, List, Optional

import map_tasks
import psutil
import pytest
from api_tasks import WAIT_LIMIT
from map_tasks import MapRecorder, ran
from test_session import _intervals, _peak_overlap

from numerous.tasks import (
    Session,
    SessionNotFoundError,
    TaskCancelledError,
    TaskControl,
    TaskMap,
    WorkerDiedError,
    set_task_control_handler,
)
from numerous.tasks._map_chunk import MapChunk
from numerous.tasks.maps import MapProgress

#: Not on the inline backend: there a stopped chunk returns within a millisecond, and a
#: chunk the map thread is starting at the moment the map stops can take the slot it
#: frees and run (a race of the map engine that the process backends' latency hides;
#: the tests below count the items that ran).
NO_INLINE_RACE = pytest.mark.task_backend("local", "dask")

NOTES = sys.version_info >= (3, 11)  # exceptions carry notes (PEP 678) from 3.11


def _recorder() -> MapRecorder:
    recorder = MapRecorder()
    set_task_control_handler(recorder)
    return recorder


def _frames(error: BaseException) -> List[str]:
    return [frame.name for frame in traceback.extract_tb(error.__traceback__)]


# -- values, in order or not ------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_values_come_in_input_order_and_each_chunk_is_one_instance(task_backend: str) -> None:
    recorder = _recorder()
    with Session():
        values = list(map_tasks.square.map(range(1000), chunksize=64))
    assert values == [n * n for n in range(1000)]
    chunks = recorder.chunk_ids()
    assert len(chunks) == 16  # ceil(1000 / 64) instances, no more
    for chunk in chunks:
        assert recorder.states(chunk) == ["pending", "running", "completed"]
    final = recorder.maps[-1]
    assert (final.state, final.total, final.started, final.done, final.failed) == ("completed", 1000, 1000, 1000, 0)


@pytest.mark.timeout(60)
def test_several_iterables_go_in_step_and_the_shortest_ends_the_map() -> None:
    with Session():
        assert list(map_tasks.add.map(range(10), itertools.count(100), chunksize=3)) == [n + 100 + n for n in range(10)]
        assert list(map_tasks.add.map([1, 2], [10, 20, 30])) == [11, 22]


@pytest.mark.timeout(60)
def test_an_input_without_len_is_read_lazily_and_its_total_known_at_its_end() -> None:
    recorder = _recorder()
    read: List[int] = []

    def numbers() -> Any:
        for n in range(100):
            read.append(n)
            yield n

    with Session():
        values = map_tasks.square.map(numbers(), chunksize=2)
        assert len(read) < 100  # the first chunk only, so far, or a window's worth
        assert list(values) == [n * n for n in range(100)]
    assert recorder.maps[0].total is None
    assert recorder.maps[-1].total == 100


@pytest.mark.timeout(60)
def test_unordered_yields_values_as_their_chunks_finish(tmp_path: Path) -> None:
    log = str(tmp_path / "runs.log")
    go_a, go_b = tmp_path / "go-a", tmp_path / "go-b"
    with Session():
        values = map_tasks.gated.map(
            itertools.repeat(log), [str(go_a), str(go_b)], ["a", "b"], chunksize=1, ordered=False
        )
        go_b.touch()  # "b" finishes first although "a" comes first in the input
        assert next(values) == "b"
        go_a.touch()
        assert list(values) == ["a"]


@pytest.mark.timeout(60)
def test_an_empty_input_gives_nothing_and_the_map_completes() -> None:
    recorder = _recorder()
    with Session():
        values = map_tasks.square.map([])
        assert list(values) == []
        assert values.done and values.status == "completed"
    assert [p.state for p in recorder.maps] == ["running", "completed"]


# -- checks -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "options, error, message",
    [
        ({"chunksize": 0}, ValueError, "chunksize must be at least 1, not 0"),
        ({"chunksize": -5}, ValueError, "chunksize must be at least 1, not -5"),
        ({"chunksize": 2.5}, TypeError, "chunksize must be an int, not float"),
        ({"chunksize": "10"}, TypeError, "chunksize must be an int, not str"),
        ({"chunksize": True}, TypeError, "chunksize must be an int, not bool"),
        ({"ordered": "yes"}, TypeError, "ordered must be True or False, not str"),
        ({"errors": "ignore"}, ValueError, "errors must be 'raise' .* or 'return' .*, not 'ignore'"),
        ({"errors": None}, TypeError, "errors must be 'raise' or 'return', not NoneType"),
    ],
)
def test_bad_options_are_typed_errors_naming_the_option(options: Dict[str, Any], error: type, message: str) -> None:
    with Session():
        with pytest.raises(error, match=message):
            map_tasks.square.map(range(3), **options)


def test_no_iterable_or_a_value_that_is_not_iterable_is_a_type_error() -> None:
    with Session():
        with pytest.raises(TypeError, match=r"square.map\(\) needs at least one iterable"):
            map_tasks.square.map()
        with pytest.raises(TypeError, match=r"argument 2 of add.map\(\) must be iterable, not int"):
            map_tasks.add.map(range(3), 7)


def test_a_map_outside_a_session_says_how_to_open_one() -> None:
    with pytest.raises(SessionNotFoundError, match="with Session"):
        map_tasks.square.map(range(3))


@pytest.mark.timeout(60)
def test_a_first_item_that_does_not_fit_the_function_or_cannot_be_pickled_raises_in_the_call() -> None:
    recorder = _recorder()
    with Session():
        with pytest.raises(TypeError, match="task 'add' cannot be started with these arguments"):
            map_tasks.add.map(range(3))  # add takes two
        with pytest.raises(TypeError, match="cannot be pickled"):
            map_tasks.square.map([threading.Lock()])
    assert [p.state for p in recorder.maps if p.finished] == ["failed", "failed"]


# -- max_parallel -------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_chunks_take_the_task_s_max_parallel_slots(task_backend: str, tmp_path: Path) -> None:
    recorder = _recorder()
    log = tmp_path / "runs.log"
    go = tmp_path / "go"
    labels = [str(i) for i in range(6)]
    with Session():
        values = map_tasks.gated.map(itertools.repeat(str(log)), itertools.repeat(str(go)), labels, chunksize=1)
        recorder.wait_for_status("running 0")
        recorder.wait_for_status("running 1")
        other = map_tasks.gated.instance().start(str(log), str(go), "other")  # queues behind the map's chunks
        assert other.status == "pending"
        assert sorted(line.split()[1] for line in log.read_text().splitlines()) == ["0", "1"]  # no third
        running = [c for c in recorder.chunk_ids() if "running" in recorder.states(c)]
        assert len(running) == 2  # gated has max_parallel=2: the other chunks wait
        go.touch()
        assert list(values) == labels
        assert other.result(timeout=WAIT_LIMIT) == "other"
    _, intervals = _intervals(log)
    assert _peak_overlap(intervals) == 2


# -- errors ----------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_errors_raise_stops_the_map_at_the_first_exception(task_backend: str, tmp_path: Path) -> None:
    recorder = _recorder()
    with Session():
        values = map_tasks.fails_on.map(range(100), itertools.repeat(37), chunksize=10)
        with pytest.raises(ValueError, match="item 37 is bad") as caught:
            list(values)
        assert values.wait_done(WAIT_LIMIT)
        assert values.status == "failed"
        assert next(values, "over") == "over"  # a map that raised is over
    assert "fails_on" in _frames(caught.value)  # the worker's frame, in map_tasks.py
    if NOTES:
        assert "in fails_on.map(): input item 37" in caught.value.__notes__
    final = recorder.wait_for_map_end()
    assert final.state == "failed" and final.error is caught.value


@pytest.mark.timeout(90)
def test_errors_return_runs_every_item_and_yields_each_exception_in_its_place(task_backend: str) -> None:
    with Session():
        values = list(map_tasks.fails_on.map(range(30), itertools.repeat(7), chunksize=4, errors="return"))
    assert values[:7] == list(range(7)) and values[8:] == list(range(8, 30))
    error = values[7]
    assert isinstance(error, ValueError) and str(error) == "item 7 is bad"
    assert "fails_on" in _frames(error)
    if NOTES:
        assert "in fails_on.map(): input item 7" in error.__notes__


@pytest.mark.timeout(60)
def test_a_chunk_whose_worker_dies_fails_the_map_or_yields_its_error_for_each_of_its_items() -> None:
    with Session():
        with pytest.raises(WorkerDiedError) as caught:
            list(map_tasks.dies_on.map(range(20), itertools.repeat(5), chunksize=4))
        values = list(map_tasks.dies_on.map(range(20), itertools.repeat(5), chunksize=4, errors="return"))
    if NOTES:
        assert "in dies_on.map(): the chunk of input items 4-7" in caught.value.__notes__
    assert values[:4] == [0, 1, 2, 3] and values[8:] == list(range(8, 20))
    assert all(isinstance(v, WorkerDiedError) for v in values[4:8])


@pytest.mark.timeout(60)
def test_an_input_that_raises_fails_the_map_with_its_own_error() -> None:
    def numbers() -> Any:
        yield from range(25)
        raise OSError("the input broke")

    with Session():
        values = map_tasks.square.map(numbers(), chunksize=10)
        with pytest.raises(OSError, match="the input broke"):
            list(values)
        assert values.wait_done(WAIT_LIMIT) and values.status == "failed"


@pytest.mark.timeout(60)
def test_a_later_item_that_cannot_be_pickled_fails_its_chunk() -> None:
    items: List[Any] = [1, 2, 3, 4, threading.Lock(), 6]
    with Session():
        with pytest.raises(TypeError, match="cannot be pickled"):
            list(map_tasks.square.map(items, chunksize=2))
        values = list(map_tasks.square.map(items, chunksize=2, errors="return"))
    assert values[:4] == [1, 4, 9, 16]
    assert all(isinstance(v, TypeError) for v in values[4:])


@pytest.mark.timeout(90)
@NO_INLINE_RACE
def test_errors_raise_cancels_the_waiting_chunks_and_stops_the_running_ones(task_backend: str, tmp_path: Path) -> None:
    recorder = _recorder()
    ran_dir = tmp_path / "ran"
    ran_dir.mkdir()
    started = time.monotonic()
    with Session():
        values = map_tasks.fails_then_blocks.map(itertools.repeat(str(ran_dir)), range(200), chunksize=1)
        with pytest.raises(ValueError, match="item 0 is bad"):
            list(values)
    final = recorder.wait_for_map_end()
    assert time.monotonic() - started < WAIT_LIMIT / 2  # nobody waited for a blocked item's limit
    assert len(ran(str(ran_dir))) <= 2  # at most the one running next to item 0, and its successor
    assert final.state == "failed" and final.done < 5
    chunks = recorder.chunk_ids()
    ended = [recorder.states(c)[-1] for c in chunks]
    assert ended.count("cancelled") >= len(chunks) - 3  # never ran: cancelled while waiting


@pytest.mark.timeout(60)
def test_an_item_stopping_its_own_chunk_fails_the_map_or_yields_task_cancelled_for_the_rest() -> None:
    with Session():
        with pytest.raises(TaskCancelledError, match=r"stops_itself.map\(\): items 11-19 did not run"):
            list(map_tasks.stops_itself.map(range(30), chunksize=10))
        values = list(map_tasks.stops_itself.map(range(30), chunksize=10, errors="return"))
    assert values[:11] == list(range(11)) and values[20:] == list(range(20, 30))
    assert all(isinstance(v, TaskCancelledError) for v in values[11:20])


# -- stopping ---------------------------------------------------------------------------------
def _blocking_map(ran_dir: Path, first_blocking: int, items: int = 100) -> TaskMap[int]:
    """Items below ``first_blocking`` return at once; the others run until stopped."""
    ran_dir.mkdir(exist_ok=True)
    return map_tasks.blocks_from.map(
        itertools.repeat(str(ran_dir)), itertools.repeat(first_blocking), range(items), chunksize=1
    )


@pytest.mark.timeout(90)
@NO_INLINE_RACE
def test_breaking_out_of_the_loop_cancels_waiting_chunks_and_stops_running_ones(
    task_backend: str, tmp_path: Path
) -> None:
    recorder = _recorder()
    started = time.monotonic()
    with Session():
        for value in _blocking_map(tmp_path / "ran", first_blocking=1):
            assert value == 0
            break  # items 1 and 2 are running (or about to): they are stopped, the rest cancelled
        final = recorder.wait_for_map_end()
    assert time.monotonic() - started < WAIT_LIMIT / 2
    assert final.state == "cancelled" and final.stop_requested
    assert len(ran(str(tmp_path / "ran"))) <= 2  # max_parallel=2: no more than two ever ran
    for chunk in recorder.chunk_ids():
        assert recorder.states(chunk)[-1] in ("completed", "cancelled")


@pytest.mark.timeout(60)
def test_an_exception_in_the_loop_body_stops_the_map(tmp_path: Path) -> None:
    recorder = _recorder()
    with Session():
        with pytest.raises(RuntimeError, match="my own bug"):
            for _ in _blocking_map(tmp_path / "ran", first_blocking=1):
                raise RuntimeError("my own bug")
        final = recorder.wait_for_map_end()
    assert final.state == "cancelled"


@pytest.mark.timeout(60)
def test_stop_yields_what_ran_then_raises_task_cancelled(tmp_path: Path) -> None:
    recorder = _recorder()
    with Session():
        values = _blocking_map(tmp_path / "ran", first_blocking=3)
        assert [next(values) for _ in range(3)] == [0, 1, 2]
        recorder.wait_for_status("blocked 3")
        values.stop()
        rest: List[int] = []
        with pytest.raises(TaskCancelledError, match=r"blocks_from.map\(\) was stopped: \d+ items ran"):
            for value in values:
                rest.append(value)
        assert values.wait_done(WAIT_LIMIT)
        assert values.status == "cancelled" and values.progress.done < 10
        assert next(values, "over") == "over"
    assert rest[0] == -3  # item 3 saw should_stop and returned: its value is there
    assert rest == sorted(rest, reverse=True) and all(v < 0 for v in rest)  # in input order, then the gap
    assert recorder.map_states() == ["running", "cancelled"]


@pytest.mark.timeout(60)
def test_leaving_a_with_block_stops_what_is_left(tmp_path: Path) -> None:
    with Session():
        with _blocking_map(tmp_path / "ran", first_blocking=2) as values:
            assert next(values) == 0
        assert values.wait_done(WAIT_LIMIT) and values.status == "cancelled"


@pytest.mark.timeout(60)
def test_a_map_kept_in_a_variable_runs_on_after_a_break_and_the_session_waits_for_it() -> None:
    with Session():
        values = map_tasks.square.map(range(500), chunksize=50)
        for value in values:
            assert value == 0
            break
    assert values.done and values.status == "completed"
    assert list(values) == [n * n for n in range(1, 500)]  # kept: the rest is still there


@pytest.mark.timeout(60)
def test_leaving_the_session_normally_waits_for_a_map_nobody_iterated() -> None:
    recorder = _recorder()
    with Session():
        map_tasks.square.map(range(2000), chunksize=100)  # dropped at once, never iterated
    final = recorder.maps[-1]
    assert (final.state, final.done) == ("completed", 2000)


@pytest.mark.timeout(60)
def test_leaving_the_session_by_an_exception_stops_the_map(tmp_path: Path) -> None:
    recorder = _recorder()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with Session():
            values = _blocking_map(tmp_path / "ran", first_blocking=0)
            recorder.wait_for_status("blocked 0")
            raise KeyboardInterrupt  # what Ctrl-C raises
    assert time.monotonic() - started < WAIT_LIMIT / 2
    assert values.done and values.status == "cancelled"
    with pytest.raises(TaskCancelledError):
        list(values)


CTRL_C_SCRIPT = (
    map_tasks.SLOW_TASK_SCRIPT
    + """
try:
    with Session(stop_grace=float(sys.argv[1])):
        for value in slow.map(range(1000), chunksize=1):
            print("got", value, flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
"""
)


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("sigint_reaches_children")
def test_ctrl_c_while_iterating_stops_every_chunk_and_leaves_no_process(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(CTRL_C_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, "script.py", "5"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while len(psutil.Process(process.pid).children()) < 2:  # both chunks running
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.01)
        workers = [p.pid for p in psutil.Process(process.pid).children()]
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        process.kill()
    assert out.endswith("interrupted\n"), out + err
    assert "Traceback" not in err, err
    assert elapsed < 5  # the chunks saw should_stop: no grace period ran out
    assert not [pid for pid in workers if psutil.pid_exists(pid)]


# -- what handlers hear -----------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_handlers_hear_of_each_chunk_before_its_instance_and_of_the_end_after_every_chunk() -> None:
    recorder = _recorder()
    with Session():
        values = map_tasks.square.map(range(100), chunksize=10)
        assert list(values) == [n * n for n in range(100)]
        assert values.wait_done(WAIT_LIMIT)
    timeline = recorder.snapshot()  # instance events and map reports, in the order they came
    assert recorder.maps[0].state == "running" and recorder.maps[-1].state == "completed"
    assert all(p.map_id == values.id and p.task_name == "square" and p.chunksize == 10 for p in recorder.maps)
    dones = [p.done for p in recorder.maps]
    assert dones == sorted(dones)  # in order: never goes back
    assert recorder.maps[-1].chunks == {} and recorder.maps[-1].done == 100
    listed: Dict[str, int] = {}  # chunk id -> where a map report first listed it
    for position, event in enumerate(timeline):
        if event.kind == "map":
            for chunk in event.payload.chunks:
                listed.setdefault(chunk, position)
        elif event.kind == "state" and event.payload == "pending":
            assert listed.get(event.instance_id, position) < position, "a chunk reported 'pending' unlisted"
        elif event.kind == "state" and event.payload == "completed":
            last_report = max(i for i, e in enumerate(timeline) if e.kind == "map")
            assert position < last_report  # the map's end comes after every chunk's
    assert len(listed) == 10
    assert set(recorder.map_threads[1:-1]) <= {f"numerous-map-{values.id}", threading.current_thread().name}
    assert recorder.map_threads[0] == threading.current_thread().name  # the first: in task.map()


def test_map_progress_describes_itself() -> None:
    progress = MapProgress("a1", "square", "running", None, 1200, 1000, 3, 100, {"c1": 100, "c2": 100}, False)
    assert progress.describe() == "1,000/1,200+ items done, 3 failed, 2 chunks running"
    assert not progress.finished
    done = MapProgress("a1", "square", "completed", 10, 10, 10, 0, 5, {}, False)
    assert done.describe() == "10/10 items done" and done.finished


# -- inside a chunk ------------------------------------------------------------------------
class _Sink:
    """A chunk's control channel, recorded (``MapChunk.run`` runs here, in this process)."""

    def __init__(self, stop_after: Optional[int] = None) -> None:
        self.process_id = os.getpid()
        self.calls: List[Any] = []
        self.stop = False

    def should_stop(self) -> bool:
        return self.stop

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        self.calls.append(("log", message, level, extra))

    def update_progress(self, progress: float, status: Optional[str]) -> None:
        self.calls.append(("progress", progress, status))

    def update_status(self, status: str) -> None:
        self.calls.append(("status", status))

    def request_stop(self) -> None:
        self.stop = True


def test_a_task_control_in_a_chunk_names_the_task_logs_the_item_and_scales_progress() -> None:
    sink = _Sink()
    control = TaskControl("c0ffee", "reports", sink=sink)  # type: ignore[arg-type]
    outcome = MapChunk([7, 8], 40, star=False, return_errors=False).run(map_tasks.reports, control)
    assert outcome.values == [7, 8] and outcome.errors is None
    logs = [c for c in sink.calls if c[0] == "log"]
    assert logs == [("log", "item 7", "info", {"map_item": 40}), ("log", "item 8", "info", {"map_item": 41})]
    progress = [c[1:] for c in sink.calls if c[0] == "progress"]
    # 50% of the first of two items is 25% of the chunk; the chunk's own reports after
    # each block of items (1, then 1: the block doubles only after fast blocks) say 50, 100.
    assert progress[0] == (25.0, "half of 7")
    assert progress[-1] == (100.0, None)
    assert (75.0, "half of 8") in progress


def test_a_chunk_checks_should_stop_between_items_and_returns_what_ran() -> None:
    sink = _Sink()
    control = TaskControl("c0ffee", "stops_itself", sink=sink)  # type: ignore[arg-type]
    outcome = MapChunk(list(range(10, 20)), 10, star=False, return_errors=False).run(map_tasks.stops_itself, control)
    assert outcome.values == [10]  # item 10 asked to stop: the first block is one item


@pytest.mark.timeout(60)
def test_the_plugin_s_recorder_keeps_each_map_s_reports(task_session: Session, recorded_task_control: Any) -> None:
    values = map_tasks.square.map(range(50), chunksize=10)
    assert list(values) == [n * n for n in range(50)]
    assert values.wait_done(WAIT_LIMIT)
    reports = recorded_task_control.map_reports(values)
    assert reports[0].state == "running" and reports[-1].state == "completed" and reports[-1].done == 50
    assert recorded_task_control.map_reports() == reports
    assert len(recorded_task_control.states_for(map_tasks.square)) == 5 * 3  # 5 chunks: instances


@pytest.mark.timeout(60)
def test_the_default_handler_logs_how_far_a_map_is_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    set_task_control_handler(None)  # the default: the numerous.tasks logger
    caplog.set_level(logging.DEBUG, logger="numerous.tasks")
    with Session():
        values = map_tasks.square.map(range(20), chunksize=5)
        assert list(values) == [n * n for n in range(20)]
    records = [r for r in caplog.records if r.getMessage().startswith("map ")]
    assert records[0].getMessage().startswith("map running: 0/20 items done")
    assert records[-1].getMessage() == "map completed: 20/20 items done"
    assert (records[-1].task_name, records[-1].instance_id) == ("square", values.id)  # type: ignore[attr-defined]
