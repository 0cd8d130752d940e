"""How typed code uses numerous.tasks; ``mypy --strict`` must accept this file as is.

It is checked, not run (``tox -e type``, tests/test_typing.py). Each ``assert_type``
pins what a type checker infers; tests/typing/expected_errors.py holds the calls it
must reject.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any, Callable, List, Optional, Union

from typing_extensions import assert_type

from numerous.tasks import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    DoneAndNotDoneFutures,
    ExecutionBackend,
    Future,
    LocalExecutionBackend,
    LocalFuture,
    MapProgress,
    Session,
    Task,
    TaskConfig,
    TaskControl,
    TaskInstance,
    TaskMap,
    TaskStatus,
    as_completed,
    get_backend,
    task,
    wait,
)


@task
def plain(value: int, label: str = "x") -> str:
    return f"{label}{value}"


@task
def controlled(tc: TaskControl, count: int, *, scale: float = 1.0) -> List[float]:
    tc.update_progress(50.0)
    return [i * scale for i in range(count)]


@task(max_parallel=3, size="medium", name="renamed")
def configured(tc: TaskControl, items: List[str]) -> int:
    return len(items)


@task(timeout=5.0)
def no_control(path: str) -> Optional[bytes]:
    return None


@task
def optional_control(tc: Optional[TaskControl], n: int) -> int:
    return n


def typed_usage() -> None:
    # The decorator keeps the signature, less a first TaskControl parameter.
    as_task: Task[..., str] = plain
    start: Callable[[int, str], Future[str]] = plain.instance().start
    assert_type(controlled(3, scale=2.0), List[float])
    assert_type(configured(["a"]), int)
    assert_type(no_control("p"), Optional[bytes])
    assert_type(optional_control(1), int)
    assert_type(plain(1), str)
    assert_type(plain(1, label="y"), str)

    with Session() as session:
        assert_type(session, Session)
        instance = controlled.instance()
        start_controlled: Callable[[int], Future[List[float]]] = instance.start
        any_instance: TaskInstance[..., List[float]] = instance
        future = instance.start(10, scale=0.5)
        assert_type(future, Future[List[float]])
        assert_type(future.result(), List[float])
        assert_type(future.result(timeout=1.0), List[float])
        assert_type(instance.future, Optional[Future[List[float]]])

        other = configured.instance(queue=False, timeout=2.0, fresh_process=True).start(["a", "b"])
        assert_type(other, Future[int])
        assert_type(other.error, Optional[BaseException])
        assert_type(other.done, bool)
        assert_type(other.status, str)

        futures = [plain.instance().start(i) for i in range(3)]
        done, not_done = wait(futures, timeout=1.0, return_when=FIRST_COMPLETED)
        assert_type(done, "set[Future[str]]")
        assert_type(wait(futures, return_when=ALL_COMPLETED), DoneAndNotDoneFutures[str])
        for finished in as_completed(futures, timeout=10):
            assert_type(finished, Future[str])
            assert_type(finished.result(), str)

        def on_done(f: Future[str]) -> None:
            print(f.result())

        futures[0].add_done_callback(on_done)

        # task.map(): the values have the function's return type.
        texts = plain.map(range(3), chunksize=10)
        assert_type(texts, TaskMap[str])
        for text in texts:
            assert_type(text, str)
        assert_type(next(plain.map(range(3), ["a", "b", "c"], ordered=False)), str)
        assert_type(plain.map(range(3), errors="return"), TaskMap[Union[str, Exception]])
        assert_type(texts.progress, MapProgress)
        assert_type(texts.done, bool)
        with controlled.map([1, 2]) as lists:
            assert_type(list(lists), List[List[float]])


async def awaiting() -> None:
    with Session():
        value = await controlled.instance().start(3)
        assert_type(value, List[float])
        both = await asyncio.gather(plain.instance().start(1), configured.instance().start([]))
        assert_type(both, "tuple[str, int]")
        wrapped: asyncio.Future[str] = asyncio.ensure_future(plain.instance().start(2))
        assert_type(await wrapped, str)
        shielded = await asyncio.wait_for(asyncio.shield(no_control.instance().start("p")), 1.0)
        assert_type(shielded, Optional[bytes])
    async with Session() as session:
        assert_type(session, Session)
        instance = controlled.instance()
        future = instance.start(3)
        # The standard library's functions take it: it is a concurrent.futures.Future.
        assert_type(await asyncio.wrap_future(future), List[float])
        done, _ = concurrent.futures.wait([future], timeout=1.0)
        assert_type(done, "set[concurrent.futures.Future[List[float]]]")
        assert_type(await instance.stop_async(), str)


def untyped_functions_stay_usable() -> Any:
    def legacy(tc, value):  # type: ignore[no-untyped-def]  # deliberately unannotated
        return value

    legacy_task = task(legacy)
    return legacy_task(1)


def _counted(tc: TaskControl, items: List[str]) -> int:
    return len(items)


def numerous_sdk_spellings() -> None:
    """Code written for numerous-sdk's numerous.tasks type-checks as well."""
    counted = Task(_counted, TaskConfig(max_parallel=2), True)
    typed: Task[[List[str]], int] = counted
    assert_type(counted.config, TaskConfig)
    assert_type(counted.expects_task_control, bool)
    assert_type(counted.definition_name, str)
    with Session("batch", "batch-id") as session:
        assert_type(Session.current(), Optional[Session])
        assert_type(session.id, str)
        instance = counted.instance()
        definition: Task[[List[str]], int] = instance.task_definition
        assert_type(instance.task_control, TaskControl)
        instance.start(["a"])
        assert_type(instance.result, int)
        assert_type(instance.is_running, bool)
        assert_type(instance.task_control.progress, float)
        assert_type(session.tasks, "dict[str, dict[str, TaskInstance[..., Any]]]")
        assert_type(session.get_running_instances_count("counted"), int)
    produced: LocalFuture[int] = LocalFuture()
    produced.set_running()
    produced.set_result(1)
    assert_type(produced.result(), int)
    status: str = TaskStatus.COMPLETED
    backend: Optional[ExecutionBackend] = get_backend()
    local = LocalExecutionBackend(max_workers=2)
    local.execute(_counted, produced, (["a"],), {})
    local.shutdown(wait=True)
