"""On a Dask cluster whose workers declare a MEMORY resource, a task's size places it:
each instance asks its size's memory of the worker it runs on, so it lands only where
there is room; a size no worker can hold is an error at once, not a task that waits for good."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import worker_tasks
from dask_cluster import DaskCluster, running_cluster

from numerous.tasks import BackendError, Session, Size

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]
RESULT_WAIT = 60.0


@pytest.fixture
def one_worker_declares_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DaskCluster]:
    """Two workers: w0 declares MEMORY=1e9 (four threads), w1 declares nothing."""
    with running_cluster(tmp_path / "cluster", workers=2, nthreads=4, worker_resources=["MEMORY=1e9"]) as cluster:
        monkeypatch.setenv("NUMEROUS_TASK_BACKEND", "dask")
        monkeypatch.setenv("NUMEROUS_DASK_ADDRESS", cluster.address)
        yield cluster


def test_sized_instances_run_only_on_the_worker_that_declares_room(one_worker_declares_memory: DaskCluster) -> None:
    declaring, silent = (process.pid for process in one_worker_declares_memory.worker_processes())
    with Session(max_workers=None, sizes={"medium": Size(memory="400MB")}):
        futures = [worker_tasks.parent_pid.instance().start() for _ in range(6)]
        ran_under = {future.result(timeout=RESULT_WAIT) for future in futures}
    assert ran_under == {declaring} and silent not in ran_under


def test_a_size_no_worker_can_hold_fails_at_once_naming_the_resource(one_worker_declares_memory: DaskCluster) -> None:
    with Session(max_workers=None, sizes={"medium": Size(memory="2GB")}):
        with pytest.raises(BackendError, match=r"asks 2000000000 bytes .* MEMORY=1000000000") as caught:
            worker_tasks.parent_pid.instance().start()
    assert "--resources MEMORY=" in str(caught.value)
