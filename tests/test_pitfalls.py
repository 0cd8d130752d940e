"""One test per pitfall of running tasks in worker processes, each reproduced while the
library was built (the sections below name them):

- the standard library's ``spawn`` re-runs ``__main__`` in every child, so an unguarded
  script fails; a function sent by value loses its file name (tracebacks);
- end of file on a pipe is not the death of its writer (a forked grandchild keeps it
  open), and joining a process before draining its pipe deadlocks past 64 KiB;
- a task may fork, and may leave a double-forked daemon behind;
- ``waitpid(-1)`` steals the exit status of the application's own subprocesses;
- Ctrl-C reaches the whole foreground process group, workers included;
- daemonic workers cannot start processes (a task opening a Session of its own);
- workers must see the parent's ``sys.path`` and working directory;
- a finished ``Process`` holds two descriptors until it is closed;
- ``PR_SET_PDEATHSIG`` follows the thread that spawned the worker, not the process;
- when the parent dies, everything it started must go with it, whenever it dies;
- finished instances must be freed by reference counting, not wait for a collection.

The README's "How it works" and "Known limits" say what the library does about each.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Dict, List, Set

import psutil
import pytest
from backend_tasks import (
    big_result,
    describe_process,
    double,
    exit_hard,
    forks_and_returns,
    forks_and_terminates_its_child,
    ignores_stop,
    is_dead,
    logs_around_a_fork,
    nested_session,
    sigint_survivor,
    starts_a_daemon,
    wait_for_file,
    wait_for_go,
    wait_until,
    whoami,
)

from numerous.tasks import Session, set_task_control_handler
from numerous.tasks.exceptions import WorkerDiedError
from numerous.tasks.testing import RecordingTaskControlHandler


def run_script(tmp_path: Path, code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=timeout)


def open_fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- stdlib spawn re-runs __main__ ---------------------------------------------------------
@pytest.mark.timeout(60)
def test_an_unguarded_script_runs_and_its_main_is_not_rerun(tmp_path: Path) -> None:
    result = run_script(
        tmp_path,
        """
        from numerous.tasks import Session, task

        with open("top-level-runs.txt", "a") as f:  # once per run of this file
            f.write("ran\\n")

        factor = 3

        def make(offset):
            def shifted(x):
                return x * factor + offset
            return task(name="shifted", max_parallel=3)(shifted)

        @task(max_parallel=3)
        def add(a, b):
            return a + b

        square = task(name="square", max_parallel=3)(lambda x: x * x)
        shifted = make(1)

        with Session():
            futures = [square.instance().start(n) for n in range(3)]
            futures += [shifted.instance().start(n) for n in range(3)]
            futures += [add.instance().start(n, 10) for n in range(3)]
            print([f.result(timeout=30) for f in futures])
        """,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "[0, 1, 4, 1, 4, 7, 10, 11, 12]\n"
    assert (tmp_path / "top-level-runs.txt").read_text() == "ran\n"  # workers never ran it


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


# -- pipe EOF is not death; join before draining deadlocks past 64 KiB ---------------------------
@pytest.mark.timeout(30)
def test_a_forked_grandchild_holding_the_pipe_does_not_delay_the_result() -> None:
    with Session():
        started = time.monotonic()
        grandchild = forks_and_returns.instance().start(3.0).result(timeout=20)
        took = time.monotonic() - started
        # The worker's process group went with it: the grandchild does not live out its 3 s.
        assert wait_until(lambda: is_dead(grandchild), 0.5)
    assert took < 1.5, f"took {took:.2f} s: the future waited for EOF, not for the worker's death"
    assert not psutil.pid_exists(grandchild)  # and it was reaped, not left a zombie


@pytest.mark.timeout(30)
def test_a_5_mb_result_arrives_intact() -> None:
    with Session():
        data, digest = big_result.instance().start(5 * 2**20).result(timeout=30)
    assert len(data) == 5 * 2**20
    assert hashlib.sha256(data).hexdigest() == digest


# -- a task that forks ----------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_task_may_fork_and_terminate_its_own_children() -> None:
    # Each forked child inherits the worker's signal handlers; they must not act there
    # (the SIGTERM handler signalled the worker's whole group, killing the task).
    hows = ["pool", "pool", "bare fork", "bare fork", "child returns"]
    with Session():
        futures = [forks_and_terminates_its_child.instance().start(how) for how in hows]
        results = [f.result(timeout=30) for f in futures]
    assert results == [55, 55, signal.SIGTERM, signal.SIGTERM, 0]


@pytest.mark.timeout(30)
def test_what_a_child_forked_by_a_task_logs_is_dropped_and_the_task_s_own_records_arrive() -> None:
    # The child shares the worker's pipe: a frame of its own would interleave with the
    # worker's and corrupt the stream, so its records go nowhere.
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session():
        future = logs_around_a_fork.instance().start(20_000)
        assert future.result(timeout=20) == 0
    assert recorder.logs_for(future) == ["before the fork", "after the fork"]


# -- a task that leaves a daemon ----------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.parametrize("then", ["return", "wait"])
def test_a_double_forked_daemon_of_a_task_dies_with_its_instance(tmp_path: Path, then: str) -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    pid_files = [str(tmp_path / f"daemon-{i}") for i in range(2)]
    with Session():
        instances = [starts_a_daemon.instance() for _ in pid_files]
        futures = [i.start(pid_file, then) for i, pid_file in zip(instances, pid_files)]
        daemons = [int(wait_for_file(f)) for f in pid_files]
        if then == "wait":  # deaf to the stop request: terminated with its tree
            for future in futures:
                recorder.wait_for_status(future, "ready")
            for instance in instances:
                instance.stop(timeout=0.1)
        for future in futures:
            assert future.wait_done(30)
    assert [f.status for f in futures] == (["completed"] * 2 if then == "return" else ["cancelled"] * 2)
    # Killed with their instance (the leak check below would also see any left behind).
    assert wait_until(lambda: all(is_dead(pid) for pid in daemons), 5), [
        describe_process(psutil.Process(p)) for p in daemons
    ]


# -- never waitpid(-1) --------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_the_applications_own_subprocesses_keep_their_exit_status() -> None:
    with Session(stop_grace=0.05):
        # Workers first: from here on this process is a child subreaper.
        warm = [double.instance().start(n) for n in range(2)]
        assert [f.result(timeout=30) for f in warm] == [0, 2]
        app_child = subprocess.Popen(["sh", "-c", "sleep 0.3; exit 7"])
        # An orphan of the application: it is re-parented to us; its status is the app's.
        spawner = subprocess.run(
            ["sh", "-c", "(sleep 0.4; exit 5) >/dev/null 2>&1 & echo $!"], capture_output=True, text=True, check=True
        )
        app_orphan = int(spawner.stdout)
        stopped = [ignores_stop.instance() for _ in range(3)]
        futures = [i.start() for i in stopped]
        futures += [double.instance().start(n) for n in range(4)]
        futures += [exit_hard.instance().start(0)]
        for instance in stopped:
            instance.stop()  # killed ~50 ms after starting: around the app child's exit
        assert all(future.wait_done(20) for future in futures)
        assert app_child.wait(timeout=20) == 7
        assert psutil.Process(app_orphan).ppid() == os.getpid()
        _, status = os.waitpid(app_orphan, 0)  # still ours to reap: the library left it
        assert os.waitstatus_to_exitcode(status) == 5
        assert [f.status for f in futures] == ["cancelled"] * 3 + ["completed"] * 4 + ["failed"]


# -- Ctrl-C reaches the whole foreground process group ------------------------------------------------
@pytest.mark.timeout(30)
def test_workers_have_their_own_process_group_and_survive_sigint(tmp_path: Path) -> None:
    pid_file, go = str(tmp_path / "pid"), str(tmp_path / "go")
    with Session():
        future = sigint_survivor.instance().start(pid_file, go)
        worker = int(wait_for_file(pid_file))
        assert os.getpgid(worker) == worker != os.getpgid(0)  # leads a group of its own
        assert os.getsid(worker) == worker != os.getsid(0)  # and a session: no terminal's Ctrl-C
        for _ in range(3):
            os.kill(worker, signal.SIGINT)
        Path(go).touch()
        outcome = future.result(timeout=20)
    assert outcome == {"survived": True, "child_default_sigint": True}


# -- workers must not be daemonic ------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_task_can_open_a_session_of_its_own() -> None:
    with Session():
        outer, inner, doubled = nested_session.instance().start(21).result(timeout=60)
    assert doubled == 42
    assert len({outer, inner, os.getpid()}) == 3  # the inner instance ran in a process of its own


# -- workers get the parent's view of the world ----------------------------------------------------
def test_workers_get_the_parents_sys_path_and_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Session():
        first = whoami.instance().start().result(timeout=30)
        assert (first["cwd"], first["sys_path"]) == (os.getcwd(), sys.path)
        # Changed after a worker exists: a warm worker must follow too.
        monkeypatch.chdir(tmp_path)
        monkeypatch.syspath_prepend(str(tmp_path / "extra"))
        expected = (str(tmp_path), list(sys.path))
        second = whoami.instance().start().result(timeout=30)
        fresh = whoami.instance(fresh_process=True).start().result(timeout=30)
    assert (second["cwd"], second["sys_path"]) == expected
    assert (fresh["cwd"], fresh["sys_path"]) == expected
    assert first["pid"] != os.getpid()


# -- a finished process holds fds until closed --------------------------------------------------------
@pytest.mark.timeout(60)
def test_thirty_sequential_instances_leave_the_fd_count_at_its_baseline() -> None:
    baseline = open_fd_count()
    counts: List[int] = []
    with Session():
        for n in range(30):
            if n == 15:
                with pytest.raises(WorkerDiedError):
                    exit_hard.instance().start(9).result(timeout=30)
            fresh = n % 6 == 0  # some in new processes, most in the warm one
            assert double.instance(fresh_process=fresh).start(n).result(timeout=30) == 2 * n
            if n:
                counts.append(open_fd_count())
    assert open_fd_count() == baseline
    assert len(set(counts)) == 1, counts  # no growth while the session is open either


# -- PR_SET_PDEATHSIG follows the thread -------------------------------------------------------------
@pytest.mark.timeout(30)
def test_workers_spawned_from_a_thread_that_ended_stay_alive() -> None:
    recorder = RecordingTaskControlHandler()
    set_task_control_handler(recorder)
    with Session(stop_grace=0.05):
        holder: List[Any] = []
        thread = threading.Thread(target=lambda: holder.append(ignores_stop.instance().start()))
        thread.start()
        thread.join()  # PDEATHSIG would fire now if this thread had spawned the worker
        future = holder[0]
        recorder.wait_for_status(future, "ready")
        assert not future.wait_done(0.3)  # still running
        future.cancel()
        assert future.wait_done(20)
        assert future.status == "cancelled"


# -- the parent dies: everything it started goes with it ----------------------------------------------------
PARENT = """
import json, os, subprocess, sys, time
from numerous.tasks import Session, task


def write_atomically(path, data):
    with open(path + ".tmp", "w") as f:
        json.dump(data, f)
    os.rename(path + ".tmp", path)


@task(max_parallel=2)
def long(how):
    pids = [os.getpid()]
    if how == "with-child":
        pids.append(subprocess.Popen(["sleep", "60"]).pid)
    if how == "with-deaf-detached-child":  # its own session, deaf to SIGTERM and SIGHUP
        deaf = "import signal, time; [signal.signal(s, signal.SIG_IGN) for s in (signal.SIGTERM, signal.SIGHUP)]; time.sleep(60)"
        pids.append(subprocess.Popen([sys.executable, "-c", deaf], start_new_session=True).pid)
    write_atomically(f"pids-{{os.getpid()}}.json", pids)
    if how == "stuck-in-c":
        sum(range(10**15))  # one C call that holds the GIL for hours
    time.sleep(60)


with Session():
    for how in {running!r}:
        long.instance().start(how)
    long.instance().start("plain")  # max_parallel=2: this one waits, pending
    while len([n for n in os.listdir(".") if n.startswith("pids-") and n.endswith(".json")]) < 2:
        time.sleep(0.005)
    write_atomically("parent.json", {{"pid": os.getpid()}})
    time.sleep(60)
"""


def _arenas_mapped_by(pid: int) -> int:
    with open(f"/proc/{pid}/maps") as f:
        return sum("/memfd:numerous-tasks-arena" in line for line in f)


def _alive(process: psutil.Process) -> bool:
    """Running and not a zombie; by handle, so a reused pid is not mistaken for it."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _kill_parent(tmp_path: Path, running: List[str], signum: int = signal.SIGKILL) -> Dict[str, Any]:
    """Run a parent with two running instances (``running``) and a pending one, kill it
    with ``signum``, and report what is left of its tree and blocks one second later."""
    (tmp_path / "parent.py").write_text(PARENT.format(running=running))
    parent = subprocess.Popen([sys.executable, "parent.py"], cwd=tmp_path)
    processes: List[psutil.Process] = []  # handles: safe to kill later even if a pid is reused
    blocks: Set[str] = set()
    try:
        wait_for_file(str(tmp_path / "parent.json"))
        workers = [json.loads(f.read_text()) for f in sorted(tmp_path.glob("pids-*.json"))]
        processes = [psutil.Process(pid) for group in workers for pid in group]
        assert all(_arenas_mapped_by(group[0]) == 1 for group in workers)  # control blocks, nameless
        blocks = {name for pid in [parent.pid] + [g[0] for g in workers] for name in _shm_mapped_by(pid)}
        parent.send_signal(signum)
        parent.wait()
        wait_until(lambda: not any(_alive(p) for p in processes), 1.0)
        # pid 1 here may never reap: a zombie is dead, but the report says which were left so.
        return {
            "processes": len(processes),
            "alive": [describe_process(p) for p in processes if _alive(p)],
            "zombies": [p.pid for p in processes if p.is_running() and not _alive(p)],
            "blocks_left": sorted(name for name in blocks if os.path.exists(f"/dev/shm/{name}")),
        }
    finally:
        parent.kill()
        parent.wait()
        for name in blocks:  # reported once by the test; not left for the next run
            if os.path.exists(f"/dev/shm/{name}"):
                os.unlink(f"/dev/shm/{name}")
        for process in processes:
            try:
                process.kill()  # a survivor: the test fails, but nothing is left running
            except psutil.NoSuchProcess:
                pass
            # The dead parent's orphans may have been re-parented to this process (a child
            # subreaper once numerous.tasks ran here): then they are this test's to reap.
            try:
                if process.ppid() == os.getpid():
                    os.waitpid(process.pid, 0)
            except (psutil.NoSuchProcess, ChildProcessError):
                pass


@pytest.mark.timeout(60)
def test_killing_the_parent_takes_every_worker_child_and_block_down(tmp_path: Path) -> None:
    left = _kill_parent(tmp_path, ["with-child", "plain"])
    assert left["processes"] == 3
    assert left["alive"] == [], f"still running 1 s after the parent died: {left}"
    assert left["blocks_left"] == [], f"control blocks left in /dev/shm: {left}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
@pytest.mark.parametrize("attempt", range(3))  # it was a race: lost about half the time
def test_killing_the_parent_takes_down_detached_grandchildren_deaf_to_sigterm_and_sighup(
    tmp_path: Path, signum: int, attempt: int
) -> None:
    left = _kill_parent(tmp_path, ["with-deaf-detached-child", "with-deaf-detached-child"], signum)
    assert left["processes"] == 4
    assert left["alive"] == [], f"still running 1 s after the parent died: {left}"


@pytest.mark.xfail(
    strict=True,
    reason="known limit: the worker's parent-death handler and watchdog are Python code and "
    "cannot run while a C call holds the GIL; needs a watchdog outside the worker (README, "
    "Known limits)",
)
@pytest.mark.timeout(60)
def test_killing_the_parent_takes_down_a_worker_stuck_in_c_code(tmp_path: Path) -> None:
    left = _kill_parent(tmp_path, ["stuck-in-c", "plain"])
    assert left["alive"] == [], f"still running 1 s after the parent died: {left}"


SLOW_START = """
import os, time
if os.environ.get("SLOW_WORKER_START"):  # set by the parent for its workers only
    time.sleep(float(os.environ["SLOW_WORKER_START"]))
"""

PARENT_OF_SLOW_WORKERS = """
import os, sys, time
from numerous.tasks import Session, task


@task(max_parallel=8)
def never_gets_to_run():
    time.sleep(60)


os.environ["SLOW_WORKER_START"] = sys.argv[1]
if os.environ.get("HOLD_THE_JOB"):  # the parent dies before it hands the job over
    from numerous.tasks.backends.local._dispatcher import LocalDispatcher

    LocalDispatcher._write_job = staticmethod(lambda worker, execution, slot: None)
with Session():
    for _ in range(int(sys.argv[2])):
        never_gets_to_run.instance(fresh_process=True).start()
    with open("started.tmp", "w") as f:
        f.write(str(time.monotonic()))
    os.rename("started.tmp", "started")
    time.sleep(60)
"""


def _shm_mapped_by(pid: int) -> List[str]:
    """The /dev/shm names process ``pid`` maps (the library's arenas are memfds: none)."""
    try:
        with open(f"/proc/{pid}/maps") as f:
            return [line.split("/dev/shm/")[1].split()[0] for line in f if "/dev/shm/" in line]
    except OSError:  # gone meanwhile
        return []


def _reap_orphans_of_the_dead(before: Set[int], limit: float) -> List[str]:
    """Wait for the processes re-parented to this one (a child subreaper) since ``before``
    to die, reaping them; describe those still alive after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        orphans = [p for p in psutil.Process().children() if p.pid not in before]
        alive = []
        for orphan in orphans:
            try:
                if orphan.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(orphan.pid, 0)
                else:
                    alive.append(orphan)
            except (psutil.NoSuchProcess, ChildProcessError):
                pass
        if not alive or time.monotonic() > deadline:
            for orphan in alive:  # the test fails; nothing is left running
                orphan.kill()
                os.waitpid(orphan.pid, 0)
            return [describe_process(p) for p in alive]
        time.sleep(0.005)


def _kill_parent_of_starting_workers(tmp_path: Path, env: Dict[str, str], args: List[str], delay: float) -> None:
    """Run PARENT_OF_SLOW_WORKERS, SIGKILL it ``delay`` s after its start() calls, and
    check that it and its workers mapped nothing of /dev/shm and that the workers exit."""
    (tmp_path / "parent.py").write_text(PARENT_OF_SLOW_WORKERS)
    children_before = {p.pid for p in psutil.Process().children()}
    parent = subprocess.Popen([sys.executable, "parent.py", *args], cwd=tmp_path, env=env)
    children_before.add(parent.pid)
    try:
        wait_for_file(str(tmp_path / "started"))
        time.sleep(delay)
        tree = [parent.pid] + [p.pid for p in psutil.Process(parent.pid).children()]
        mapped = {pid: _shm_mapped_by(pid) for pid in tree}
        parent.kill()
        parent.wait()
    finally:
        parent.kill()
        parent.wait()
        # Each worker wakes up an orphan (or never learns of its job), finds its parent gone and exits.
        survivors = _reap_orphans_of_the_dead(children_before, 5.0)
    assert {pid: names for pid, names in mapped.items() if names} == {}, "control blocks with names"
    assert survivors == [], f"workers alive 5 s after their parent died: {survivors}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("job", ["in the pipe", "never written"])
def test_killing_the_parent_while_its_worker_starts_leaves_nothing(tmp_path: Path, job: str) -> None:
    # A sitecustomize that holds every worker of this parent in its start-up for 1 s.
    (tmp_path / "sitecustomize.py").write_text(SLOW_START)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    if job == "never written":
        env["HOLD_THE_JOB"] = "1"
    _kill_parent_of_starting_workers(tmp_path, env, ["1.0", "1"], delay=0.0)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("delay", [0.01, 0.03, 0.06, 0.1])
def test_killing_the_parent_just_after_starting_eight_fresh_instances_leaves_nothing(
    tmp_path: Path, delay: float
) -> None:
    # The control blocks of instances whose workers never started used to stay in /dev/shm.
    _kill_parent_of_starting_workers(tmp_path, dict(os.environ), ["0", "8"], delay)


OUT_OF_DESCRIPTORS = """
import json, os, resource, sys
import psutil
from numerous.tasks import Session, task, wait

@task(max_parallel=50)
def quick(value):
    return value

names_before = set(os.listdir("/dev/shm"))
fds_before = len(os.listdir("/proc/self/fd"))
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
with Session(max_workers=None):  # fifty at once, whatever the CPUs
    futures = [quick.instance().start(i) for i in range(50)]
    wait(futures, timeout=60)
resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
print(json.dumps({
    "completed": sum(f.status == "completed" for f in futures),
    "errors": sorted({f"{type(f.error).__name__}: {f.error}" for f in futures if f.error is not None}),
    "children": len(psutil.Process().children(recursive=True)),
    "fds_grew_by": len(os.listdir("/proc/self/fd")) - fds_before,
    # Names our blocks would have (the fallback's nt_, shared_memory's psm_): other
    # processes on the machine (a benchmark running loky, say) make names of their own.
    "new_shm_names": sorted(n for n in set(os.listdir("/dev/shm")) - names_before if n.startswith(("nt_", "psm_"))),
}))
"""


@pytest.mark.timeout(90)
def test_running_out_of_file_descriptors_fails_instances_naming_emfile_and_leaves_nothing(tmp_path: Path) -> None:
    result = run_script(tmp_path, OUT_OF_DESCRIPTORS, timeout=80)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout.splitlines()[-1])
    assert outcome["completed"] >= 1, outcome  # those that got a worker ran
    assert outcome["errors"], outcome  # 50 workers cannot fit in 64 descriptors
    for error in outcome["errors"]:
        assert error.startswith("BackendError: cannot start a worker process for instance"), error
        assert "too many open files (EMFILE)" in error and "64 open at once (RLIMIT_NOFILE)" in error, error
        assert "no room" not in error and "/dev/shm" not in error
    assert (outcome["children"], outcome["new_shm_names"]) == (0, []), outcome
    assert outcome["fds_grew_by"] <= 0, outcome


# -- finished instances are freed by reference counting ----------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.task_backend("local", "inline")
def test_a_finished_instance_is_freed_without_the_garbage_collector(task_backend: str) -> None:
    # Thousands of short instances must not pile up in reference cycles that only a
    # full collection frees (memory, and long collection pauses in the user's program).
    gc.collect()
    gc.disable()
    try:
        with Session(backend=task_backend):
            instance = double.instance()
            future = instance.start(4)
            assert future.result(timeout=30) == 8
            stopped = wait_for_go.instance()
            stopped_future = stopped.start(str(Path("/nonexistent") / "never"))
            stopped.stop()
            stopped_future.wait_done(30)
            refs = [
                weakref.ref(obj)
                for obj in (
                    future,
                    instance.job,
                    instance.job.control,
                    stopped_future,
                    stopped.job,
                    stopped.job.control,
                )
            ]
            del instance, future, stopped, stopped_future
        alive = [ref() for ref in refs if ref() is not None]
        assert alive == []
    finally:
        gc.enable()
