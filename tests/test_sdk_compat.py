"""Code written against numerous-sdk's ``numerous.tasks`` runs unchanged (issue 17).

Written from the list of that module's public names and their meaning, not from this
library's internals: every test uses only those names (and the environment variable
``NUMEROUS_TASK_BACKEND``). Tests that run tasks run on the local backend, and on the
inline one where that is cheap.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
import re
import uuid
from pathlib import Path
from typing import Any, List

import pytest
import sdk_tasks
from sdk_tasks import Recorder, ThreadBackend

pytestmark = pytest.mark.timeout(90)

PUBLIC_NAMES = [
    "task",
    "Task",
    "TaskInstance",
    "TaskConfig",
    "TaskControl",
    "Session",
    "Future",
    "LocalFuture",
    "TaskStatus",
    "TaskError",
    "MaxInstancesReachedError",
    "SessionNotFoundError",
    "SessionError",
    "TaskCancelledError",
    "BackendError",
    "TaskDefinitionError",
    "ExecutionBackend",
    "register_backend",
    "get_backend",
    "set_default_backend",
    "LocalExecutionBackend",
    "set_task_control_handler",
    "LocalTaskControlHandler",
    "PoCMockRemoteTaskControlHandler",
]

MODULES = {
    "numerous.tasks.task": ["task", "Task", "TaskInstance", "TaskConfig"],
    "numerous.tasks.control": [
        "TaskControl",
        "TaskControlHandler",
        "set_task_control_handler",
        "get_task_control_handler",
        "LocalTaskControlHandler",
        "PoCMockRemoteTaskControlHandler",
    ],
    # numerous-sdk's package imported these errors from .session and .future
    "numerous.tasks.session": ["Session", "SessionError", "SessionNotFoundError"],
    "numerous.tasks.future": ["Future", "LocalFuture", "TaskStatus", "TaskCancelledError"],
    "numerous.tasks.exceptions": [
        "TaskError",
        "MaxInstancesReachedError",
        "SessionNotFoundError",
        "SessionError",
        "TaskCancelledError",
        "BackendError",
        "TaskDefinitionError",
    ],
    "numerous.tasks.backends": ["ExecutionBackend", "register_backend", "get_backend", "set_default_backend"],
    "numerous.tasks.backends.local": ["LocalExecutionBackend"],
}


@pytest.fixture
def recorder() -> Recorder:
    from numerous.tasks import set_task_control_handler

    handler = Recorder()
    set_task_control_handler(handler)
    return handler


# -- the names ---------------------------------------------------------------------------------
def test_star_import_gives_every_public_name() -> None:
    namespace: dict[str, Any] = {}
    exec("from numerous.tasks import *", namespace)
    assert [name for name in PUBLIC_NAMES if name not in namespace] == []


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_each_module_holds_its_names(module_name: str) -> None:
    import numerous.tasks

    module = importlib.import_module(module_name)
    for name in MODULES[module_name]:
        value = getattr(module, name)
        if name != "task" or module_name == "numerous.tasks.task":
            assert getattr(numerous.tasks, name, value) is value, name


# -- TaskConfig and Task -----------------------------------------------------------------------
def test_task_config_is_a_dataclass_with_the_three_fields_in_order() -> None:
    from numerous.tasks import TaskConfig

    assert dataclasses.is_dataclass(TaskConfig)
    fields = [(f.name, f.default) for f in dataclasses.fields(TaskConfig)]
    assert fields == [("max_parallel", 1), ("size", "small"), ("name", None)]
    assert TaskConfig(3, "large", "x") == TaskConfig(max_parallel=3, size="large", name="x")


def test_a_task_made_with_task_and_a_config_has_the_attributes() -> None:
    from numerous.tasks import Task, TaskConfig

    configured = sdk_tasks.configured
    assert isinstance(configured, Task)
    assert configured.config == TaskConfig(max_parallel=2, size="medium", name="configured-task")
    assert configured.name == configured.definition_name == "configured-task"
    assert configured.expects_task_control is True
    assert configured.__name__ == "_configured"
    assert configured.__doc__ == "Made a Task by hand, numerous-sdk style."
    assert configured.__wrapped__ is sdk_tasks._configured


def test_the_decorator_names_the_task_after_its_function_unless_told() -> None:
    from numerous.tasks import TaskConfig, task

    assert sdk_tasks.double.name == "double" and sdk_tasks.double.config == TaskConfig()
    assert sdk_tasks.double.expects_task_control is True
    assert sdk_tasks.add.expects_task_control is False

    @task(name="renamed", max_parallel=4, size="large")
    def original(value: int) -> int:
        return value

    assert original.name == "renamed"
    assert original.config == TaskConfig(max_parallel=4, size="large", name="renamed")


def test_task_control_is_detected_on_the_first_parameter_or_the_second_after_self() -> None:
    from numerous.tasks import TaskControl, task

    def method_like(self: object, tc: TaskControl, n: int) -> int:
        return n

    def no_control(n: int) -> int:
        return n

    assert task(method_like).expects_task_control is True
    assert task(no_control).expects_task_control is False


def test_expects_task_control_given_to_task_decides() -> None:
    from numerous.tasks import Task, TaskConfig, TaskControl

    def untyped(tc, n):  # type: ignore[no-untyped-def]
        return (type(tc).__name__, n)

    given = Task(untyped, TaskConfig(), True)
    assert given.expects_task_control is True
    assert given(5) == ("TaskControl", 5)

    def annotated(tc: TaskControl, n: int) -> int:
        return n

    assert Task(annotated, TaskConfig(), False).expects_task_control is False

    def method_like(self, tc, n):  # type: ignore[no-untyped-def]
        return (self, type(tc).__name__, n)

    def variadic(*args):  # type: ignore[no-untyped-def]
        return (type(args[0]).__name__, *args[1:])

    def nothing_to_take_it() -> None:
        pass

    assert Task(method_like, TaskConfig(), True)("me", 2) == ("me", "TaskControl", 2)
    assert Task(variadic, TaskConfig(), True)(1, 2) == ("TaskControl", 1, 2)
    with pytest.raises(TypeError, match="no first positional parameter"):
        Task(nothing_to_take_it, TaskConfig(), True)


# -- TaskInstance --------------------------------------------------------------------------------
def test_an_instance_before_start(task_backend: str) -> None:
    from numerous.tasks import Session, TaskError, TaskStatus

    with Session() as session:
        instance = sdk_tasks.double.instance()
        assert isinstance(instance.id, str) and instance.id
        assert instance.task_definition is sdk_tasks.double
        assert instance.task_definition_name == "double"
        assert instance.session is session
        assert instance.status == TaskStatus.PENDING
        assert instance.is_running is False
        with pytest.raises(TaskError, match=r"^Task has not been started yet\.$"):
            instance.result  # noqa: B018
        control = instance.task_control
        assert (control.instance_id, control.task_definition_name) == (instance.id, "double")
        assert (control.progress, control.status, control.should_stop) == (0.0, "", False)


def test_an_instance_runs_and_its_result_property_blocks_for_the_value(task_backend: str, recorder: Recorder) -> None:
    from numerous.tasks import Future, Session, TaskStatus

    with Session():
        instance = sdk_tasks.double.instance()
        future = instance.start(21)
        assert isinstance(future, Future)
        assert instance.result == 42
        assert instance.is_running is False
        assert instance.status == TaskStatus.COMPLETED == future.status
        # The parent's TaskControl reflects the latest update.
        assert (instance.task_control.progress, instance.task_control.status) == (100.0, "done")
    logs = [c for c in recorder.calls if c[0] == "log"]
    assert logs == [("log", instance.id, "doubling", "info", {"value": 21})]


def test_a_handler_sees_the_task_control_already_updated(task_backend: str, recorder: Recorder) -> None:
    from numerous.tasks import Session

    with Session():
        assert sdk_tasks.configured.instance().start("x").result() == "configured-task:x"
        instance = sdk_tasks.double.instance()
        instance.start(1).result()
    progress = [c for c in recorder.calls if c[0] == "progress" and c[1] == instance.id]
    assert progress and all(c[2] == c[4] and c[3] == c[5] for c in progress)
    assert progress[-1][2:4] == (100.0, "done")
    assert [c[2:] for c in recorder.calls if c[0] == "status"] == [("configured", "configured")]


def test_is_running_while_started_and_not_finished(task_backend: str, recorder: Recorder) -> None:
    from numerous.tasks import Session

    with Session():
        instance = sdk_tasks.wait_for_stop.instance()
        instance.start()
        recorder.wait_for_status(instance.id, "waiting")
        assert instance.is_running is True
        instance.stop()
        assert instance.result == "stopped"
        assert instance.is_running is False


def test_request_stop_on_the_instance_task_control_stops_the_task(task_backend: str, recorder: Recorder) -> None:
    from numerous.tasks import Session

    with Session():
        instance = sdk_tasks.wait_for_stop.instance()
        future = instance.start()
        recorder.wait_for_status(instance.id, "waiting")
        instance.task_control.request_stop()
        assert instance.task_control.should_stop is True
        assert future.result() == "stopped"


def test_request_stop_before_start_stops_the_instance_once_it_starts(task_backend: str) -> None:
    from numerous.tasks import Session

    with Session():
        instance = sdk_tasks.wait_for_stop.instance()
        instance.task_control.request_stop()
        assert instance.task_control.should_stop is True
        assert instance.start().result() == "stopped"


def test_a_task_control_keeps_its_own_progress_and_stop_request(task_backend: str) -> None:
    from numerous.tasks import Session

    with Session():
        assert sdk_tasks.progress_seen_inside.instance().start().result() == (0.0, "", 30.0, "later")
        assert sdk_tasks.stop_myself.instance().start().result() is True


def test_a_task_with_max_parallel_above_one_starts_instances(task_backend: str) -> None:
    from numerous.tasks import Session

    with Session():
        futures = [sdk_tasks.configured.instance().start(str(n)) for n in range(3)]
        assert [f.result() for f in futures] == ["configured-task:0", "configured-task:1", "configured-task:2"]


# -- TaskControl ---------------------------------------------------------------------------------
def test_a_task_control_made_by_hand(recorder: Recorder) -> None:
    from numerous.tasks import TaskControl

    tc = TaskControl("instance-1", "by-hand")
    assert (tc.instance_id, tc.task_definition_name) == ("instance-1", "by-hand")
    assert (tc.progress, tc.status, tc.should_stop) == (0.0, "", False)
    tc.update_progress(40.0)
    assert (tc.progress, tc.status) == (40.0, "")
    tc.update_progress(50.0, "half")
    tc.update_status("still half")
    assert (tc.progress, tc.status) == (50.0, "still half")
    tc.log("hello", "warning", key="value")
    tc.log("plain")
    tc.request_stop()
    assert tc.should_stop is True
    assert recorder.calls == [
        ("progress", "instance-1", 40.0, None, 40.0, ""),
        ("progress", "instance-1", 50.0, "half", 50.0, "half"),
        ("status", "instance-1", "still half", "still half"),
        ("log", "instance-1", "hello", "warning", {"key": "value"}),
        ("log", "instance-1", "plain", "info", {}),
    ]


# -- Session -------------------------------------------------------------------------------------
def test_a_session_has_a_name_and_an_id() -> None:
    from numerous.tasks import Session

    session = Session()
    assert re.fullmatch(r"session_[0-9a-f]{8}", session.name)
    assert uuid.UUID(session.id).version == 4
    assert Session().id != session.id and Session().name != session.name
    named = Session("batch", "my-id")
    assert (named.name, named.id) == ("batch", "my-id")
    assert Session(name="n", session_id="i").id == "i"


def test_current_is_the_open_session_or_none() -> None:
    from numerous.tasks import Session

    assert Session.current() is None
    with Session() as outer:
        assert Session.current() is outer
        with Session() as inner:
            assert Session.current() is inner
        assert Session.current() is outer
    assert Session.current() is None


def test_tasks_lists_the_session_s_instances_by_task_name(task_backend: str, recorder: Recorder) -> None:
    from numerous.tasks import Session

    with Session() as session:
        first, second = sdk_tasks.double.instance(), sdk_tasks.double.instance()
        other = sdk_tasks.add.instance()
        assert session.tasks == {
            "double": {first.id: first, second.id: second},
            "add": {other.id: other},
        }
        waiting = sdk_tasks.wait_for_stop.instance()
        waiting.start()
        recorder.wait_for_status(waiting.id, "waiting")
        assert session.get_running_instances_count("wait_for_stop") == 1
        assert session.get_running_instances_count("double") == 0
        assert first.start(1).result() == 2 and other.start(1, 2).result() == 3
        session.remove_task_instance(second)
        assert session.tasks["double"] == {first.id: first}
        session.add_task_instance(second)
        assert session.tasks["double"] == {first.id: first, second.id: second}
        session.cleanup_completed_tasks()  # first and other are done; second never started
        assert session.tasks == {"double": {second.id: second}, "wait_for_stop": {waiting.id: waiting}}
        waiting.stop()
        assert waiting.result == "stopped"
        assert session.get_running_instances_count("wait_for_stop") == 0


def test_a_long_session_does_not_keep_finished_instances_alive(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc
    import weakref

    from numerous.tasks import Session

    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "inline")  # many instances: the cheap backend
    gc.collect()
    gc.disable()  # freed by reference counting, not by a full collection
    try:
        with Session() as session:
            first = sdk_tasks.add.instance()
            first.start(0, 0).result()
            gone = [weakref.ref(first)]
            kept = sdk_tasks.add.instance()
            kept.start(1, 1).result()
            del first
            for n in range(300):
                instance = sdk_tasks.add.instance()
                instance.start(n, 1).result()
                gone.append(weakref.ref(instance))
            del instance
            assert session.tasks == {"add": {kept.id: kept}}  # listed while referenced
            assert [ref for ref in gone if ref() is not None] == []  # nor the results held
            assert session.get_running_instances_count("add") == 0
        del session, kept
    finally:
        gc.enable()


def test_an_instance_outside_a_session_is_refused() -> None:
    from numerous.tasks import SessionNotFoundError

    with pytest.raises(SessionNotFoundError):
        sdk_tasks.double.instance()


def test_entering_a_session_twice_is_a_session_error() -> None:
    from numerous.tasks import Session, SessionError, TaskError

    session = Session()
    with session:
        with pytest.raises(SessionError) as caught:
            session.__enter__()
    assert isinstance(caught.value, TaskError)


# -- TaskStatus, Future, LocalFuture -------------------------------------------------------------
def test_task_status_constants() -> None:
    from numerous.tasks import TaskStatus

    assert (TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED) == (
        "pending",
        "running",
        "completed",
        "failed",
        "cancelled",
    )


def test_a_local_future_is_resolved_by_its_producer() -> None:
    from numerous.tasks import Future, LocalFuture, TaskStatus

    future: Any = LocalFuture()
    assert isinstance(future, Future)
    assert (future.status, future.done, future.error) == (TaskStatus.PENDING, False, None)
    with pytest.raises(TimeoutError):
        future.result(timeout=0.01)
    future.set_running()
    assert future.status == TaskStatus.RUNNING and not future.done
    future.set_result({"answer": 42})
    assert (future.status, future.done, future.result()) == (TaskStatus.COMPLETED, True, {"answer": 42})


def test_a_local_future_can_fail_or_be_cancelled() -> None:
    from numerous.tasks import LocalFuture, TaskCancelledError, TaskStatus

    failing: Any = LocalFuture()
    error = ValueError("no")
    failing.set_running()
    failing.set_exception(error)
    assert (failing.status, failing.done, failing.error) == (TaskStatus.FAILED, True, error)
    with pytest.raises(ValueError, match="no"):
        failing.result()

    cancelled: Any = LocalFuture()
    assert cancelled.cancel() is True
    assert (cancelled.status, cancelled.done, cancelled.error) == (TaskStatus.CANCELLED, True, None)
    with pytest.raises(TaskCancelledError):
        cancelled.result()
    assert failing.cancel() is False


# -- exceptions ----------------------------------------------------------------------------------
def test_the_errors_are_task_errors() -> None:
    import numerous.tasks as nt

    assert issubclass(nt.TaskError, Exception)
    for name in PUBLIC_NAMES:
        if name.endswith("Error") and name != "TaskError":
            error_type = getattr(nt, name)
            assert issubclass(error_type, nt.TaskError), name
            assert str(error_type("a message")) == "a message", name


# -- backends ------------------------------------------------------------------------------------
def test_get_backend_gives_the_local_backend_by_default_and_none_for_unknown_names() -> None:
    from numerous.tasks import ExecutionBackend, LocalExecutionBackend, get_backend

    assert isinstance(get_backend(), LocalExecutionBackend)
    assert get_backend("local") is get_backend()
    assert isinstance(get_backend("local"), ExecutionBackend)
    assert get_backend("no-such-backend") is None


def test_set_default_backend_refuses_an_unknown_name() -> None:
    from numerous.tasks import set_default_backend

    with pytest.raises(ValueError, match="no-such-backend"):
        set_default_backend("no-such-backend")


def test_the_local_execution_backend_runs_a_callable_in_another_process() -> None:
    from numerous.tasks import LocalExecutionBackend, LocalFuture, TaskStatus

    backend = LocalExecutionBackend()
    backend.startup()
    try:
        future: Any = LocalFuture()
        backend.execute(sdk_tasks.pid_and_square, future, (7,), {})
        pid, square = future.result(timeout=60)
        assert square == 49 and pid != os.getpid()
        assert future.status == TaskStatus.COMPLETED
        assert backend.cancel_task_instance("no-such-instance") is False
    finally:
        backend.shutdown(wait=True)


def test_max_workers_bounds_the_calls_running_at_once(tmp_path: Path) -> None:
    from numerous.tasks import LocalExecutionBackend, LocalFuture, TaskStatus

    gate = str(tmp_path / "gate")
    backend = LocalExecutionBackend(max_workers=1)
    try:
        first: Any = LocalFuture()
        second: Any = LocalFuture()
        backend.execute(sdk_tasks.wait_for_file, first, (gate,), {})
        backend.execute(sdk_tasks.pid_and_square, second, (3,), {})
        assert second.status == TaskStatus.PENDING  # waits for the one worker slot
        Path(gate).touch()
        assert first.result(timeout=60) == "released"
        assert second.result(timeout=60)[1] == 9
    finally:
        backend.shutdown(wait=True)


def test_a_registered_execution_backend_runs_the_session_s_instances(
    monkeypatch: pytest.MonkeyPatch, recorder: Recorder
) -> None:
    from numerous.tasks import Session, get_backend, register_backend

    backend = ThreadBackend()
    register_backend("sdk-threads", backend)
    found = get_backend("sdk-threads")
    assert found is backend
    monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "sdk-threads")
    try:
        with Session() as session:
            assert sdk_tasks.thread_name.instance().start().result().startswith("sdk-thread")
            instance = sdk_tasks.double.instance()
            assert instance.start(5).result() == 10
            assert instance.task_control.progress == 100.0
            waiting = sdk_tasks.wait_for_stop.instance()
            future = waiting.start()
            recorder.wait_for_status(waiting.id, "waiting")
            waiting.stop()
            assert future.result() == "stopped"
            assert [c[0] for c in backend.cancelled] == [waiting.id]
            assert session.get_running_instances_count("wait_for_stop") == 0
        assert backend.shut_down == 0  # a registered instance is shared: its owner shuts it down
    finally:
        backend.shutdown()
    assert ("log", instance.id, "doubling", "info", {"value": 5}) in recorder.calls


def test_a_backend_registered_as_a_class_is_made_for_each_session(monkeypatch: pytest.MonkeyPatch) -> None:
    from numerous.tasks import Session, register_backend, set_default_backend

    register_backend("sdk-threads-per-session", ThreadBackend)
    set_default_backend("sdk-threads-per-session")
    try:
        made: List[ThreadBackend] = []
        for n in range(2):
            with Session():
                assert sdk_tasks.add.instance().start(n, 1).result() == n + 1
            made.append(ThreadBackend.made[-1])
        assert made[0] is not made[1]
        assert [(b.started, b.shut_down) for b in made] == [(1, 1), (1, 1)]
    finally:
        set_default_backend("local")


# -- handlers ------------------------------------------------------------------------------------
def test_the_default_handler_is_the_local_one_and_logs_through_logging(
    task_backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    from numerous.tasks import LocalTaskControlHandler, Session, set_task_control_handler
    from numerous.tasks.control import get_task_control_handler

    set_task_control_handler(None)
    assert isinstance(get_task_control_handler(), LocalTaskControlHandler)
    caplog.set_level(logging.INFO)
    with Session():
        sdk_tasks.double.instance().start(2).result()
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO] == ["doubling"]


def test_the_mock_remote_handler_prints_each_call(capsys: pytest.CaptureFixture[str]) -> None:
    from numerous.tasks import PoCMockRemoteTaskControlHandler, set_task_control_handler

    set_task_control_handler(PoCMockRemoteTaskControlHandler())
    assert sdk_tasks.double(3) == 6  # a direct call: the handler runs here
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    assert "50.00%" in lines[0] and "halfway" in lines[0]
    assert "doubling" in lines[1]
    assert "100.00%" in lines[2] and "done" in lines[2]


# -- the deliberate differences (README: "Coming from numerous-sdk") ----------------------------
def test_a_direct_call_in_a_session_runs_inline_for_any_max_parallel_without_a_warning() -> None:
    from numerous.tasks import Session

    with Session():  # pytest turns warnings into errors here
        assert sdk_tasks.configured("direct") == "configured-task:direct"


def test_instances_beyond_max_parallel_wait_instead_of_raising(task_backend: str, recorder: Recorder) -> None:
    from numerous.tasks import Session, TaskStatus

    with Session():
        first = sdk_tasks.wait_for_stop.instance()
        first.start()
        recorder.wait_for_status(first.id, "waiting")
        second = sdk_tasks.wait_for_stop.instance()
        second.start()  # max_parallel=1: it waits
        assert second.status == TaskStatus.PENDING and second.is_running is True
        first.stop()
        assert first.result == "stopped"
        recorder.wait_for_status(second.id, "waiting")
        second.stop()
        assert second.result == "stopped"


def test_the_task_control_in_the_worker_is_not_the_parent_s(recorder: Recorder) -> None:
    from numerous.tasks import Session

    with Session():  # local backend: the task runs in another process
        instance = sdk_tasks.progress_seen_inside.instance()
        assert instance.start().result() == (0.0, "", 30.0, "later")
        # The parent's TaskControl learnt the task's reports from the handler calls.
        assert (instance.task_control.progress, instance.task_control.status) == (30.0, "later")
