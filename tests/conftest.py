"""Shared fixtures: every test is checked for leaked processes, blocks, fds and threads."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, Iterator, List, Set

import psutil
import pytest
from backend_tasks import describe_process

from numerous.tasks.backends.local._shm import linked_blocks
from numerous.tasks.control import get_task_control_handler, set_task_control_handler

# A project of its own, installed and run in a temporary venv by test_sample_project.py.
collect_ignore = ["sample_project"]

SHM_DIR = "/dev/shm"
SHM_PREFIX = "nt_"
# Threads that live as long as the process by design.
PROCESS_LIFETIME_THREADS = {"numerous-spawner"}


def shm_blocks() -> Set[str]:
    """Control blocks this process created that are still in /dev/shm.

    Only this process's own: other test runs on the machine (tox envs, xdist workers)
    create and remove blocks of their own at the same time.
    """
    present = {name for name in os.listdir(SHM_DIR) if name.startswith(SHM_PREFIX)}
    return present & linked_blocks()


def open_fds() -> Set[int]:
    """This process's open file descriptors."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def child_processes() -> List[psutil.Process]:
    """Every live descendant of this process."""
    return [p for p in psutil.Process().children(recursive=True) if p.is_running()]


def library_threads() -> Set[str]:
    """Names of the library's threads that should not outlive a session."""
    return {
        t.name
        for t in threading.enumerate()
        if t.name.startswith("numerous-") and t.name not in PROCESS_LIFETIME_THREADS
    }


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real Dask cluster (a scheduler and 2 workers on 127.0.0.1) for the whole run."""
    pytest.importorskip("distributed")
    from dask_cluster import running_cluster

    with running_cluster(tmp_path_factory.mktemp("dask-cluster")) as cluster:
        yield cluster


@pytest.fixture(params=["local", "dask"])
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once per backend (chosen through NUMEROUS_TASK_BACKEND)."""
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", request.param)
    if request.param == "dask":
        monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", request.getfixturevalue("dask_cluster").address)
    return str(request.param)


@pytest.fixture(params=["local", "inline", "dask"])
def every_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once per backend, the inline one included."""
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", request.param)
    if request.param == "dask":
        monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", request.getfixturevalue("dask_cluster").address)
    return str(request.param)


def _uses_dask_cluster(request: pytest.FixtureRequest) -> bool:
    callspec = getattr(request.node, "callspec", None)
    params = callspec.params if callspec is not None else {}
    uses_dask_backend = "dask" in (params.get("backend"), params.get("every_backend"))
    return uses_dask_backend or "dask_cluster" in request.fixturenames


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves child processes, /dev/shm blocks, fds or threads."""
    if _uses_dask_cluster(request):  # started before the census: the cluster is no leak
        request.getfixturevalue("dask_cluster")
    children_before = {p.pid for p in child_processes()}
    blocks_before = shm_blocks()
    fds_before = open_fds()
    yield
    leaked_children = [p for p in child_processes() if p.pid not in children_before]
    leaked_described = [describe_process(p) for p in leaked_children]
    for process in leaked_children:  # clean up so one leak does not fail every later test
        try:
            process.kill()
        except psutil.Error:
            pass
    leaked_blocks = shm_blocks() - blocks_before
    for name in leaked_blocks:
        os.unlink(os.path.join(SHM_DIR, name))
    leaked_fds = open_fds() - fds_before
    problems = []
    if leaked_children:
        problems.append(f"child processes left running: {leaked_described}")
    if leaked_blocks:
        problems.append(f"/dev/shm blocks left behind: {sorted(leaked_blocks)}")
    if leaked_fds:
        details = {}
        for fd in leaked_fds:
            try:
                details[fd] = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                details[fd] = "?"
        problems.append(f"file descriptors left open: {details}")
    if library_threads():
        problems.append(f"library threads still running: {sorted(library_threads())}")
    if problems:
        pytest.fail("leak check failed:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(autouse=True)
def restore_handler() -> Iterator[None]:
    """Put back the process's task control handler after each test."""
    handler = get_task_control_handler()
    yield
    set_task_control_handler(handler)


@pytest.fixture
def sigint_reaches_children() -> Iterator[None]:
    """Processes the test starts get SIGINT at its default disposition, so the Ctrl-C it
    sends them lands, even when this test run ignores SIGINT (pytest started in the
    background by a non-interactive shell or ``nohup``): an ignored signal stays ignored
    across ``exec``, while a handled one is reset to the default."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)
