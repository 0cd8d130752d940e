"""CPU and memory figures: read where the task's process runs, and shown by the display.

On the Dask backend the task's process is on a worker's host: the worker reads it and
sends the figures with the progress; the display in the parent shows those and never
reads that pid itself. Locally the display reads the process itself (test_display).
"""

from __future__ import annotations

import io
import logging
import math
import os
import socket
import threading
from typing import Any, Dict, List, Optional, Tuple

import psutil
import pytest
from rich.console import Console

from numerous.tasks import Session, TaskControl, set_task_control_handler
from numerous.tasks.control import (
    MIN_RESOURCE_INTERVAL,
    TaskControlHandler,
    get_task_control_handler,
    wanted_resource_interval,
)
from numerous.tasks.display import TaskDisplay
from numerous.tasks.resources import ProcessSampler, ResourceFigures

RESULT_WAIT = 30.0
MEGABYTES = 100  # what the Dask test's task holds


class FigureRecorder(TaskControlHandler):
    """A handler that wants figures (or not) and records every call, in order."""

    def __init__(self, interval: Optional[float] = None) -> None:
        self.interval = interval
        self.events: List[Tuple[str, str, Any]] = []  # (instance id, "figures" or a state, payload)
        self.changed = threading.Condition()

    def resource_sample_interval(self) -> Optional[float]:
        return self.interval

    def resources_sampled(self, task_control: TaskControl, figures: ResourceFigures) -> None:
        with self.changed:
            self.events.append((task_control.instance_id, "figures", figures))
            self.changed.notify_all()

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        with self.changed:
            self.events.append((task_control.instance_id, state, None))
            self.changed.notify_all()

    def update_status(self, task_control: TaskControl, status: str) -> None:
        with self.changed:
            self.events.append((task_control.instance_id, "status", status))
            self.changed.notify_all()

    def figures(self, instance_id: str) -> List[ResourceFigures]:
        with self.changed:
            return [payload for i, kind, payload in self.events if i == instance_id and kind == "figures"]


# -- reading a process ------------------------------------------------------------------------------
def test_a_process_sampler_reads_cpu_since_the_last_reading_and_rss() -> None:
    sampler = ProcessSampler(os.getpid())
    first = sampler.read()
    assert first.cpu_percent is None  # a percentage needs an interval
    assert first.rss_bytes is not None and first.rss_bytes > 1_000_000
    assert (first.pid, first.host) == (os.getpid(), socket.gethostname())
    sum(range(2_000_000))  # some CPU between the readings
    second = sampler.read()
    assert second.cpu_percent is not None and second.cpu_percent >= 0.0
    assert second.rss_bytes is not None


def test_a_process_that_is_gone_reads_as_nothing() -> None:
    import subprocess
    import sys

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert ProcessSampler(gone.pid, host="h").read() == ResourceFigures(None, None, gone.pid, "h")


# -- asking the handler ------------------------------------------------------------------------------
def test_by_default_no_handler_wants_figures() -> None:
    assert TaskControlHandler().resource_sample_interval() is None
    assert wanted_resource_interval(get_task_control_handler()) is None


@pytest.mark.parametrize(
    ("asked", "wanted"),
    [(None, None), (0.5, 0.5), (2, 2.0), (0.001, MIN_RESOURCE_INTERVAL)],
)
def test_the_interval_a_handler_asks_for_is_honoured_down_to_a_floor(asked: Any, wanted: Optional[float]) -> None:
    assert wanted_resource_interval(FigureRecorder(asked)) == wanted


@pytest.mark.parametrize("asked", [0, -1.0, math.nan, math.inf, True, "0.5"])
def test_a_bad_interval_means_no_figures_and_says_why(asked: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="numerous.tasks"):
        assert wanted_resource_interval(FigureRecorder(asked)) is None
    assert "resource_sample_interval() failed" in caplog.text
    assert repr(asked) in caplog.text


def test_a_handler_whose_interval_raises_gets_no_figures(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(TaskControlHandler):
        def resource_sample_interval(self) -> Optional[float]:
            raise RuntimeError("oops")

    with caplog.at_level(logging.ERROR, logger="numerous.tasks"):
        assert wanted_resource_interval(Broken()) is None
    assert "RuntimeError: oops" in caplog.text


def test_the_display_wants_figures_at_its_sample_interval_while_it_is_on() -> None:
    console = Console(file=io.StringIO(), width=100)
    previous = FigureRecorder(None)
    set_task_control_handler(previous)
    display = TaskDisplay(console=console, refresh_interval=None, sample_interval=0.3)
    assert display.resource_sample_interval() is None  # not entered: shows nothing
    with display:
        assert wanted_resource_interval(get_task_control_handler()) == 0.3
        previous.interval = 0.2  # the handler it passes calls on to wants them more often
        assert display.resource_sample_interval() == 0.2
    assert get_task_control_handler() is previous


# -- on the wire ---------------------------------------------------------------------------------
def test_figures_travel_in_a_topic_batch_in_order_with_the_other_items() -> None:
    from numerous.tasks.backends.dask._messages import Log, Progress, Running, decode_batch, encode_batch

    figures = ResourceFigures(12.5, 150_000_000, 4242, "node-7")
    items = [figures, Running("tcp://10.0.0.7:4000", 17, 4242), Progress(50.0, None), Log("hi", "info", {})]
    message = encode_batch("c0ffee", items)  # type: ignore[arg-type]
    assert set(message) == {"i", "b"} and isinstance(message["b"], bytes)  # msgpack-able
    instance_id, decoded = decode_batch(message)
    assert instance_id == "c0ffee"
    assert decoded == items
    assert type(decoded[0]) is ResourceFigures and decoded[0].host == "node-7"


def test_instance_specs_ask_for_no_figures_unless_told() -> None:
    from numerous.tasks.backends.dask._messages import InstanceSpec

    assert InstanceSpec("s", "i", "t", None, False, 5.0).resource_interval is None
    assert InstanceSpec("s", "i", "t", None, False, 5.0, 0.5).resource_interval == 0.5


class FakeWorker:
    def __init__(self) -> None:
        self.sent: List[Tuple[str, Dict[str, Any]]] = []

    def log_event(self, topic: str, message: Dict[str, Any]) -> None:
        self.sent.append((topic, message))


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An outbox of the Dask runner, flushed by hand (no forwarder thread here)."""
    from numerous.tasks.backends.dask import _runner

    class NoForwarder:
        def wake(self, outbox: Any) -> None:
            pass

    monkeypatch.setattr(_runner, "_forwarder", NoForwarder)
    return _runner._Outbox(FakeWorker(), "topic", "c0ffee")


def test_a_waiting_reading_is_replaced_by_a_newer_one_never_merged_with_progress(outbox: Any) -> None:
    from numerous.tasks.backends.dask._messages import Progress, decode_batch

    old, new = ResourceFigures(None, 1, 9, "h"), ResourceFigures(50.0, 2, 9, "h")
    outbox.put(old)
    outbox.put(new)  # latest wins, like progress
    outbox.put(Progress(10.0, "a"))
    outbox.put(ResourceFigures(60.0, 3, 9, "h"))
    outbox.flush()
    assert decode_batch(outbox.worker.sent[0][1])[1] == [new, Progress(10.0, "a"), ResourceFigures(60.0, 3, 9, "h")]


def test_the_worker_reports_the_first_reading_at_start_then_one_per_wait(outbox: Any) -> None:
    from numerous.tasks.backends.dask._runner import _ResourceReporter

    class EndsAfterThreeWaits:
        def __init__(self) -> None:
            self.timeouts: List[Optional[float]] = []

        def wait_done(self, timeout: Optional[float] = None) -> bool:
            self.timeouts.append(timeout)
            return len(self.timeouts) > 3

    reporter = _ResourceReporter(outbox, 0.25)
    reporter.start(os.getpid())
    assert [item.cpu_percent for item in outbox.items] == [None]
    outbox.flush()
    future = EndsAfterThreeWaits()
    reporter.wait(future)  # type: ignore[arg-type]
    assert future.timeouts == [0.25] * 4
    readings = outbox.items  # three, each replacing the one before (nothing flushed them)
    assert len(readings) == 1 and readings[0].pid == os.getpid() and readings[0].cpu_percent is not None


# -- the display -----------------------------------------------------------------------------------
class FakeSink:
    def __init__(self, process_id: int) -> None:
        self.process_id = process_id

    def should_stop(self) -> bool:
        return False


def test_the_display_shows_sent_figures_and_never_reads_that_process_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    read: List[int] = []
    monkeypatch.setattr("numerous.tasks.display._sampler.ProcessSampler", recording_sampler(read))
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120, height=20, color_system=None)
    display = TaskDisplay(console=console, refresh_interval=None)
    # A pid this machine can read (our own), so reading it here would succeed.
    remote = TaskControl("0123456789ab", "crunch", sink=FakeSink(os.getpid()))  # type: ignore[arg-type]
    local = TaskControl("ba9876543210", "crunch", sink=FakeSink(os.getpid()))  # type: ignore[arg-type]
    with display:
        for control in (remote, local):
            display.instance_state_changed(control, "pending", None)
        display.resources_sampled(remote, ResourceFigures(None, 250_000_000, 77, "node-7"))  # before "running"
        for control in (remote, local):
            display.instance_state_changed(control, "running", None)
        display.resources_sampled(remote, ResourceFigures(180.0, 300_000_000, 77, "node-7"))
        display._sample()
        display._sample()  # the second reading of the local one has a CPU %
        display.refresh()
        rows = {row.instance_id: row for row in display._board.rows.values()}
        assert (rows["0123456789ab"].cpu, rows["0123456789ab"].rss) == (180.0, 300_000_000)
        assert rows["ba9876543210"].cpu is not None  # read here
        screen = out.getvalue()
        assert "180% 300 MB" in screen
        for control in (remote, local):
            display.instance_state_changed(control, "completed", None)
    assert read == [os.getpid()]  # one sampler, for the local row only
    assert rows["0123456789ab"].peak_rss == 300_000_000


def recording_sampler(read: List[int]) -> Any:
    class RecordingSampler(ProcessSampler):
        def __init__(self, pid: int, host: Optional[str] = None) -> None:
            read.append(pid)
            super().__init__(pid, host)

    return RecordingSampler


# -- on a real Dask cluster ----------------------------------------------------------------------------
@pytest.fixture
def on_dask(dask_cluster: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "dask")
    monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", dask_cluster.address)
    return dask_cluster


@pytest.mark.timeout(90)
def test_on_dask_the_display_shows_figures_read_on_the_worker_from_the_tasks_process(
    on_dask: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dask_tasks import hold_memory_and_burn

    read_here: List[int] = []
    monkeypatch.setattr("numerous.tasks.display._sampler.ProcessSampler", recording_sampler(read_here))
    recorder = FigureRecorder()  # wants none itself: the display asks, and passes them on
    set_task_control_handler(recorder)
    console = Console(file=io.StringIO(), force_terminal=True, width=120, height=20)
    # Redrawing and sampling every 50 ms: had the display read the pid here, it would have.
    with TaskDisplay(console=console, refresh_interval=0.05, sample_interval=0.1) as display:
        with Session():
            instance = hold_memory_and_burn.instance()
            future = instance.start(MEGABYTES)

            def busy_and_holding() -> bool:
                return any(
                    f.cpu_percent and f.rss_bytes and f.rss_bytes > MEGABYTES * 1_000_000
                    for f in recorder.figures(instance.id)
                )

            with recorder.changed:
                assert recorder.changed.wait_for(busy_and_holding, RESULT_WAIT), recorder.events
            row = display._board.rows[instance.id]
            shown = (row.cpu, row.rss)
            # The process read is one a Dask worker started (for the body), not ours.
            sampled_pid = recorder.figures(instance.id)[0].pid
            assert psutil.Process(sampled_pid).ppid() in {p.pid for p in on_dask.worker_processes()}
            instance.stop()
            task_pid = future.result(timeout=RESULT_WAIT)
    figures = recorder.figures(instance.id)
    assert {(f.pid, f.host) for f in figures} == {(task_pid, socket.gethostname())}  # the task's own process
    assert shown[0] is not None and shown[0] > 0 and shown[1] is not None and shown[1] > MEGABYTES * 1_000_000
    assert read_here == []  # the display never read a pid here
    kinds = [kind for i, kind, _ in recorder.events if i == instance.id and kind in ("figures", "running")]
    assert kinds[:2] == ["figures", "running"]  # known to come from the worker from the start


@pytest.mark.timeout(60)
def test_on_dask_no_figures_are_read_or_sent_when_no_handler_wants_them(on_dask: Any) -> None:
    import api_tasks

    recorder = FigureRecorder(None)
    set_task_control_handler(recorder)
    with Session():
        instance = api_tasks.chatty.instance()
        assert instance.start(3).result(timeout=RESULT_WAIT) is not None
    assert recorder.figures(instance.id) == []
    assert [kind for i, kind, _ in recorder.events if i == instance.id][-1] == "completed"


@pytest.mark.parametrize(
    ("cpu", "rss", "shown"),
    [
        (100.0, 119_000_000, "100% 119 MB"),  # one busy core: the common case
        (1600.0, 9_999_000_000, "1600% 9999 MB"),
        (250.0, 12_345_000_000, "250% 12.3 GB"),
        (None, 512_000_000_000, "512 GB"),
    ],
)
def test_cpu_and_memory_are_shown_uncut(cpu: Optional[float], rss: int, shown: str) -> None:
    from cli_tasks import screen

    from numerous.tasks.display._render import frame
    from numerous.tasks.display._rows import Board

    board = Board()
    board.started_at = 0.0
    row = board.row("crunch", "0123456789ab")
    board.set_state(row, "running", 0.0)
    row.take_figures(cpu, rss)
    out = io.StringIO()
    Console(file=out, width=100, force_terminal=True).print(frame(board, 1.0, 100, 20))
    line = screen(out.getvalue())[0].rstrip()
    assert line.endswith(f"  {shown}") and "…" not in line


def test_the_recording_handler_passes_the_figures_wish_and_the_figures_on() -> None:
    from numerous.tasks.testing import RecordingTaskControlHandler

    behind = FigureRecorder(0.5)
    recording = RecordingTaskControlHandler(forward_to=behind)
    assert recording.resource_sample_interval() == 0.5
    assert RecordingTaskControlHandler().resource_sample_interval() is None
    control = TaskControl("0123456789ab", "crunch", sink=FakeSink(1))  # type: ignore[arg-type]
    figures = ResourceFigures(10.0, 1, 1, "h")
    recording.resources_sampled(control, figures)
    assert behind.figures("0123456789ab") == [figures]
