"""The numerous-tasks pytest plugin (registered as ``numerous_tasks`` through ``pytest11``).

Fixtures:
    task_backend: the name of the backend this test runs on; it is also put in
        ``$NUMEROUS_TASK_BACKEND`` for the test, so sessions your own code opens use it.
    task_session: an open Session on that backend. At the end of the test it fails the
        test (an error in its teardown) if an instance is still pending or running —
        those are then stopped — or if a worker process, ``/dev/shm`` block, file
        descriptor or library thread is left behind.
    recorded_task_control: a RecordingTaskControlHandler installed for the test.

Choosing backends:
    ``--task-backend inline`` (or ``local``, ``dask``; repeat it or separate names with
    commas, ``all`` for the three) runs every test that uses ``task_backend`` or
    ``task_session`` once per backend. Without the option: the ``task_backends`` ini
    setting, else ``$NUMEROUS_TASK_BACKEND``, else ``local``.
    ``@pytest.mark.task_backend("inline")`` pins a test to the backends it names,
    whatever the option says; ``pickle=False`` there passes arguments by reference on
    the inline backend. A backend that cannot run here (``dask`` without
    ``$NUMEROUS_DASK_ADDRESS``) skips its tests, saying why.

Nothing here is shared between pytest-xdist workers: each has its own sessions, and
every check looks at the worker's own processes, blocks and descriptors only.
"""

from __future__ import annotations

import importlib.util
import os
from typing import TYPE_CHECKING, Any, Iterator, List, Optional, Sequence

import pytest

if TYPE_CHECKING:
    from ..session import Session
    from .recording import RecordingTaskControlHandler

__all__ = [
    "KNOWN_BACKENDS",
    "TEARDOWN_STOP_GRACE",
    "recorded_task_control",
    "task_backend",
    "task_session",
]

#: Names ``--task-backend`` accepts (``dask`` also when this installation lacks it:
#: its tests are then skipped, not refused).
KNOWN_BACKENDS = ("local", "inline", "dask")
#: Seconds a task still running at the end of a test gets to return before it is
#: terminated: the test has failed already, so this only bounds the cleanup.
TEARDOWN_STOP_GRACE = 1.0
DASK_ADDRESS_ENV = "NUMEROUS_DASK_ADDRESS"
_MARKER = "task_backend"


# -- configuration --------------------------------------------------------------------------
def pytest_addoption(parser: pytest.Parser) -> None:
    """``--task-backend`` and the ini settings."""
    group = parser.getgroup("numerous-tasks", "numerous-tasks: testing tasks")
    group.addoption(
        "--task-backend",
        action="append",
        dest="task_backends",
        metavar="NAME[,NAME]",
        default=None,
        help="run tests that use task_backend/task_session on these backends (local, inline, "
        "dask, or all); repeatable. Default: the task_backends ini setting, else "
        "$NUMEROUS_TASK_BACKEND, else local.",
    )
    parser.addini(
        "task_backends",
        type="args",
        default=[],
        help="numerous-tasks: default backends for task_backend/task_session (e.g. local inline)",
    )
    parser.addini(
        "task_leak_checks",
        type="args",
        default=["instances", "children", "shm", "fds", "threads"],
        help="numerous-tasks: what task_session checks at the end of a test (instances children shm fds threads)",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; refuse an unknown backend name before collection."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(*names, pickle=None): run this test on these task backends only, whatever "
        "--task-backend says; pickle=False passes arguments by reference on the inline backend",
    )
    selected_backends(config)  # raises UsageError early


def selected_backends(config: pytest.Config) -> List[str]:
    """The backends tests run on when no marker pins them.

    Raises:
        pytest.UsageError: a name is not one of :data:`KNOWN_BACKENDS` (or ``all``).
    """
    given: Optional[Sequence[str]] = config.getoption("task_backends", None)
    source = "--task-backend"
    if not given:
        given, source = config.getini("task_backends"), "the task_backends ini setting"
    if not given:
        from ..backends.base import BACKEND_ENV

        given, source = [os.environ.get(BACKEND_ENV, "").strip() or "local"], f"${BACKEND_ENV}"
    names: List[str] = []
    for item in given:
        for name in (part.strip() for part in item.split(",")):
            expanded = list(KNOWN_BACKENDS) if name == "all" else [name] if name else []
            for one in expanded:
                _check_name(one, source)
                if one not in names:
                    names.append(one)
    return names or ["local"]


def _check_name(name: str, source: str) -> None:
    if name not in KNOWN_BACKENDS:
        raise pytest.UsageError(
            f"{source}: {name!r} names no task backend; use one of {', '.join(KNOWN_BACKENDS)} or all"
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test that uses ``task_backend`` once per selected (or pinned) backend."""
    if _MARKER not in metafunc.fixturenames:
        return
    for parametrize in metafunc.definition.iter_markers("parametrize"):
        argnames = parametrize.args[0] if parametrize.args else parametrize.kwargs.get("argnames", "")
        if _MARKER in ([n.strip() for n in argnames.split(",")] if isinstance(argnames, str) else argnames):
            return  # the test chose its backends itself
    marker = metafunc.definition.get_closest_marker(_MARKER)
    if marker is not None and marker.args:
        names: List[str] = []
        for name in marker.args:
            _check_name(name, f"@pytest.mark.{_MARKER} on {metafunc.definition.nodeid}")
            names.append(name)
    else:
        names = selected_backends(metafunc.config)
    metafunc.parametrize(_MARKER, names, indirect=True, ids=names)


# -- fixtures ---------------------------------------------------------------------------------
def backend_unavailable(name: str) -> Optional[str]:
    """Why backend ``name`` cannot run here, or None if it can."""
    from ..backends.base import BACKENDS

    if name not in BACKENDS:
        return f"the {name} task backend is not part of this numerous-tasks installation"
    if name == "dask":
        if not os.environ.get(DASK_ADDRESS_ENV):
            return f"the dask task backend needs ${DASK_ADDRESS_ENV} (a running scheduler's address)"
        if importlib.util.find_spec("distributed") is None:
            return "the dask task backend needs dask.distributed installed"
    return None


@pytest.fixture
def task_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The name of the task backend this test runs on (see the module docstring).

    It is also ``$NUMEROUS_TASK_BACKEND`` for the test's duration.
    """
    from ..backends.base import BACKEND_ENV

    name: str = getattr(request, "param", None) or selected_backends(request.config)[0]
    reason = backend_unavailable(name)
    if reason is not None:
        pytest.skip(reason)
    monkeypatch.setenv(BACKEND_ENV, name)
    marker = request.node.get_closest_marker(_MARKER)
    pickle = None if marker is None else marker.kwargs.get("pickle")
    if pickle is not None:
        from ..backends.inline import PICKLE_ENV

        monkeypatch.setenv(PICKLE_ENV, "1" if pickle else "0")
    return name


@pytest.fixture
def task_session(task_backend: str, request: pytest.FixtureRequest) -> Iterator[Session]:
    """An open Session on ``task_backend``, leak-checked at the end of the test."""
    from ..session import Session
    from .leaks import take_snapshot

    checks = set(request.config.getini("task_leak_checks"))
    before = take_snapshot()
    session = Session(name=f"pytest-{request.node.name}", backend=task_backend).__enter__()
    try:
        yield session
    finally:
        failed = request.node.stash.get(_CALL_FAILED, False)
        problems = close_checked(session, "instances" in checks and not failed)
    problems += before.leaks_since(checks)
    if problems:
        pytest.fail(
            f"task_session of {request.node.nodeid} on the {task_backend} backend:\n  " + "\n  ".join(problems),
            pytrace=False,
        )


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Remember whether the test itself failed: its own failure already explains the
    instances it left running, so task_session does not report them a second time."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed


def close_checked(session: Session, check_instances: bool = True) -> List[str]:
    """Leave ``session``; first stop what it still runs, and say so if ``check_instances``."""
    if not session.is_open:  # the test closed it itself
        return []
    unfinished = session.unfinished()
    if not unfinished:
        session.close()
        return []
    described = [f"instance {i.id} of task {i.task.name!r} ({i.status})" for i in unfinished]
    session.close(grace=min(session.stop_grace, TEARDOWN_STOP_GRACE))  # cancels the pending, stops the running
    if not check_instances:
        return []
    message = (
        "instances still pending or running at the end of the test (now stopped; wait for "
        f"their futures in the test): {described}"
    )
    return [message]


@pytest.fixture
def recorded_task_control() -> Iterator[RecordingTaskControlHandler]:
    """A RecordingTaskControlHandler installed for the test (the previous handler gets
    every call too, and is back in place afterwards)."""
    from ..control import set_task_control_handler
    from .recording import RecordingTaskControlHandler

    recorder = RecordingTaskControlHandler()
    previous = set_task_control_handler(recorder)
    recorder.forward_to = previous
    try:
        yield recorder
    finally:
        set_task_control_handler(previous)


def pytest_report_header(config: pytest.Config) -> Any:
    """Say which task backends this run uses."""
    return f"numerous-tasks: task backends {', '.join(selected_backends(config))}"
