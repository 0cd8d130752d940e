"""@task: both decorator forms, validation at decoration time, where the TaskControl
goes, and direct calls (inline, no session needed, reporting straight to the handler)."""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List, Tuple

import api_tasks
import api_tasks_future_annotations as future_module
import pytest
from api_tasks import RecordingHandler

from numerous.tasks import (
    Session,
    SessionNotFoundError,
    Task,
    TaskControl,
    set_task_control_handler,
    task,
)
from numerous.tasks.session import current_session
from numerous.tasks.task import TaskOptions


# -- the two decorator forms --------------------------------------------------------------
def test_bare_decorator_makes_a_task_with_the_defaults() -> None:
    @task
    def add(a: int, b: int = 1) -> int:
        """Add two numbers."""
        return a + b

    assert isinstance(add, Task)
    assert (add.name, add.max_parallel, add.size) == ("add", 1, "small")
    assert add(2, b=3) == 5
    assert add.__doc__ == "Add two numbers." and add.__name__ == "add"
    assert not add.takes_control


def test_decorator_with_options_makes_a_task_with_them() -> None:
    @task(max_parallel=5, size="medium", name="custom name")
    def add(a: int, b: int) -> int:
        return a + b

    assert isinstance(add, Task)
    assert (add.name, add.max_parallel, add.size) == ("custom name", 5, "medium")
    assert add(2, 3) == 5
    assert add.__name__ == "add"  # the function keeps its own name; the task has another


def test_decorator_called_with_no_options_is_the_same_as_bare() -> None:
    @task()
    def one() -> int:
        return 1

    assert isinstance(one, Task)
    assert (one.name, one.max_parallel, one.size, one()) == ("one", 1, "small", 1)


@pytest.mark.parametrize("size", ["small", "medium", "large"])
def test_every_documented_size_is_accepted(size: str) -> None:
    assert task(size=size)(lambda: 0).size == size


# -- validation ---------------------------------------------------------------------------
BAD_OPTIONS = [
    ({"max_parallel": 0}, ValueError, "max_parallel"),
    ({"max_parallel": -1}, ValueError, "max_parallel"),
    ({"max_parallel": 1.5}, TypeError, "max_parallel"),
    ({"max_parallel": True}, TypeError, "max_parallel"),
    ({"max_parallel": "2"}, TypeError, "max_parallel"),
    ({"size": "huge"}, ValueError, "size"),
    ({"size": 3}, TypeError, "size"),
    ({"name": ""}, ValueError, "name"),
    ({"name": "   "}, ValueError, "name"),
    ({"name": 5}, TypeError, "name"),
    ({"timeout": 0}, ValueError, "timeout"),
    ({"timeout": float("nan")}, ValueError, "timeout"),
    ({"timeout": "1"}, TypeError, "timeout"),
]
BAD_IDS = [f"{k}={v!r}" for (options, _, _) in BAD_OPTIONS for k, v in options.items()]


def _check_error(caught: pytest.ExceptionInfo, error: type, parameter: str) -> None:
    other = TypeError if error is ValueError else ValueError
    assert type(caught.value) is error, f"{type(caught.value).__name__} instead of {error.__name__}"
    assert not isinstance(caught.value, other)
    assert parameter in str(caught.value)


@pytest.mark.parametrize("options, error, parameter", BAD_OPTIONS, ids=BAD_IDS)
def test_bad_option_fails_when_decorating_with_options(options: dict, error: type, parameter: str) -> None:
    decorated: List[str] = []
    with pytest.raises((TypeError, ValueError)) as caught:
        # The error comes from the @task(...) line itself, before any function exists.
        @task(**options)
        def fn() -> None:
            decorated.append("fn")  # pragma: no cover - never runs

    _check_error(caught, error, parameter)
    assert decorated == []


@pytest.mark.parametrize("options, error, parameter", BAD_OPTIONS, ids=BAD_IDS)
def test_bad_option_fails_when_the_function_is_given_directly(options: dict, error: type, parameter: str) -> None:
    def fn() -> None:
        pass  # pragma: no cover

    with pytest.raises((TypeError, ValueError)) as caught:
        task(fn, **options)
    _check_error(caught, error, parameter)


def test_an_unknown_option_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="colour"):
        task(colour="red")  # type: ignore[call-overload]


# -- TaskOptions: the options, once -------------------------------------------------------
def test_a_task_holds_its_options_checked_and_frozen() -> None:
    @task(max_parallel=2, timeout=3, capture_output=True)
    def quick() -> None:
        pass

    assert quick.options == TaskOptions(max_parallel=2, timeout=3.0, capture_output=True)
    assert type(quick.options.timeout) is float  # checked: a number of seconds, as a float
    assert quick.options.name is None and quick.name == "quick"  # None: the function's name
    with pytest.raises(AttributeError):
        quick.options.max_parallel = 5  # type: ignore[misc]
    with pytest.raises(AttributeError):
        quick.max_parallel = 5  # type: ignore[misc]


def test_a_task_can_be_made_from_task_options_but_not_from_both_options_and_keywords() -> None:
    def fn() -> int:
        return 1

    made = Task(fn, TaskOptions(max_parallel=3, name="made"))
    assert (made.name, made.max_parallel, made()) == ("made", 3, 1)
    with pytest.raises(TypeError, match="not both"):
        Task(fn, TaskOptions(), max_parallel=2)
    with pytest.raises(ValueError, match="max_parallel"):  # options given this way are checked too
        Task(fn, TaskOptions(max_parallel=0))


def test_the_options_keywords_are_the_options_fields() -> None:
    """``@task(**options)`` is typed by TaskOptionsArgs: it must name TaskOptions's fields."""
    import typing

    from numerous.tasks._options import TaskOptionsArgs

    assert list(TaskOptionsArgs.__annotations__) == list(TaskOptions._fields)
    assert typing.get_type_hints(TaskOptionsArgs) == typing.get_type_hints(TaskOptions)


def test_a_task_pickled_by_value_keeps_its_options() -> None:
    import pickle

    from numerous.tasks._pickling import dumps

    def local_function(tc: TaskControl, n: int) -> int:  # a closure: it travels by value
        return n

    original = task(max_parallel=4, size="large", timeout=2.5, fresh_process=True)(local_function)
    copy = pickle.loads(dumps(original))
    assert copy.options == original.options and copy.name == "local_function"
    assert copy.takes_control and copy(5) == 5


def test_decorating_something_not_callable_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        task(42)  # type: ignore[call-overload]


# -- where the TaskControl goes -------------------------------------------------------------
def test_control_found_by_annotation_on_the_first_parameter() -> None:
    assert api_tasks.control_annotated_first.takes_control
    assert api_tasks.control_annotated_first(4) == (True, 4)
    assert api_tasks.control_annotated_first(value=4) == (True, 4)


def test_control_found_by_annotation_in_a_later_position() -> None:
    fn = api_tasks.control_annotated_later
    assert fn.takes_control
    assert fn(1, "x") == (1, "x", True)
    assert fn(1, other="x") == (1, "x", True)
    assert fn(value=1, other="x") == (1, "x", True)


def test_control_found_by_optional_annotation() -> None:
    assert api_tasks.control_optional.takes_control
    assert api_tasks.control_optional(3) == (3, True)


def test_control_found_by_keyword_only_annotation() -> None:
    assert api_tasks.control_keyword_only(3) == (3, True)


def test_unannotated_first_parameter_named_tc_gets_the_control() -> None:
    assert api_tasks.control_by_name.takes_control
    assert api_tasks.control_by_name(9) == (True, 9)


def test_tc_that_is_not_the_first_parameter_is_an_ordinary_parameter() -> None:
    assert not api_tasks.tc_not_first.takes_control
    assert api_tasks.tc_not_first(1) == (1, None)
    assert api_tasks.tc_not_first(1, "given") == (1, "given")


def test_function_without_a_control_parameter_gets_nothing_injected() -> None:
    @task
    def plain(value: Any, other: Any = None) -> Any:
        return value, other

    assert not plain.takes_control
    assert plain(1) == (1, None)


@pytest.mark.parametrize(
    "name, args, expected",
    [
        ("string_first", (5,), (True, 5)),
        ("string_later", (5,), (5, True)),
        ("string_optional", (5,), (5, True)),
        ("string_qualified", (5,), (5, True)),
        ("string_unresolvable", (5,), (5, True)),
        ("string_pep604", (5,), (5, True)),
        ("string_pep604_unresolvable", (5,), (5, True)),
    ],
)
def test_control_found_by_string_annotation(name: str, args: tuple, expected: tuple) -> None:
    fn = getattr(future_module, name)
    assert isinstance(fn.__wrapped__.__annotations__["control"], str)  # really postponed
    assert fn.takes_control, f"{name}: TaskControl parameter not detected"
    assert fn(*args) == expected


def test_control_is_injected_the_same_way_in_a_worker() -> None:
    with Session():
        futures = {
            "annotated_first": api_tasks.control_annotated_first.instance().start(1),
            "annotated_later": api_tasks.control_annotated_later.instance().start(2, other="o"),
            "optional": api_tasks.control_optional.instance().start(3),
            "by_name": api_tasks.control_by_name.instance().start(4),
            "string_later": future_module.string_later.instance().start(5),
            "string_optional": future_module.string_optional.instance().start(6),
        }
        results = {key: f.result(timeout=30) for key, f in futures.items()}
    assert results == {
        "annotated_first": (True, 1),
        "annotated_later": (2, "o", True),
        "optional": (3, True),
        "by_name": (True, 4),
        "string_later": (5, True),
        "string_optional": (6, True),
    }


# -- direct calls ---------------------------------------------------------------------------
def test_direct_call_returns_the_value_and_runs_inline() -> None:
    @task
    def where(value: int) -> tuple:
        return value * 3, os.getpid(), threading.get_ident()

    assert where(5) == (15, os.getpid(), threading.get_ident())


def test_direct_call_needs_no_session() -> None:
    with pytest.raises(SessionNotFoundError):
        current_session()
    assert api_tasks.double(21) == 42
    assert api_tasks.identity_of()["instance_id"] == "direct"


def test_direct_call_inside_a_session_also_runs_inline() -> None:
    with Session():
        assert api_tasks.identity_of()["pid"] == os.getpid()


def test_direct_call_control_reports_to_the_handler_synchronously() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)

    @task(name="direct-reporter")
    def reporter(tc: TaskControl, probe: Any) -> dict:
        seen = {}
        tc.log("hello", "warning", key=1)
        seen["after log"] = probe()
        tc.update_progress(25.0, "a quarter")
        seen["after progress"] = probe()
        tc.update_status("busy")
        seen["after status"] = probe()
        seen["should_stop"] = tc.should_stop
        seen["name"] = tc.task_definition_name
        seen["instance_id"] = tc.instance_id
        return seen

    seen = reporter(lambda: list(handler.events))
    log = ("log", "direct", "direct-reporter", ("hello", "warning", {"key": 1}))
    progress = ("progress", "direct", "direct-reporter", (25.0, "a quarter"))
    status = ("status", "direct", "direct-reporter", "busy")
    # Each call reached the handler before the next line of the task ran.
    assert seen["after log"] == [log]
    assert seen["after progress"] == [log, progress]
    assert seen["after status"] == [log, progress, status]
    assert seen["should_stop"] is False
    assert (seen["name"], seen["instance_id"]) == ("direct-reporter", "direct")
    # ... and in the calling thread.
    assert {ident for _, _, ident in handler.calls} == {threading.get_ident()}


def test_direct_call_validates_what_the_control_is_given() -> None:
    @task
    def misuse(tc: TaskControl, what: str) -> None:
        if what == "level":
            tc.log("x", "critical")
        elif what == "nan":
            tc.update_progress(float("nan"))
        else:
            tc.update_progress("50")  # type: ignore[arg-type]

    with pytest.raises(ValueError, match="'debug', 'info', 'warning', 'error'"):
        misuse("level")
    with pytest.raises(ValueError):
        misuse("nan")
    with pytest.raises(TypeError):
        misuse("string")


def test_direct_call_propagates_the_task_exception_unchanged() -> None:
    with pytest.raises(api_tasks.CustomError, match="direct failure") as caught:
        api_tasks.fail_custom("direct failure", code=3)
    assert caught.value.code == 3


# -- name= --------------------------------------------------------------------------------------
def test_name_is_what_the_control_reports_in_a_direct_call() -> None:
    assert api_tasks.renamed.name == "renamed-task"
    assert api_tasks.renamed() == "renamed-task"


def test_name_is_what_the_control_reports_in_a_worker_and_to_handlers() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    with Session():
        instance = api_tasks.renamed.instance()
        assert instance.start().result(timeout=30) == "renamed-task"
    names = {event.task_name for event in handler.events if event.instance_id == instance.id}
    assert names == {"renamed-task"}


def test_default_name_is_the_function_name() -> None:
    assert api_tasks.identity_of()["name"] == "identity_of"


# -- arguments are checked in start(), in the caller ---------------------------------------------
FITS = [
    (api_tasks.double, (1,), {}, True),
    (api_tasks.double, (), {}, False),
    (api_tasks.double, (1, 2), {}, False),
    (api_tasks.double, (), {"value": 1}, True),
    (api_tasks.double, (), {"other": 1}, False),
    (api_tasks.fail_custom, ("m",), {}, True),
    (api_tasks.fail_custom, ("m", 3), {}, True),
    (api_tasks.fail_custom, ("m", 3, 4), {}, False),
    (api_tasks.control_annotated_first, (1,), {}, True),
    (api_tasks.control_annotated_first, (), {}, False),
    (api_tasks.control_annotated_first, (1, 2), {}, False),
    (api_tasks.control_annotated_later, (1, "x"), {}, True),
    (api_tasks.control_annotated_later, (1,), {}, False),
    (api_tasks.control_annotated_later, (1, "x", "y"), {}, False),
    (api_tasks.control_optional, (1,), {}, True),
    (api_tasks.control_optional, (1, 2), {}, False),
    (api_tasks.control_keyword_only, (1,), {}, True),
    (api_tasks.control_keyword_only, (1, 2), {}, False),
    (api_tasks.tc_not_first, (1,), {}, True),
    (api_tasks.tc_not_first, (1, 2), {}, True),
    (api_tasks.tc_not_first, (1, 2, 3), {}, False),
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "fits"), FITS)
def test_start_checks_the_arguments_against_the_function(
    fn: Task[..., Any], args: Tuple[Any, ...], kwargs: Dict[str, Any], fits: bool
) -> None:
    """Whatever path the check takes (positional arguments alone are counted; anything
    else is bound to the signature), a call that does not fit is a TypeError here."""
    if fits:
        fn.check_arguments(args, kwargs)
    else:
        with pytest.raises(TypeError, match=f"task {fn.name!r} cannot be started with these arguments"):
            fn.check_arguments(args, kwargs)
