"""The Dask backend measured against plain Dask, on a local cluster of real processes.

    python -m pip install ".[dask]"
    python benchmarks/dask_bench.py            # writes benchmarks/RESULTS_DASK.md
    python benchmarks/dask_bench.py --smoke    # a few repetitions, for CI

It starts its own ``dask scheduler`` and two ``dask worker`` processes (2 threads each) on
127.0.0.1 and measures, in the same run:

* ``stop()`` → ``result()``: a task polling ``tc.should_stop`` is asked to stop; the
  target is 50 ms at the median on loopback;
* per-task overhead: one trivial task's ``start()`` → ``result()`` through numerous.tasks
  next to ``client.submit(f, pure=False).result()`` on the same cluster, one at a time;
* throughput: many trivial tasks in flight at once (``max_parallel=4``) next to
  ``client.submit`` of as many.

Reported as median, p90 and p99 with the ratio to plain Dask. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, List, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the test suite's cluster helper

from dask_cluster import running_cluster  # noqa: E402

from numerous.tasks import Session, TaskControl, set_task_control_handler, task  # noqa: E402
from numerous.tasks.control import TaskControlHandler  # noqa: E402

TARGET_STOP_MS = 50.0


@task(max_parallel=4)
def spin(tc: TaskControl) -> str:
    """Says "ready", then polls should_stop."""
    tc.update_status("ready")
    while not tc.should_stop:
        time.sleep(0.0005)
    return "stopped"


@task(max_parallel=4)
def trivial(value: int) -> int:
    """Returns its argument."""
    return value


def plain(value: int) -> int:
    """The same function for plain client.submit."""
    return value


class _Ready(TaskControlHandler):
    def __init__(self) -> None:
        self.ready = threading.Event()

    def update_status(self, task_control: TaskControl, status: str) -> None:
        if status == "ready":
            self.ready.set()

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        if status == "ready":
            self.ready.set()


def _stats(samples: Sequence[float]) -> Tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), pick(0.9), pick(0.99)


def measure_stop(repeats: int) -> List[float]:
    """Milliseconds from stop() to result() returning."""
    handler = _Ready()
    set_task_control_handler(handler)
    samples = []
    with Session():
        for _ in range(repeats):
            handler.ready.clear()
            instance = spin.instance()
            future = instance.start()
            handler.ready.wait(60)
            asked = time.perf_counter()
            instance.stop()
            future.result(timeout=60)
            samples.append((time.perf_counter() - asked) * 1000)
    set_task_control_handler(None)
    return samples


def measure_overhead(client: Any, repeats: int) -> Tuple[List[float], List[float]]:
    """Milliseconds per trivial task, one at a time: numerous.tasks, then plain Dask
    (interleaved, so both see the same machine)."""
    ours, theirs = [], []
    with Session():
        trivial.instance().start(0).result(timeout=60)  # warm: the session's processes exist
        client.submit(plain, 0, pure=False).result()
        for i in range(repeats):
            started = time.perf_counter()
            trivial.instance().start(i).result(timeout=60)
            ours.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            client.submit(plain, i, pure=False).result()
            theirs.append((time.perf_counter() - started) * 1000)
    return ours, theirs


def measure_throughput(client: Any, count: int) -> Tuple[float, float]:
    """Tasks per second with ``count`` in flight: numerous.tasks, then plain Dask."""
    with Session():
        trivial.instance().start(0).result(timeout=60)
        started = time.perf_counter()
        futures = [trivial.instance().start(i) for i in range(count)]
        [f.result(timeout=120) for f in futures]
        ours = count / (time.perf_counter() - started)
    started = time.perf_counter()
    client.gather([client.submit(plain, i, pure=False) for i in range(count)])
    theirs = count / (time.perf_counter() - started)
    return ours, theirs


def main(argv: Optional[List[str]] = None) -> None:
    """Run the benchmark and write the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a few repetitions only")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS_DASK.md")
    args = parser.parse_args(argv)
    stop_repeats, overhead_repeats, throughput_count = (5, 10, 20) if args.smoke else (60, 200, 400)
    import dask
    import distributed
    from distributed import Client

    with tempfile.TemporaryDirectory() as directory, running_cluster(Path(directory)) as cluster:
        os.environ["NUMEROUS_TASK_BACKEND"] = "dask"
        os.environ["NUMEROUS_DASK_ADDRESS"] = cluster.address
        with Client(cluster.address, set_as_default=False) as client:
            stop = measure_stop(stop_repeats)
            ours, theirs = measure_overhead(client, overhead_repeats)
            ours_rate, theirs_rate = measure_throughput(client, throughput_count)
    s50, s90, s99 = _stats(stop)
    o50, o90, o99 = _stats(ours)
    t50, t90, t99 = _stats(theirs)
    lines = [
        "# Dask backend benchmark",
        "",
        f"Python {platform.python_version()}, dask {dask.__version__}, distributed {distributed.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.platform()}. A scheduler and 2 workers x 2 threads on 127.0.0.1, "
        f"started by the benchmark.{' (smoke run)' if args.smoke else ''}",
        "",
        "| figure | median | p90 | p99 | against |",
        "|---|---|---|---|---|",
        f"| stop() → result(), task polling should_stop ({len(stop)} runs) | {s50:.1f} ms | {s90:.1f} ms | "
        f"{s99:.1f} ms | target ≤ {TARGET_STOP_MS:.0f} ms at the median: "
        f"{'met' if s50 <= TARGET_STOP_MS else 'missed'} |",
        f"| one trivial task, start() → result() ({len(ours)} runs) | {o50:.1f} ms | {o90:.1f} ms | {o99:.1f} ms | "
        f"plain client.submit().result(): {t50:.1f} / {t90:.1f} / {t99:.1f} ms; ratio {o50 / t50:.2f}× |",
        f"| {throughput_count} trivial tasks in flight (max_parallel=4) | {ours_rate:.0f} tasks/s | | | "
        f"plain client.submit: {theirs_rate:.0f} tasks/s; ratio {theirs_rate / ours_rate:.2f}× |",
        "",
        "The overhead over plain Dask buys what plain Dask does not do: a process of its own per",
        "instance (hard stop, crash isolation), the stop request, and logs/progress/status reaching",
        "the handler before result() returns.",
        "",
    ]
    args.output.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
