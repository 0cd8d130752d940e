"""A task module written with postponed (string) annotations."""

from __future__ import annotations

from numerous.tasks import TaskControl, task


@task
def uses_string_annotation(control: TaskControl, value: int) -> tuple:
    return isinstance(control, TaskControl), value
