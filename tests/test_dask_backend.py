"""What only the Dask backend has: its address, its cluster, its workers dying.

The backend-agnostic behaviour runs on both backends through the ``backend`` fixture
(test_future, test_stop, test_control, test_session, test_spec). These tests start
nothing in-process: the cluster is real ``dask scheduler`` / ``dask worker`` processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Iterator, List

import psutil
import pytest

pytest.importorskip("distributed")

import api_tasks
from backend_tasks import is_dead, wait_for_file, wait_until
from dask_cluster import DaskCluster, running_cluster
from dask_tasks import count_company, report_and_hold, size_of

from numerous.tasks import Session, WorkerDiedError, set_task_control_handler
from numerous.tasks.backends.dask._errors import DaskUnavailableError, DaskWorkerDiedError
from numerous.tasks.testing import RecordingTaskControlHandler

RESULT_WAIT = 30.0


@pytest.fixture
def on_dask(dask_cluster: DaskCluster, monkeypatch: pytest.MonkeyPatch) -> DaskCluster:
    """Sessions of this test run on the shared test cluster."""
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "dask")
    monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", dask_cluster.address)
    return dask_cluster


@pytest.fixture
def lone_worker_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaskCluster]:
    """A cluster of its own with one single-threaded worker, for tests that kill it."""
    with running_cluster(tmp_path / "cluster", workers=1, nthreads=1) as cluster:
        monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "dask")
        monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", cluster.address)
        yield cluster


# -- where the cluster is ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["dask", "remote"])
def test_a_missing_address_is_one_clear_error_at_the_first_instance(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", name)
    monkeypatch.delenv("NUMEROUS_DASK_ADDRESS", raising=False)
    with Session():  # entering needs no backend yet
        with pytest.raises(DaskUnavailableError, match="NUMEROUS_DASK_ADDRESS") as caught:
            api_tasks.double.instance()
    assert isinstance(caught.value, ConnectionError)


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("dask_cluster")  # distributed imported before the leak census
def test_an_unreachable_address_is_one_clear_error_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "dask")
    monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", f"tcp://127.0.0.1:{port}")
    monkeypatch.setenv("NUMEROUS_DASK_CONNECT_TIMEOUT", "1")
    started = time.monotonic()
    with Session():
        with pytest.raises(DaskUnavailableError) as caught:
            api_tasks.double.instance()
    message = str(caught.value)
    assert "NUMEROUS_DASK_ADDRESS" in message and f"127.0.0.1:{port}" in message
    assert time.monotonic() - started < 20


def test_the_remote_name_runs_on_the_cluster(on_dask: DaskCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "remote")
    with Session():
        assert api_tasks.double.instance().start(21).result(timeout=RESULT_WAIT) == 42


# -- stop, reports, limits, errors ---------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_stop_reaches_running_work_on_the_worker(on_dask: DaskCluster) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session():
        instance = report_and_hold.instance()
        future = instance.start()
        reported = recorder.wait_for(future, lambda event: event.status is not None, RESULT_WAIT)
        _, worker_pid, _task_pid = (reported.status or "").split()
        assert int(worker_pid) in {p.pid for p in on_dask.worker_processes()}  # it ran there
        asked = time.monotonic()
        instance.stop()
        assert future.result(timeout=RESULT_WAIT) == "stopped"
        took = time.monotonic() - asked
    assert took < 2.0, took
    assert instance.times.stop_requested_ns is not None and instance.times.finished_ns is not None


@pytest.mark.timeout(60)
def test_max_parallel_holds_across_the_cluster(on_dask: DaskCluster, tmp_path: Path) -> None:
    # 2 workers x 2 threads could run 4 at once; count_company has max_parallel=2.
    directory = tmp_path / "company"
    directory.mkdir()
    with Session():
        futures = [count_company.instance().start(str(directory), f"i{n}", 0.2) for n in range(6)]
        seen = [f.result(timeout=RESULT_WAIT) for f in futures]
    assert max(seen) == 2, seen  # two did run together, never three


@pytest.mark.timeout(60)
def test_logs_and_progress_of_concurrent_instances_arrive_complete_and_in_order(on_dask: DaskCluster) -> None:
    handler = api_tasks.RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        instances = [api_tasks.chatty.instance() for _ in range(2)]  # on either worker
        futures = [instance.start(300) for instance in instances]
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == [300, 300]
        for instance in instances:  # all there before result() returned
            logs = handler.of(instance.id, "log")
            assert [message for message, _, _ in logs] == [f"record {i}" for i in range(300)]
            assert handler.of(instance.id, "progress")[-1] == (100.0, "last words")
            assert handler.states(instance.id) == ["pending", "running", "completed"]
    pids = {pid for _, pid, _ in handler.calls}
    assert pids == {os.getpid()}  # every handler call ran here


def test_a_failure_shows_the_tasks_own_frames_and_none_of_dasks(on_dask: DaskCluster) -> None:
    with Session():
        future = api_tasks.fail_custom.instance().start("from the cluster", 7)
        with pytest.raises(api_tasks.CustomError) as caught:
            future.result(timeout=RESULT_WAIT)
    error = caught.value
    assert (str(error), error.code) == ("from the cluster", 7)
    frames = traceback.extract_tb(error.__traceback__)
    files = [frame.filename for frame in frames]
    assert any(name.endswith("api_tasks.py") for name in files)
    assert [frame.name for frame in frames][-2:] == ["fail_custom", "_raise_custom"]
    assert not any(f"{os.sep}distributed{os.sep}" in name for name in files), files


def test_a_large_argument_travels_scattered(on_dask: DaskCluster) -> None:
    data = os.urandom(3 << 20)  # above the scatter threshold: not inside the task graph
    with Session():
        assert size_of.instance().start(data).result(timeout=RESULT_WAIT) == len(data)


@pytest.mark.timeout(60)
def test_a_session_leaves_nothing_on_the_cluster(on_dask: DaskCluster) -> None:
    from distributed import Client

    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session():
        instances = [report_and_hold.instance() for _ in range(3)]
        futures = [instance.start() for instance in instances]
        for future in futures:
            recorder.wait_for(future, lambda event: event.status is not None, RESULT_WAIT)
        for instance in instances:
            instance.stop()
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == ["stopped"] * 3
    with Client(on_dask.address, set_as_default=False) as client:
        children = client.run(_children_of_the_worker)
        # Stop Events are cleared as instances end; the long polls on them (renewed
        # every EVENT_WAIT_RENEW s) end on the scheduler within that time.
        assert wait_until(lambda: not client.run_on_scheduler(_numerous_events_on_the_scheduler), 10), (
            client.run_on_scheduler(_numerous_events_on_the_scheduler)
        )
    assert children == {address: [] for address in on_dask.workers}  # warm task processes ended


def _children_of_the_worker() -> List[int]:
    import psutil

    return [p.pid for p in psutil.Process().children() if p.status() != psutil.STATUS_ZOMBIE]


def _numerous_events_on_the_scheduler(dask_scheduler: Any) -> List[str]:
    extension = dask_scheduler.extensions["events"]
    return sorted(name for name in extension._events if "numerous-tasks" in str(name))


# -- when things die ----------------------------------------------------------------------------------
@pytest.mark.timeout(90)
def test_a_worker_that_dies_fails_its_instance_naming_the_worker(lone_worker_cluster: DaskCluster) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    [(address, worker)] = lone_worker_cluster.workers.items()
    with Session():
        future = report_and_hold.instance().start()
        reported = recorder.wait_for(future, lambda event: event.status is not None, RESULT_WAIT)
        _, worker_pid, task_pid = (reported.status or "").split()
        assert int(worker_pid) == worker.pid
        os.kill(worker.pid, signal.SIGKILL)
        assert future.wait_done(RESULT_WAIT)
    error = future.error
    assert isinstance(error, DaskWorkerDiedError) and isinstance(error, WorkerDiedError)
    assert address in str(error) and error.worker == address
    assert "report_and_hold" in str(error)
    assert wait_until(lambda: is_dead(int(task_pid)), 10)  # the task's process went with it
    # The killed worker was this process's child, so its orphaned task process came to
    # this process (a child subreaper since its first session): reap that zombie here.
    try:
        os.waitpid(int(task_pid), 0)
    except ChildProcessError:  # it went elsewhere, or is reaped already
        pass


@pytest.mark.timeout(90)
def test_work_does_not_outlive_a_parent_that_was_killed(on_dask: DaskCluster, tmp_path: Path) -> None:
    pid_file, stopped_file = tmp_path / "pid", tmp_path / "stopped"
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, time
        from numerous.tasks import Session
        from dask_tasks import stop_marker
        with Session():
            stop_marker.instance().start({str(pid_file)!r}, {str(stopped_file)!r})
            while not os.path.exists({str(pid_file)!r}):
                time.sleep(0.01)
            os._exit(3)  # no goodbye: the scheduler sees the client vanish
    """)
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]))
    parent = subprocess.run([sys.executable, str(script)], env=env, timeout=60, capture_output=True, text=True)
    assert parent.returncode == 3, parent.stderr
    task_pid = int(wait_for_file(str(pid_file)))
    assert wait_for_file(str(stopped_file), 20) == "stopped"  # it was asked to stop
    assert wait_until(lambda: is_dead(task_pid), 10)
    # ...and reaped by the Dask worker's session, which closes when Dask drops the task:
    # nothing of it is left on the worker's machine, not even a zombie.
    assert wait_until(lambda: not psutil.pid_exists(task_pid), 10)


def test_handler_calls_happen_on_the_dispatcher_thread(on_dask: DaskCluster) -> None:
    names: List[str] = []

    class Names(api_tasks.RecordingHandler):
        def log(self, task_control: Any, message: str, level: str, **extra: Any) -> None:
            names.append(threading.current_thread().name)

    set_task_control_handler(Names())
    with Session():
        api_tasks.chatty.instance().start(3).result(timeout=RESULT_WAIT)
    assert set(names) == {"numerous-dask-dispatcher"}


@pytest.mark.timeout(180)
def test_the_dask_benchmark_smoke_run_writes_its_table(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS_DASK.md"
    bench = Path(__file__).resolve().parent.parent / "benchmarks" / "dask_bench.py"
    result = subprocess.run(
        [sys.executable, str(bench), "--smoke", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    assert "stop() → result()" in text and "plain client.submit" in text
