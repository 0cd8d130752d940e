"""Tasks written with postponed (string) annotations, as many user modules are."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Tuple

import numerous.tasks as nt
from numerous.tasks import TaskControl, task

if TYPE_CHECKING:  # a name only type checkers see: annotations using it cannot be resolved
    from decimal import Decimal


@task
def string_first(control: TaskControl, value: int) -> Tuple[bool, int]:
    return isinstance(control, TaskControl), value


@task
def string_later(value: int, control: TaskControl) -> Tuple[int, bool]:
    return value, isinstance(control, TaskControl)


@task
def string_optional(value: int, control: Optional[TaskControl] = None) -> Tuple[int, bool]:
    return value, isinstance(control, TaskControl)


@task
def string_qualified(value: int, control: nt.TaskControl) -> Tuple[int, bool]:
    return value, isinstance(control, TaskControl)


@task
def string_unresolvable(value: Decimal, control: TaskControl) -> Tuple[object, bool]:
    return value, isinstance(control, TaskControl)


@task
def string_pep604(value: int, control: TaskControl | None = None) -> Tuple[int, bool]:
    return value, isinstance(control, TaskControl)


@task
def string_pep604_unresolvable(value: Decimal, control: TaskControl | None = None) -> Tuple[object, bool]:
    return value, isinstance(control, TaskControl)
