"""Backend names: built-in, registered (instance or class), offered by an installed
package through the ``numerous.tasks.backends`` entry point group; which one a session
uses; and ``execute()`` on our own backends (numerous-sdk's ExecutionBackend)."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pytest
from registry_backends import CountingInline, OtherInline, pid, until_stopped, where

from numerous.tasks import (
    BackendError,
    LocalExecutionBackend,
    LocalFuture,
    Session,
    TaskCancelledError,
    UnknownBackendError,
    get_backend,
    register_backend,
    set_default_backend,
)
from numerous.tasks.backends.inline import InlineBackend
from numerous.tasks.backends.registry import ENTRY_POINT_GROUP

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def no_backend_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No $NUMEROUS_TASK_BACKEND, and the default put back to local afterwards."""
    monkeypatch.delenv("NUMEROUS_TASK_BACKEND", raising=False)
    try:
        yield
    finally:
        set_default_backend("local")


@pytest.fixture
def installed_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package installed on sys.path whose metadata offers three backends."""
    (tmp_path / "fake_numerous_backends.py").write_text(
        "from registry_backends import CountingInline as FakeBackend\n"
        "def broken():\n    raise RuntimeError('no cluster here')\n"
    )
    dist_info = tmp_path / "fake_numerous_backends-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-numerous-backends\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
            [{ENTRY_POINT_GROUP}]
            fake-ep = fake_numerous_backends:FakeBackend
            local = fake_numerous_backends:FakeBackend
            missing = fake_numerous_backends:NoSuchName
            broken = fake_numerous_backends:broken
            """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def test_an_installed_package_s_backend_is_found_through_its_entry_point(installed_package: None) -> None:
    before = len(CountingInline.made)
    with Session(backend="fake-ep"):
        assert where.instance().start().result() == os.getpid()  # inline: this process
    made = CountingInline.made[before:]
    assert len(made) == 1 and made[0].launched == ["where"] and made[0].shut_down == 1
    with pytest.raises(UnknownBackendError, match=r"valid backends: .*fake-ep"):
        with Session(backend="no-such"):
            where.instance()


def test_an_entry_point_cannot_shadow_a_built_in_name(installed_package: None) -> None:
    with Session(backend="local"):
        assert where.instance().start().result() != os.getpid()  # a worker process


def test_an_entry_point_that_fails_is_a_backend_error_naming_it(installed_package: None) -> None:
    with Session(backend="missing"):
        with pytest.raises(BackendError, match="'missing' backend's entry point"):
            where.instance()
    with Session(backend="broken"):
        with pytest.raises(RuntimeError, match="no cluster here"):
            where.instance()


def test_session_then_environment_then_default_then_local(
    no_backend_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    register_backend("counting", CountingInline)
    register_backend("other", OtherInline)

    def kinds_used() -> Any:
        counts = len(CountingInline.made), len(OtherInline.made)
        with Session():
            worker_pid = where.instance().start().result()
        if worker_pid != os.getpid():
            return "local"
        return "counting" if len(CountingInline.made) > counts[0] else "other"

    assert kinds_used() == "local"
    set_default_backend("counting")
    assert kinds_used() == "counting"
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "other")
    assert kinds_used() == "other"
    assert isinstance(get_backend(), OtherInline)
    with Session(backend="counting"):
        where.instance().start().result()
    assert CountingInline.made[-1].launched == ["where"]


def test_register_backend_refuses_what_is_not_a_backend() -> None:
    with pytest.raises(TypeError, match="not int"):
        register_backend("number", 42)
    with pytest.raises(TypeError, match="non-empty str"):
        register_backend("", CountingInline)
    register_backend("makes-junk", lambda: object())
    with Session(backend="makes-junk"):
        with pytest.raises(BackendError, match="'makes-junk' backend's factory"):
            where.instance()


def test_a_registered_instance_is_shared_by_sessions_and_shut_down_by_its_owner() -> None:
    backend = CountingInline()
    register_backend("shared", backend)
    try:
        for _ in range(2):
            with Session(backend="shared"):
                where.instance().start().result()
        assert backend.launched == ["where", "where"] and backend.shut_down == 0
        assert get_backend("shared") is backend
    finally:
        backend.shutdown()


def test_get_backend_makes_one_started_instance_per_registered_class() -> None:
    register_backend("one-per-process", OtherInline)
    first = get_backend("one-per-process")
    assert isinstance(first, OtherInline) and get_backend("one-per-process") is first
    register_backend("one-per-process", OtherInline)  # registering anew forgets it
    assert get_backend("one-per-process") is not first


# -- execute() on our own backends ---------------------------------------------------------------
def test_execute_gives_a_task_control_and_cancel_task_instance_stops_the_call() -> None:
    backend = InlineBackend()
    try:
        future: Any = LocalFuture()
        backend.execute(until_stopped, future, ("first",), {})
        assert future.instance_id
        assert backend.cancel_task_instance(future.instance_id) is True
        assert future.result(timeout=30) == "first stopped"
        assert backend.cancel_task_instance(future.instance_id) is False  # finished: forgotten
    finally:
        backend.shutdown()


def test_a_call_waiting_for_max_workers_is_cancelled_by_its_future_and_never_runs() -> None:
    backend = LocalExecutionBackend(max_workers=1)
    try:
        running: Any = LocalFuture()
        waiting: Any = LocalFuture()
        backend.execute(until_stopped, running, ("running",), {})
        backend.execute(pid, waiting, (), {})
        assert waiting.cancel() is True
        with pytest.raises(TaskCancelledError):
            waiting.result(timeout=1)
        assert running.cancel() is False  # running: asked to stop
        assert running.result(timeout=30) == "running stopped"
    finally:
        backend.shutdown()


def test_shutdown_without_wait_stops_what_runs_and_cancels_what_waits() -> None:
    backend = LocalExecutionBackend(max_workers=1)
    running: Any = LocalFuture()
    waiting: Any = LocalFuture()
    backend.execute(until_stopped, running, ("running",), {})
    backend.execute(pid, waiting, (), {})
    backend.shutdown(wait=False)
    assert waiting.status == "cancelled"
    assert running.done and running.status in ("completed", "cancelled")


def test_max_workers_must_be_a_positive_int() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        LocalExecutionBackend(max_workers=0)
    with pytest.raises(TypeError, match="int or None"):
        LocalExecutionBackend(max_workers="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="LocalFuture"):
        InlineBackend().execute(pid, object(), (), {})  # type: ignore[arg-type]
