"""@task(size=...): each size's memory limit (enforced on the local backend) and how many
of the session's max_workers one instance takes; Session(sizes=...) and Size's validation."""

from __future__ import annotations

from pathlib import Path

import pytest
import worker_tasks
from api_tasks import RecordingHandler
from test_session import _intervals, _peak_overlap

from numerous.tasks import MemoryLimitError, Session, Size, TaskError, set_task_control_handler
from numerous.tasks.sizes import DEFAULT_SIZES, parse_memory, total_memory

RESULT_WAIT = 30.0


def _use_handler() -> RecordingHandler:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    return handler


# -- memory -------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
def test_a_task_over_its_memory_limit_is_killed_with_a_clear_error_and_nothing_else_is_harmed(tmp_path: Path) -> None:
    handler = _use_handler()
    log, go = tmp_path / "runs.log", tmp_path / "go"
    with Session(backend="local", max_workers=None, sizes={"small": Size(memory="150MB")}):
        sibling = worker_tasks.timed_a.instance().start(str(log), "sibling", str(go))
        handler.wait_for_status("running sibling")
        hog = worker_tasks.hog.instance().start(10, 1000)  # grows to 1000 MB, 10 MB at a time
        with pytest.raises(MemoryLimitError) as caught:
            hog.result(timeout=RESULT_WAIT)
        assert hog.status == "failed" and sibling.status == "running"  # the sibling runs on
        go.touch()
        assert sibling.result(timeout=RESULT_WAIT) == "sibling"
        after = worker_tasks.hog.instance().start(10, 50)  # within the limit: runs to its end
        assert after.result(timeout=RESULT_WAIT) == "held 50 MB"
    error = caught.value
    assert isinstance(error, TaskError)
    assert (error.size, error.limit) == ("small", 150_000_000)
    assert 150_000_000 < error.peak < 1000 * 2**20
    message = str(error)
    assert "'hog'" in message and "size 'small'" in message and "143.1 MiB (150000000 bytes)" in message
    assert f"({error.peak} bytes" in message and "was killed" in message


@pytest.mark.timeout(60)
def test_a_size_without_a_memory_limit_lets_the_task_grow(tmp_path: Path) -> None:
    with Session(backend="local", sizes={"small": Size(memory=None)}):
        assert worker_tasks.hog.instance().start(20, 200).result(timeout=RESULT_WAIT) == "held 200 MB"


# -- workers ------------------------------------------------------------------------------------
@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_a_large_instance_takes_four_workers_and_is_not_overtaken_by_smaller_ones(tmp_path: Path) -> None:
    handler = _use_handler()
    log = tmp_path / "runs.log"
    plan = [("a0", worker_tasks.timed_a), ("L", worker_tasks.timed_large), ("b0", worker_tasks.timed_b)]
    gates = {label: tmp_path / f"go-{label}" for label, _ in plan}
    with Session(max_workers=4):
        futures = {label: task.instance().start(str(log), label, str(gates[label])) for label, task in plan}
        handler.wait_for_status("running a0")
        # L needs all four workers, a0 holds one: L waits, and b0 (which would fit) waits behind it
        assert {label: f.status for label, f in futures.items()} == {"a0": "running", "L": "pending", "b0": "pending"}
        gates["a0"].touch()
        handler.wait_for_status("running L")
        assert futures["b0"].status == "pending"
        gates["L"].touch()
        handler.wait_for_status("running b0")
        gates["b0"].touch()
    order, intervals = _intervals(log)
    assert order == ["a0", "L", "b0"] and _peak_overlap(intervals) == 1


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_two_medium_instances_fill_four_workers_and_a_large_one_runs_alone_in_two(tmp_path: Path) -> None:
    handler = _use_handler()
    log = tmp_path / "runs.log"
    labels = ["m0", "m1", "m2"]
    gates = {label: tmp_path / f"go-{label}" for label in [*labels, "L"]}
    with Session(max_workers=4):
        futures = [worker_tasks.timed_medium.instance().start(str(log), x, str(gates[x])) for x in labels]
        handler.wait_for_status("running m0")
        handler.wait_for_status("running m1")
        assert [f.status for f in futures] == ["running", "running", "pending"]
        for label in labels:
            gates[label].touch()
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == labels
    with Session(max_workers=2):  # large asks for 4: capped at 2, so it runs, alone
        large = worker_tasks.timed_large.instance().start(str(log), "L", str(gates["L"]))
        handler.wait_for_status("running L")
        gates["L"].touch()
        assert large.result(timeout=RESULT_WAIT) == "L"
    _, intervals = _intervals(log)
    assert _peak_overlap({k: v for k, v in intervals.items() if k in labels}) == 2


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("task_backend")  # the same body on every backend
def test_session_sizes_override_the_workers_a_size_takes(tmp_path: Path) -> None:
    handler = _use_handler()
    log, go = tmp_path / "runs.log", tmp_path / "go"
    with Session(max_workers=2, sizes={"large": Size(workers=1)}):  # the others keep their defaults
        futures = [worker_tasks.timed_large.instance().start(str(log), x, str(go)) for x in ("L0", "L1")]
        handler.wait_for_status("running L0")
        handler.wait_for_status("running L1")  # two large ones at once in two workers
        go.touch()
        assert [f.result(timeout=RESULT_WAIT) for f in futures] == ["L0", "L1"]


# -- validation ---------------------------------------------------------------------------------
def test_memory_figures_read_as_documented() -> None:
    assert parse_memory(1000) == 1000
    assert parse_memory("512MB") == 512 * 10**6
    assert parse_memory("1.5 GiB") == int(1.5 * 2**30)
    assert parse_memory("8gb") == 8 * 10**9
    assert parse_memory("25%") == int(25 * total_memory() / 100)
    assert Size(memory="2KiB").memory_bytes() == 2048 and Size().memory_bytes() is None


@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"memory": "lots"}, ValueError, "cannot read memory figure 'lots'"),
        ({"memory": "8 parsecs"}, ValueError, "cannot read memory figure"),
        ({"memory": 0}, ValueError, "must be > 0"),
        ({"memory": "0%"}, ValueError, "> 0% and <= 100%"),
        ({"memory": "150%"}, ValueError, "> 0% and <= 100%"),
        ({"memory": 1.5}, TypeError, "int of bytes or a str"),
        ({"workers": 0}, ValueError, "Size.workers must be at least 1, not 0"),
        ({"workers": 2.0}, TypeError, "Size.workers must be an int"),
    ],
)
def test_a_bad_size_is_refused_naming_what_is_wrong(fields: dict, error: type, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(error, match=match):
        Size(**fields)


def test_session_sizes_must_name_known_sizes_and_hold_size_objects() -> None:
    with pytest.raises(ValueError, match="'huge' is no size"):
        Session(sizes={"huge": Size()})
    with pytest.raises(TypeError, match=r"sizes\['small'\] must be a numerous.tasks.Size, not int"):
        Session(sizes={"small": 5})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="sizes must be a dict"):
        Session(sizes=[("small", Size())])  # type: ignore[arg-type]


def test_the_default_sizes_are_shares_of_memory_and_one_two_four_workers() -> None:
    assert {name: (s.memory, s.workers) for name, s in DEFAULT_SIZES.items()} == {
        "small": ("12.5%", 1),
        "medium": ("25%", 2),
        "large": ("50%", 4),
    }
    assert Size(memory="1GB", workers=2) == Size(memory="1GB", workers=2)  # a value
    with pytest.raises(AttributeError):
        Size().workers = 3  # type: ignore[misc]  # frozen
