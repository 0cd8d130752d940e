"""A real Dask cluster for tests: ``dask scheduler`` and ``dask worker`` processes on
127.0.0.1, on ports the OS picks, always torn down (see :func:`running_cluster`).

Workers get ``tests/`` on their ``PYTHONPATH``, so test tasks defined in helper modules
travel by reference to them as they do to local workers. No nanny: a worker that is
killed stays dead, as the worker-death tests need.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

TESTS_DIR = Path(__file__).resolve().parent
#: Seconds the scheduler and every worker get to come up: a cold start imports dask,
#: distributed and tornado (several seconds on a busy 2-core CI machine).
READY_TIMEOUT = 90.0
#: Seconds each process gets to exit on SIGTERM before it is killed.
STOP_TIMEOUT = 10.0


@dataclass
class DaskCluster:
    """The processes of a test cluster and where to reach them."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: Dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)  # by worker address
    directory: Optional[Path] = None

    def worker_processes(self) -> List[subprocess.Popen[bytes]]:
        """The worker processes, in start order."""
        return list(self.workers.values())

    def stop(self) -> None:
        """Terminate workers, then the scheduler; kill what does not exit in time."""
        for process in [*self.workers.values(), self.scheduler]:
            _terminate(process)


def _terminate(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # and whatever it left in its group
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _start(command: List[str], log: Path, env: Dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=str(TESTS_DIR),
            start_new_session=True,
        )


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"the dask scheduler exited ({process.returncode}):\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the dask scheduler did not start within {READY_TIMEOUT} s:\n{log.read_text()}")
        time.sleep(0.02)


def start_cluster(
    directory: Path,
    workers: int = 2,
    nthreads: int = 2,
    python_path: Sequence[str] = (),
    worker_resources: Sequence[Optional[str]] = (),
) -> DaskCluster:
    """Start a scheduler and ``workers`` workers; return once all have registered.
    ``python_path``: directories the workers import from, besides ``tests/``;
    ``worker_resources``: the ``--resources`` of each worker by number (e.g.
    ``"MEMORY=1e9"``; None or missing: none)."""
    from distributed import Client

    directory.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (*python_path, str(TESTS_DIR), env.get("PYTHONPATH", "")) if p)
    env.pop("NUMEROUS_TASK_BACKEND", None)
    scheduler_file = directory / "scheduler.json"
    log = directory / "scheduler.log"
    scheduler = _start(
        [
            sys.executable,
            "-m",
            "distributed.cli.dask_scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        log,
        env,
    )
    cluster = DaskCluster("", scheduler, directory=directory)
    try:
        _wait_for_file(scheduler_file, scheduler, log)
        # The file is written in one go, but may be seen before its content: retry.
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                cluster.address = json.loads(scheduler_file.read_text())["address"]
                break
            except (ValueError, KeyError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        started = cluster.workers  # by name until the addresses are known
        for number in range(workers):
            started[f"w{number}"] = _start(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    cluster.address,
                    "--name",
                    f"w{number}",
                    "--nthreads",
                    str(nthreads),
                    "--no-nanny",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--local-directory",
                    str(directory / f"w{number}"),
                    *_resources_arguments(worker_resources, number),
                ],
                directory / f"w{number}.log",
                env,
            )
        with Client(cluster.address, timeout=READY_TIMEOUT, set_as_default=False) as client:
            client.wait_for_workers(workers, timeout=READY_TIMEOUT)
            by_name = {info["name"]: address for address, info in client.scheduler_info()["workers"].items()}
        cluster.workers = {by_name[name]: process for name, process in started.items()}
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _resources_arguments(worker_resources: Sequence[Optional[str]], number: int) -> List[str]:
    resources = worker_resources[number] if number < len(worker_resources) else None
    return [] if resources is None else ["--resources", resources]


@contextlib.contextmanager
def running_cluster(
    directory: Path,
    workers: int = 2,
    nthreads: int = 2,
    python_path: Sequence[str] = (),
    worker_resources: Sequence[Optional[str]] = (),
) -> Iterator[DaskCluster]:
    """A started cluster that is torn down however the block ends."""
    cluster = start_cluster(directory, workers, nthreads, python_path, worker_resources)
    try:
        yield cluster
    finally:
        cluster.stop()
