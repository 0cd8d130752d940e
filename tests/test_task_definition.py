"""@task: validation at decoration time, TaskControl detection, direct calls."""

from __future__ import annotations

from typing import Optional

import pytest

from numerous.tasks import Task, TaskControl, set_task_control_handler, task

from task_helpers import RecordingHandler, double, named


@pytest.mark.parametrize(
    "options, error, words",
    [
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
    ],
)
def test_bad_options_fail_at_decoration_naming_the_parameter(options: dict, error: type, words: str) -> None:
    with pytest.raises(error, match=words):
        task(**options)
    with pytest.raises(error, match=words):
        Task(lambda: None, **options)


def test_both_decorator_forms_make_tasks_with_their_options() -> None:
    def plain(x: int) -> int:
        return x

    bare = task(plain)
    configured = task(max_parallel=5, size="medium", name="custom")(plain)
    assert isinstance(bare, Task) and bare.name == "plain" and bare.max_parallel == 1 and bare.size == "small"
    assert (configured.name, configured.max_parallel, configured.size) == ("custom", 5, "medium")
    assert configured.__doc__ == plain.__doc__ and configured.__wrapped__ is plain


def test_direct_call_runs_inline_without_a_session() -> None:
    assert double(21) == 42


def test_direct_call_injects_a_control_that_reports_to_the_handler() -> None:
    handler = RecordingHandler()
    set_task_control_handler(handler)

    @task(max_parallel=3, name="inline")
    def reporting(tc: TaskControl, value: int) -> bool:
        tc.log("hi", "warning", key=1)
        tc.update_progress(10.0, "ten")
        tc.update_status("busy")
        assert tc.task_definition_name == "inline" and tc.instance_id == "direct"
        return tc.should_stop

    assert reporting(1) is False
    assert handler.events == [
        ("log", "direct", ("hi", "warning", {"key": 1})),
        ("progress", "direct", (10.0, "ten")),
        ("status", "direct", "busy"),
    ]


def test_control_parameter_found_by_annotation_anywhere() -> None:
    @task
    def second(value: int, control: TaskControl) -> str:
        return f"{value}:{control.instance_id}"

    @task
    def optional(value: int, control: Optional[TaskControl] = None) -> bool:
        return isinstance(control, TaskControl)

    assert second(3) == "3:direct"
    assert optional(1) is True


def test_control_parameter_found_by_name_tc_without_annotation() -> None:
    @task
    def untyped(tc, value):  # type: ignore[no-untyped-def]
        return isinstance(tc, TaskControl), value

    assert untyped(5) == (True, 5)


def test_no_control_parameter_means_nothing_is_injected() -> None:
    @task
    def plain(value, other=None):  # type: ignore[no-untyped-def]
        return value, other

    assert plain(1) == (1, None)


def test_string_annotations_are_resolved_with_the_function_globals() -> None:
    import future_annotations_tasks as module

    assert module.uses_string_annotation(4) == (True, 4)
    assert module.uses_string_annotation.takes_control


def test_name_option_is_what_the_task_sees() -> None:
    assert named() == "renamed"
