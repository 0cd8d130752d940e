"""How a call travels to the worker: the standard pickler where it writes what the worker
can load, cloudpickle wherever something must travel by value (lambdas, closures, your
script's functions and classes, modules registered with cloudpickle.register_pickle_by_value)."""

from __future__ import annotations

import importlib
import subprocess
import sys
import types
from pathlib import Path
from typing import Callable, Iterator

import cloudpickle
import pytest
from backend_tasks import apply

from numerous.tasks import Session

pytestmark = pytest.mark.timeout(60)
RESULT_WAIT = 30.0


@pytest.fixture
def module_the_worker_cannot_import(tmp_path: Path) -> Iterator[types.ModuleType]:
    """A module imported here from a folder then taken off sys.path (so a worker started
    afterwards cannot import it), registered to be pickled by value."""
    (tmp_path / "by_value_module.py").write_text("def triple(x):\n    return 3 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("by_value_module")
    finally:
        sys.path.remove(str(tmp_path))
    cloudpickle.register_pickle_by_value(module)
    try:
        yield module
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        del sys.modules["by_value_module"]


def test_a_module_registered_by_value_travels_by_value(module_the_worker_cannot_import: types.ModuleType) -> None:
    triple = module_the_worker_cannot_import.triple
    with Session():
        assert apply.instance().start(triple, 5).result(timeout=RESULT_WAIT) == 15


def test_a_lambda_and_a_local_class_travel_by_value() -> None:
    class Local:
        def __init__(self, value: int) -> None:
            self.value = value

    with Session():
        assert apply.instance().start(lambda x: x * 2, 21).result(timeout=RESULT_WAIT) == 42
        assert apply.instance().start(lambda local: local.value, Local(7)).result(timeout=RESULT_WAIT) == 7


def test_a_call_of_importable_things_does_not_need_cloudpickle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap path: the standard pickler writes a by-reference task with plain
    arguments (cloudpickle's pickler calls Python code for every object it writes)."""
    from numerous.tasks import _pickling

    def refuse(self: object, obj: object) -> None:
        raise AssertionError("cloudpickle was used for a call the standard pickler can write")

    monkeypatch.setattr(_pickling._Pickler, "dump", refuse)
    with Session():
        assert apply.instance().start(abs, -3).result(timeout=RESULT_WAIT) == 3


SCRIPT_WITH_ITS_OWN_TYPES = """
import dataclasses, enum, sys
sys.path.insert(0, {tests!r})
from backend_tasks import apply
from numerous.tasks import Session

@dataclasses.dataclass
class Point:
    x: int
    y: int

class Colour(enum.Enum):
    RED = 1

def norm(point):
    return abs(point.x) + abs(point.y)

with Session():
    print(apply.instance().start(norm, Point(3, -4)).result(timeout=30))
    print(apply.instance().start(lambda colour: colour.name, Colour.RED).result(timeout=30))
    print(apply.instance().start(type, Point(1, 2)).result(timeout=30).__name__)
"""


def test_a_scripts_own_functions_classes_and_enums_travel_by_value_as_arguments(tmp_path: Path) -> None:
    """A script is not re-imported in the worker: what it defines must travel by value,
    even where the standard pickler would write a reference to ``__main__``."""
    script = tmp_path / "script.py"
    script.write_text(SCRIPT_WITH_ITS_OWN_TYPES.format(tests=str(Path(__file__).parent)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=50)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["7", "RED", "Point"]


_VERSION_TASK = "from numerous.tasks import task\n\n@task\ndef version() -> str:\n    return {!r}\n"


@pytest.fixture
def reloadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], types.ModuleType]]:
    """``reloadable(version)``: the module ``reloaded_tasks`` (from tmp_path, importable by
    workers) with a task ``version()`` returning ``version``; called again, it rewrites the
    file and reloads the module, as a notebook's autoreload does."""
    source = tmp_path / "reloaded_tasks.py"
    monkeypatch.syspath_prepend(str(tmp_path))

    def write_and_load(version: str) -> types.ModuleType:
        source.write_text(_VERSION_TASK.format(version))
        importlib.invalidate_caches()
        module = sys.modules.get("reloaded_tasks")
        return importlib.import_module("reloaded_tasks") if module is None else importlib.reload(module)

    try:
        yield write_and_load
    finally:
        sys.modules.pop("reloaded_tasks", None)


def test_a_task_started_again_after_its_module_was_reloaded_runs_the_code_it_was_made_from(
    reloadable: Callable[[str], types.ModuleType],
) -> None:
    """A task that travels by reference is sent as its module and name only while its module
    still holds it there: after a reload the old task object runs the old code (by value),
    the new one the new code."""
    first = reloadable("first").version
    with Session():
        assert first.instance().start().result(timeout=RESULT_WAIT) == "first"  # by reference
        second = reloadable("second").version
        # New processes (a warm one keeps the module it imported: noticed, not changed here)
        assert second.instance(fresh_process=True).start().result(timeout=RESULT_WAIT) == "second"
        assert first.instance(fresh_process=True).start().result(timeout=RESULT_WAIT) == "first"


def test_inline_a_reloaded_tasks_new_and_old_objects_each_run_their_own_code(
    reloadable: Callable[[str], types.ModuleType],
) -> None:
    """Inline, the call is loaded in this process, where the reload happened: a task loaded
    from its reference before must not stand in for the module's new one."""
    first = reloadable("first").version
    with Session(backend="inline"):
        assert first.instance().start().result(timeout=RESULT_WAIT) == "first"
        second = reloadable("second").version
        assert second.instance().start().result(timeout=RESULT_WAIT) == "second"
        assert first.instance().start().result(timeout=RESULT_WAIT) == "first"
