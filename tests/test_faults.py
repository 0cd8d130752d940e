"""Faults and bad input: races, odd text, floods, closed stdio, Ctrl-C, security, leaks."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Dict, List

import psutil
import pytest
from api_tasks import RecordingHandler
from fault_tasks import (
    child_fds,
    closes_stdio,
    connections_of_worker,
    quick,
    report_status,
    returns_soon,
    runs_subprocess,
)

from numerous.tasks import BackendError, Session, TaskCancelledError, set_task_control_handler
from numerous.tasks.backends.local._shm import STATUS_CAPACITY


@pytest.mark.timeout(60)
def test_a_stop_racing_completion_leaves_exactly_one_final_state() -> None:
    callbacks: Dict[str, int] = {}
    lock = threading.Lock()

    def count(future: Any) -> None:
        with lock:
            callbacks[repr(future)] = callbacks.get(repr(future), 0) + 1

    with Session(stop_grace=0.0):
        runs = []
        for i in range(24):
            instance = returns_soon.instance()
            future = instance.start(0.002 * (i % 12))
            future.add_done_callback(count)
            runs.append((instance, future))
        for instance, _ in runs:
            instance.stop(timeout=0)
        for _, future in runs:
            future.wait_done(30)
    for _, future in runs:
        assert future.status in ("completed", "cancelled")
        if future.status == "completed":
            assert future.result() == "returned"
        else:
            with pytest.raises(TaskCancelledError):
                future.result()
    assert sorted(callbacks.values()) == [1] * 24


def test_status_text_of_any_size_and_any_unicode_travels_safely() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    texts = ["😀" * 30_000, "x" * 100_000, "lone \udc80 surrogate", "ünï €"]
    with Session():
        instances = [report_status.instance() for _ in texts]
        lengths = [i.start(t).result(timeout=30) for i, t in zip(instances, texts)]
    assert lengths == [len(t) for t in texts]
    seen = {e.instance_id: e.payload for e in handler.events if e.kind == "status"}
    for instance, text in zip(instances, texts):
        status = seen[instance.id]
        if len(text.encode("utf-8", "surrogatepass")) > STATUS_CAPACITY:
            assert status.endswith("…") and text.startswith(status[:-1])
            assert len(status.encode("utf-8", "surrogatepass")) <= STATUS_CAPACITY
        else:
            assert status == text


@pytest.mark.timeout(60)
def test_tasks_flooding_stdout_and_stderr_finish(tmp_path: Path) -> None:
    script = tmp_path / "flood.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import sys
            sys.path.insert(0, {str(Path(__file__).parent)!r})
            from numerous.tasks import Session
            from fault_tasks import floods
            with Session():
                print(floods.instance().start(4).result(), file=sys.stderr)
            """
        )
    )
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=50)
    assert result.returncode == 0
    assert len(result.stdout) == 4 * 2**20
    assert result.stderr.endswith("flooded\n") and len(result.stderr) == 4 * 2**20 + len("flooded\n")


def test_a_task_that_closes_its_stdio_still_reports_and_returns() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        instance = closes_stdio.instance()
        assert instance.start().result(timeout=30) == "still here"
    assert [message for message, _, _ in handler.of(instance.id, "log")] == ["before closing", "after closing"]


def test_the_tasks_subprocesses_inherit_no_library_descriptor() -> None:
    with Session():
        fds = child_fds.instance().start().result(timeout=30)
    assert fds == [0, 1, 2, 3]  # stdio, and the descriptor listing /proc/self/fd


def test_a_tasks_own_subprocess_keeps_its_exit_status() -> None:
    with Session():
        assert runs_subprocess.instance().start(7).result(timeout=30) == 7


def test_the_local_backend_opens_no_network_connection_or_listener() -> None:
    connections = getattr(psutil.Process(), "net_connections", None) or psutil.Process().connections
    with Session():
        worker_side = connections_of_worker.instance().start().result(timeout=30)
        parent_side = connections(kind="inet")
    assert worker_side == {"inet": []}
    assert parent_side == []


def test_no_memory_for_a_workers_control_blocks_fails_that_instance_saying_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(fd: int, offset: int, length: int) -> None:
        raise OSError(28, "No space left on device")

    with Session():
        with monkeypatch.context() as patch:
            patch.setattr(os, "posix_fallocate", no_space)
            future = quick.instance().start(1)  # needs a new worker, and its arena
            with pytest.raises(BackendError, match=r"cannot start a worker process for .* no memory .*No space left"):
                future.result(timeout=30)
        assert quick.instance().start(2).result(timeout=30) == 2


@pytest.mark.timeout(120)
def test_a_few_hundred_instances_leave_nothing_behind() -> None:
    me = psutil.Process()

    def census() -> Dict[str, float]:
        return {
            "fds": me.num_fds(),
            "threads": threading.active_count(),
            "children": len(me.children(recursive=True)),
            "rss_mb": me.memory_info().rss / 2**20,
        }

    with Session():
        [quick.instance().start(i).result() for i in range(8)]  # warm up imports and threads
    before = census()
    with Session():
        for batch in range(25):
            futures = [quick.instance().start(batch * 8 + i) for i in range(8)]
            assert [f.result(timeout=30) for f in futures] == list(range(batch * 8, batch * 8 + 8))
    after = census()
    assert {k: after[k] - before[k] for k in ("fds", "threads", "children")} == {
        "fds": 0,
        "threads": 0,
        "children": 0,
    }
    assert after["rss_mb"] - before["rss_mb"] < 20


CTRL_C_SCRIPT = """
import os, sys, time
from numerous.tasks import Session, TaskControl, task

@task(max_parallel=2)
def cooperative(tc: TaskControl, name: str) -> str:
    open(name, "w").close()
    while not tc.should_stop:
        time.sleep(0.005)
    return "stopped"

@task
def stubborn(tc: TaskControl, name: str) -> None:
    open(name, "w").close()
    while True:
        time.sleep(0.01)

futures = []
try:
    with Session(stop_grace=float(sys.argv[1]), max_workers=None):  # three run at once, whatever the CPUs
        futures.append(cooperative.instance().start("ready-1"))
        futures.append(cooperative.instance().start("ready-2"))
        futures.append(cooperative.instance().start("never"))  # pending: max_parallel=2
        futures.append(stubborn.instance().start("ready-3"))
        for f in futures:
            f.result()
except KeyboardInterrupt:
    print("interrupted", flush=True)
print(" ".join(f.status for f in futures), flush=True)
"""


def _run_until_ready(tmp_path: Path, grace: float) -> subprocess.Popen:
    (tmp_path / "script.py").write_text(CTRL_C_SCRIPT)
    process = subprocess.Popen(
        [sys.executable, "script.py", str(grace)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"ready-{i}").exists() for i in (1, 2, 3)):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.01)
    return process


def _worker_pids(parent: int) -> List[int]:
    return [p.pid for p in psutil.Process(parent).children()]


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("sigint_reaches_children")
def test_first_ctrl_c_stops_gracefully_and_cancels_pending(tmp_path: Path) -> None:
    process = _run_until_ready(tmp_path, grace=0.5)
    try:
        workers = _worker_pids(process.pid)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert out == "interrupted\ncompleted completed cancelled cancelled\n"
    assert "KeyboardInterrupt" not in err and "Traceback" not in err
    assert not (tmp_path / "never").exists()
    assert not [pid for pid in workers if psutil.pid_exists(pid)]


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("sigint_reaches_children")
def test_second_ctrl_c_terminates_at_once(tmp_path: Path) -> None:
    process = _run_until_ready(tmp_path, grace=60.0)
    try:
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)  # let the first one be handled: the cooperative tasks return
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
        elapsed = time.monotonic() - started
    finally:
        process.kill()
    assert out.endswith("completed completed cancelled cancelled\n")
    assert elapsed < 5  # not the 60 s grace
    assert "Traceback" not in err.replace("KeyboardInterrupt", "")


def test_a_queued_instance_that_cannot_get_a_worker_when_its_turn_comes_fails_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from backend_tasks import wait_for_go

    handler = RecordingHandler()
    set_task_control_handler(handler)
    go = tmp_path / "go"
    with Session(max_workers=None):  # eight run at once, whatever the CPUs
        running = [wait_for_go.instance().start(str(go)) for _ in range(8)]  # max_parallel=8
        handler.wait_for(lambda e: e.kind == "status" and e.payload == "ready", count=8)
        queued = wait_for_go.instance(fresh_process=True).start(str(go), "late")  # a new worker
        assert queued.status == "pending"

        def no_space(fd: int, offset: int, length: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(os, "posix_fallocate", no_space)
        go.touch()
        assert [f.result(timeout=30) for f in running] == [None] * 8
        with pytest.raises(BackendError, match="no memory for its process or its control blocks"):
            queued.result(timeout=30)
        monkeypatch.undo()
        assert quick.instance().start(3).result(timeout=30) == 3


def test_a_worker_that_cannot_be_started_fails_only_its_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    from numerous.tasks.backends.local import _dispatcher

    def cannot_spawn(reusable: bool, lane_fd: int = -1) -> None:
        raise OSError(11, "Resource temporarily unavailable")

    with Session():
        monkeypatch.setattr(_dispatcher, "start_worker_process", cannot_spawn)
        future = quick.instance(fresh_process=True).start(1)
        with pytest.raises(BackendError, match=r"no process could be created \(EAGAIN") as caught:
            future.result(timeout=30)
        assert isinstance(caught.value.__cause__, OSError)
        monkeypatch.undo()
        assert quick.instance().start(2).result(timeout=30) == 2
