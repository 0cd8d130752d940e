"""Code that type checkers must reject, checked by tests/test_typing.py with ``mypy --strict``.

Each line that ends in an "E:" comment listing mypy error codes (comma-separated; text
after two spaces is a remark) must get exactly those codes, and no other line any error.
"""

from __future__ import annotations

from typing import List

from numerous.tasks import Future, Session, TaskControl, as_completed, task, wait


@task
def plain(value: int, label: str = "x") -> str:
    return f"{label}{value}"


@task
def controlled(tc: TaskControl, count: int) -> List[float]:
    return [float(count)]


@task(max_parallel=2)
def configured(tc: TaskControl, name: str) -> int:
    return len(name)


def wrong_calls() -> None:
    plain("one")  # E: arg-type
    plain(1, 2)  # E: arg-type
    plain(1, colour="red")  # E: call-arg
    plain()  # E: call-arg
    controlled(None, 3)  # E: call-arg, arg-type  (callers never pass the TaskControl)
    configured(1)  # E: arg-type
    number: int = plain(1)  # E: assignment

    with Session():
        controlled.instance().start("three")  # E: arg-type
        plain.instance().start(1, 2, 3)  # E: call-arg, arg-type
        configured.instance().start()  # E: call-arg
        future = controlled.instance().start(3)
        text: str = future.result()  # E: assignment
        wrong_future: Future[int] = future  # E: assignment
        done, _ = wait([future], return_when=1)  # E: arg-type
        for finished in as_completed([future]):
            finished.result().upper()  # E: attr-defined
        plain.map(range(3), errors="ignore")  # E: call-overload
        plain.map(range(3), chunksize="10")  # E: call-overload
        count: int = next(plain.map(range(3)))  # E: assignment


async def wrong_awaits() -> None:
    with Session():
        text: str = await controlled.instance().start(1)  # E: assignment


@task(max_parallel="many")  # E: call-overload, untyped-decorator
def badly_configured(value: int) -> int:
    return value
