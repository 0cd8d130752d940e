"""The public API, pinned; and importing it stays cheap."""

from __future__ import annotations

import subprocess
import sys

import numerous.tasks
import numerous.tasks.control
import numerous.tasks.exceptions
import numerous.tasks.future
import numerous.tasks.session
import numerous.tasks.task

SPEC_NAMES = {
    "task",
    "Task",
    "TaskInstance",
    "TaskControl",
    "Session",
    "Future",
    "TaskError",
    "MaxInstancesReachedError",
    "SessionNotFoundError",
    "TaskCancelledError",
}

#: The original numerous-sdk ``numerous.tasks``'s public names (issue 17): code written
#: against it imports them from here.
SDK_NAMES = SPEC_NAMES | {
    "TaskConfig",
    "LocalFuture",
    "TaskStatus",
    "SessionError",
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
}

#: Everything ``numerous.tasks`` exports, pinned: a name added or removed is a decision.
ALL_NAMES = SDK_NAMES | {
    "MemoryLimitError",
    "InstanceEndedError",  # a TaskControl a task kept, used after its instance ended
    "Size",
    "TaskControlHandler",
    "get_task_control_handler",
    "InstanceTimes",
    "TaskFailedError",
    "TaskTimeoutError",
    "WorkerDiedError",
    "UnknownBackendError",
    "ResultTimeoutError",
    "wait",
    "as_completed",
    "DoneAndNotDoneFutures",
    "FIRST_COMPLETED",
    "FIRST_EXCEPTION",
    "ALL_COMPLETED",
    "TaskMap",  # task.map() (issue 18)
    "MapProgress",
}


def test_the_spec_names_are_exported_from_the_package() -> None:
    assert SPEC_NAMES <= set(numerous.tasks.__all__)
    for name in numerous.tasks.__all__:
        assert getattr(numerous.tasks, name) is not None


def test_the_public_api_is_pinned_and_star_import_gives_it() -> None:
    assert set(numerous.tasks.__all__) == ALL_NAMES
    assert len(numerous.tasks.__all__) == len(ALL_NAMES)  # no name twice
    namespace: dict = {}
    exec("from numerous.tasks import *", namespace)
    assert ALL_NAMES <= set(namespace)


def test_numerous_sdk_module_paths_hold_their_names() -> None:
    import importlib

    backends = importlib.import_module("numerous.tasks.backends")
    for name in ("ExecutionBackend", "register_backend", "get_backend", "set_default_backend"):
        assert getattr(backends, name) is getattr(numerous.tasks, name)
    local = importlib.import_module("numerous.tasks.backends.local")
    assert local.LocalExecutionBackend is numerous.tasks.LocalExecutionBackend
    assert importlib.import_module("numerous.tasks.task").TaskConfig is numerous.tasks.TaskConfig
    for name in ("LocalFuture", "TaskStatus"):
        assert getattr(numerous.tasks.future, name) is getattr(numerous.tasks, name)
    for name in ("SessionError", "BackendError", "TaskDefinitionError"):
        assert getattr(numerous.tasks.exceptions, name) is getattr(numerous.tasks, name)
    for name in ("LocalTaskControlHandler", "PoCMockRemoteTaskControlHandler", "get_task_control_handler"):
        assert getattr(numerous.tasks.control, name) is getattr(numerous.tasks, name)


def test_a_worker_s_imports_do_not_pull_in_the_backend_registry() -> None:
    code = (
        "import sys, numerous.tasks.backends.local._worker; "
        "print(sorted(m for m in ('numerous.tasks.backends.registry', 'numerous.tasks.backends.execution', "
        "'numerous.tasks._sdk_compat', 'dataclasses', 'importlib.metadata', 'uuid') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr


def test_the_spec_module_paths_hold_their_names() -> None:
    import importlib

    task_module = importlib.import_module("numerous.tasks.task")
    assert task_module.task is numerous.tasks.task and callable(numerous.tasks.task)
    assert task_module.Task is numerous.tasks.Task and task_module.TaskInstance is numerous.tasks.TaskInstance
    assert numerous.tasks.control.TaskControlHandler and numerous.tasks.control.set_task_control_handler
    assert numerous.tasks.session.Session is numerous.tasks.Session
    assert numerous.tasks.future.Future is numerous.tasks.Future
    for name in ("TaskError", "MaxInstancesReachedError", "SessionNotFoundError", "TaskCancelledError"):
        assert getattr(numerous.tasks.exceptions, name) is getattr(numerous.tasks, name)
    for name in ("MaxInstancesReachedError", "SessionNotFoundError", "TaskCancelledError"):
        assert issubclass(getattr(numerous.tasks, name), numerous.tasks.TaskError)


def test_every_public_name_has_a_docstring() -> None:
    for name in numerous.tasks.__all__:
        assert getattr(numerous.tasks, name).__doc__, name


def test_importing_the_package_imports_no_heavy_dependency() -> None:
    code = (
        "import sys, numerous.tasks; "
        "print(sorted(m for m in ('rich', 'psutil', 'cloudpickle', 'tblib', 'dask', "
        "'multiprocessing', 'concurrent.futures', 'logging', 'dataclasses', 'uuid', 'importlib.metadata') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    # Below 3.11, ResultTimeoutError must also be a concurrent.futures.TimeoutError,
    # whose module brings logging with it.
    expected = "[]" if sys.version_info >= (3, 11) else "['concurrent.futures', 'logging']"
    assert result.stdout.strip() == expected, result.stdout + result.stderr


def test_unknown_attributes_raise_attribute_error() -> None:
    try:
        numerous.tasks.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as error:
        assert "no_such_name" in str(error)
    else:
        raise AssertionError("no AttributeError")
