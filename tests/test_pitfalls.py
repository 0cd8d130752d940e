"""One test per pitfall DESIGN.md lists as reproduced on this machine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import List, Set

import psutil
import pytest

from numerous.tasks import Session, set_task_control_handler

from task_helpers import (
    RecordingHandler,
    big_result,
    double,
    forks_and_returns,
    ignore_sigint_check,
    nested_session,
    stubborn,
    wait_for_file,
    whoami,
)


def run_script(tmp_path: Path, code: str, timeout: float = 60) -> subprocess.CompletedProcess:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=timeout
    )


@pytest.mark.timeout(60)
def test_unguarded_script_runs_and_its_main_is_not_rerun(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        from numerous.tasks import Session, task

        with open("top-level-runs.txt", "a") as f:
            f.write("ran\\n")

        factor = 3

        def make(offset):
            def shifted(x):
                return x * factor + offset
            return task(name="shifted")(shifted)

        square = task(name="square")(lambda x: x * x)

        with Session():
            print(make(1).instance().start(2).result(), square.instance().start(7).result())
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "7 49\n"
    assert (tmp_path / "top-level-runs.txt").read_text() == "ran\n"


@pytest.mark.timeout(60)
def test_tracebacks_of_tasks_from_a_script_point_at_the_script(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        import traceback
        from numerous.tasks import Session, task

        def helper(text):
            return int(text)  # the failing line

        @task
        def parse(text):
            return helper(text)

        with Session():
            try:
                parse.instance().start("not a number").result()
            except ValueError as error:
                print("".join(traceback.format_exception(type(error), error, error.__traceback__)))
        """,
    )
    assert result.returncode == 0, result.stderr
    script = str(tmp_path / "script.py")
    assert f'File "{script}", line 6, in helper' in result.stdout
    assert "return int(text)  # the failing line" in result.stdout
    assert f'File "{script}", line 10, in parse' in result.stdout
    assert "<dynamic-code>" not in result.stdout


@pytest.mark.timeout(30)
def test_worker_death_is_not_pipe_eof_a_forked_grandchild_holds_the_pipe() -> None:
    with Session():
        started = time.monotonic()
        assert forks_and_returns.instance().start(3.0).result(timeout=20) == "returned"
        assert time.monotonic() - started < 2.0  # not the grandchild's 3 s


def test_results_far_bigger_than_a_pipe_buffer_arrive_intact() -> None:
    with Session():
        data = big_result.instance().start(5 * 2**20).result(timeout=30)
    assert data == bytes(range(256)) * (5 * 2**20 // 256)


@pytest.mark.timeout(30)
def test_the_applications_own_subprocess_keeps_its_exit_code() -> None:
    with Session(stop_grace=0.05):
        app_child = subprocess.Popen(["sh", "-c", "sleep 0.5; exit 7"])
        stopped = [stubborn.instance() for _ in range(3)]
        futures = [i.start() for i in stopped] + [double.instance().start(n) for n in range(3)]
        for instance in stopped:
            instance.stop()
        for future in futures:
            future.wait_done(20)
        assert app_child.wait(timeout=20) == 7


@pytest.mark.timeout(30)
def test_workers_have_their_own_process_group_and_ignore_sigint(tmp_path: Path) -> None:
    pid_file, go = tmp_path / "pid", tmp_path / "go"
    with Session():
        future = ignore_sigint_check.instance().start(str(pid_file), str(go))
        wait_for_file(str(pid_file))
        worker = int(pid_file.read_text())
        assert os.getpgid(worker) == worker != os.getpgid(0)
        os.kill(worker, signal.SIGINT)
        go.touch()
        assert future.result(timeout=20) == "survived"


def test_a_task_can_open_a_session_of_its_own() -> None:
    with Session():
        assert nested_session.instance().start(21).result(timeout=60) == 42


def test_the_worker_gets_the_parents_sys_path_and_cwd() -> None:
    with Session():
        seen = whoami.instance().start().result(timeout=30)
    assert seen["cwd"] == os.getcwd()
    assert seen["sys_path"] == sys.path
    assert seen["pid"] != os.getpid()


def test_finished_instances_hold_no_file_descriptors() -> None:
    baseline = len(os.listdir("/proc/self/fd"))
    with Session():
        double.instance().start(0).result()
        in_session = len(os.listdir("/proc/self/fd"))  # the dispatcher's and an idle worker's
        for value in range(30):
            double.instance().start(value).result()
            assert len(os.listdir("/proc/self/fd")) == in_session
    assert len(os.listdir("/proc/self/fd")) == baseline


@pytest.mark.timeout(30)
def test_workers_spawned_from_a_thread_that_ended_stay_alive() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session(stop_grace=0.05):
        holder: List[object] = []
        thread = threading.Thread(target=lambda: holder.append(stubborn.instance()))
        thread.start()
        thread.join()
        instance = holder[0]
        spawner = threading.Thread(target=lambda: holder.append(instance.start()))  # type: ignore[attr-defined]
        spawner.start()
        spawner.join()  # PDEATHSIG would fire now if this thread had spawned the worker
        handler.wait_for_status("ready")
        future = holder[1]
        assert not future.done  # type: ignore[attr-defined]
        instance.stop()  # type: ignore[attr-defined]
        future.wait_done(20)  # type: ignore[attr-defined]
        assert future.status == "cancelled"  # type: ignore[attr-defined]


PARENT = """
import json, os, subprocess, sys, time
from numerous.tasks import Session, TaskControl, task

@task(max_parallel=2)
def long(tc: TaskControl, with_child: bool) -> None:
    pids = [os.getpid()]
    if with_child:
        pids.append(subprocess.Popen(["sleep", "60"]).pid)
    with open(f"pids-{os.getpid()}.tmp", "w") as f:
        json.dump(pids, f)
    os.rename(f"pids-{os.getpid()}.tmp", f"pids-{os.getpid()}.json")  # whole or not at all
    time.sleep(60)

with Session():
    long.instance().start(True)
    long.instance().start(False)
    time.sleep(60)
"""


@pytest.mark.timeout(60)
def test_killing_the_parent_takes_every_worker_and_child_and_block_down(tmp_path: Path) -> None:
    (tmp_path / "parent.py").write_text(PARENT)
    parent = subprocess.Popen([sys.executable, "parent.py"], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 30
        while len(list(tmp_path.glob("pids-*.json"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        files = list(tmp_path.glob("pids-*.json"))
        assert len(files) == 2
        pids = [pid for f in files for pid in json.loads(f.read_text())]
        assert len(pids) == 3
        blocks = _blocks_mapped_by([json.loads(f.read_text())[0] for f in files])
        assert len(blocks) == 2
        parent.kill()
        parent.wait()
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 1.0 and any(_alive(pid) for pid in pids):
            time.sleep(0.01)
        assert not [pid for pid in pids if _alive(pid)]
        assert not [name for name in blocks if os.path.exists(f"/dev/shm/{name}")]
    finally:
        parent.kill()
        parent.wait()
        # This process is a child subreaper (numerous.tasks made it one), so the dead
        # parent's orphans were re-parented here. They are this test's to reap: the
        # library reaps only what its own workers leave.
        for pid in pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _blocks_mapped_by(pids: List[int]) -> Set[str]:
    """Names of the control blocks these workers have mapped."""
    names = set()
    for pid in pids:
        with open(f"/proc/{pid}/maps") as f:
            names.update(line.split("/dev/shm/")[1].split()[0] for line in f if "/dev/shm/nt_" in line)
    return names
