"""Shared fixtures: every test is checked for leaked processes, blocks, fds and threads
(with the leak snapshot numerous.tasks.testing ships)."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

from numerous.tasks.control import get_task_control_handler, set_task_control_handler
from numerous.tasks.testing import take_snapshot

# A project of its own, installed and run in a temporary venv by test_sample_project.py.
collect_ignore = ["sample_project"]


@pytest.fixture(scope="session")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One real Dask cluster (a scheduler and 2 workers on 127.0.0.1) for the whole run."""
    pytest.importorskip("distributed")
    from dask_cluster import running_cluster

    with running_cluster(tmp_path_factory.mktemp("dask-cluster")) as cluster:
        yield cluster


@pytest.fixture(autouse=True)
def dask_address(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test on the ``dask`` task backend (the plugin's ``task_backend`` fixture, over
    the backends setup.cfg's ``task_backends`` lists) runs on the test cluster."""
    if _task_backend(request) == "dask":
        monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", request.getfixturevalue("dask_cluster").address)


def _task_backend(request: pytest.FixtureRequest) -> Optional[str]:
    callspec = getattr(request.node, "callspec", None)
    return None if callspec is None else callspec.params.get("task_backend")


def _uses_dask_cluster(request: pytest.FixtureRequest) -> bool:
    return _task_backend(request) == "dask" or "dask_cluster" in request.fixturenames


@pytest.fixture(autouse=True)
def no_leaks(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if it leaves child processes, /dev/shm blocks, fds or library
    threads (and clean up the processes and blocks, so one leak fails one test)."""
    if _uses_dask_cluster(request):  # started before the census: the cluster is no leak
        request.getfixturevalue("dask_cluster")
    before = take_snapshot()
    yield
    problems = before.leaks_since()
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


@pytest.fixture
def handler() -> Any:
    """A RecordingHandler (tests/api_tasks.py) installed as the task control handler."""
    from api_tasks import RecordingHandler

    recording = RecordingHandler()
    set_task_control_handler(recording)
    return recording


@pytest.fixture
def go(tmp_path: Path) -> Iterator[Path]:
    """A gate file; opened (created) at the end whatever happened, so no task waits on."""
    path = tmp_path / "go"
    yield path
    path.touch()
