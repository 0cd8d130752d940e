"""numerous.tasks side by side with ProcessPoolExecutor (spawn), pebble and loky.

    python -m pip install ".[bench]"
    python benchmarks/run.py            # full run, writes benchmarks/RESULTS.md
    python benchmarks/run.py --smoke    # a few repetitions of each, for CI
    python benchmarks/run.py --repeat 5 # five whole runs: each figure with its runs' range

Every figure is measured for numerous.tasks and each peer in the same run, with the
repetitions interleaved, and reported as median, p90 and p99 with the ratio of each
peer's median to ours (above 1: we are faster). Machine facts head the output.
Nothing here asserts a time: targets are read off the table, not enforced by tests.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Tuple

import _syscall_count
import _work
import psutil
from _floor import StopFloor
from _peers import SPAWN, loky, optional, pebble, peer_pools

from numerous.tasks import Session, TaskCancelledError, TaskControl, set_task_control_handler
from numerous.tasks.control import TaskControlHandler

Row = Tuple[str, List[float]]  # implementation, samples (in the figure's unit)


# -- peers -------------------------------------------------------------------------------
def peer_versions() -> Dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("numerous.tasks", "pebble", "loky", "cloudpickle", "tblib", "psutil"):
        module = optional(name)
        if name == "numerous.tasks":
            import numerous.tasks as module
        versions[name] = getattr(module, "__version__", "not installed") if module else "not installed"
    return versions


# -- statistics and the report -------------------------------------------------------------
def percentile(samples: Sequence[float], q: float) -> float:
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


class Report:
    """Collects figures and renders them as Markdown.

    A figure measured in several whole runs (``--repeat``) is rendered once: the median
    of the runs' medians with their range, p90 and p99 of every sample, and each peer's
    ratio as the median of the runs' ratios with their range.
    """

    def __init__(self) -> None:
        #: title -> (unit, note, higher_is_better, row name -> each run's samples)
        self.figures: Dict[str, Tuple[str, str, bool, Dict[str, List[List[float]]]]] = {}

    def figure(self, title: str, unit: str, rows: List[Row], note: str = "", higher_is_better: bool = False) -> None:
        """Add one run of a figure (the first row is ours) and print that run's table."""
        runs = self.figures.setdefault(title, (unit, note, higher_is_better, {}))[3]
        for name, samples in rows:
            runs.setdefault(name, []).append(list(samples))
        print(
            self._table(title, unit, note, higher_is_better, {name: [samples] for name, samples in rows}) + "\n",
            flush=True,
        )

    @staticmethod
    def _ratio(ours: float, peer: float, higher_is_better: bool) -> float:
        return ours / peer if higher_is_better else peer / ours

    def _table(
        self, title: str, unit: str, note: str, higher_is_better: bool, rows: Dict[str, List[List[float]]]
    ) -> str:
        runs = max(len(per_run) for per_run in rows.values())
        spread = runs > 1
        lines = [f"### {title}", ""]
        if note:
            lines += [note, ""]
        if spread:
            lines += [f"Over {runs} whole runs: the median of the runs' medians, and their range.", ""]
        lines += [
            f"| implementation | median ({unit}) |"
            + (" runs' range |" if spread else "")
            + " p90 | p99 | n | "
            + ("ours / peer median" if higher_is_better else "peer median / ours")
            + " |",
            "|---|---:|" + ("---:|" if spread else "") + "---:|---:|---:|---:|",
        ]
        ours_runs = next(iter(rows.values()))
        for name, per_run in rows.items():
            pooled = [x for samples in per_run for x in samples]
            if not pooled:
                lines.append(f"| {name} | n/a |" + (" |" if spread else "") + " | | 0 | |")
                continue
            medians = [statistics.median(samples) for samples in per_run if samples]
            ratio = ""
            if not name.startswith("numerous.tasks"):  # rows named so are ours
                ratios = [
                    self._ratio(statistics.median(o), statistics.median(p), higher_is_better)
                    for o, p in zip(ours_runs, per_run)
                    if o and p
                ]
                if ratios:
                    ratio = f"{statistics.median(ratios):.2f}×"
                    if spread:
                        ratio += f" ({min(ratios):.2f}–{max(ratios):.2f})"
            range_cell = f" {min(medians):,.3g}–{max(medians):,.3g} |" if spread else ""
            lines.append(
                f"| {name} | {statistics.median(medians):,.3g} |{range_cell} {percentile(pooled, 0.9):,.3g} | "
                f"{percentile(pooled, 0.99):,.3g} | {len(pooled)} | {ratio} |"
            )
        return "\n".join(lines)

    def render(self, header: str) -> str:
        """Every figure, each once, in the order first measured."""
        tables = [
            self._table(title, unit, note, higher, rows) for title, (unit, note, higher, rows) in self.figures.items()
        ]
        return header + "\n\n" + "\n\n".join(tables) + "\n"


# -- helpers ---------------------------------------------------------------------------------
def wait_for(predicate: Callable[[], bool], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not happen in time")
        time.sleep(0.0002)


def wait_for_time(seconds: float) -> None:
    """Wait as :func:`wait_for` does (in sleeps of 0.2 ms), for ``seconds``."""
    until = time.monotonic() + seconds
    wait_for(lambda: time.monotonic() >= until)


#: How soon after start() the stop figure stops each task of its "one stop after another" row (s).
_SOON = 0.001


def us(ns: float) -> float:
    return ns / 1e3


def ms(ns: float) -> float:
    return ns / 1e6


# -- the figures -------------------------------------------------------------------------------
def stop_to_result(report: Report, reps: int) -> None:
    ours: List[float] = []
    ours_by_library: List[float] = []
    ours_in_a_row: List[float] = []
    pebble_done: List[float] = []
    pebble_gone: List[float] = []
    floors: Dict[str, List[float]] = {"bare": [], "value": [], "bare, in a row": [], "value, in a row": []}
    pool = pebble.ProcessPool(max_workers=1, context=SPAWN) if pebble else None
    stop_floor, stop_value_floor = StopFloor(), StopFloor(value=True)
    with Session(name="bench-stop"), tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps):
            instance = _work.nt_poll_until_stopped.instance()
            started = time.perf_counter_ns()
            future = instance.start()
            wait_for(lambda: instance.times.running_ns is not None)
            t0 = time.perf_counter_ns()
            instance.stop()
            future.result()
            ours.append(us(time.perf_counter_ns() - t0))
            ours_by_library.append(us(instance.times.finished_ns - instance.times.stop_requested_ns))
            # The floors, their helper spinning as long as our task ran before its stop.
            spun = (t0 - started) / 1e9
            floors["bare"].append(stop_floor.sample_us(spun))
            floors["value"].append(stop_value_floor.sample_us(spun))
            if pool is not None:
                ready = os.path.join(tmp, f"ready-{rep}")
                peer = pool.schedule(_work.spin_until_file, args=(ready,))
                wait_for(lambda: os.path.exists(ready))
                worker_pids = {int(Path(ready).read_text())}
                t0 = time.perf_counter_ns()
                peer.cancel()
                wait_for(peer.done)
                pebble_done.append(us(time.perf_counter_ns() - t0))
                wait_for(lambda: not _spinning(worker_pids))
                pebble_gone.append(us(time.perf_counter_ns() - t0))
                pool.schedule(_work.tiny, args=(0,)).result()  # its new worker is up: quiet again
        # One stop after another, each 1 ms after its start() (a warm worker runs the body
        # within 0.3 ms): what a stop costs with nothing else run in between.
        for _ in range(reps):
            instance = _work.nt_poll_until_stopped.instance()
            future = instance.start()
            wait_for_time(_SOON)
            t0 = time.perf_counter_ns()
            instance.stop()
            future.result()
            if instance.times.running_ns is not None:  # its body ran: a stop of running work
                ours_in_a_row.append(us(time.perf_counter_ns() - t0))
    floors["bare, in a row"] = [stop_floor.sample_us(_SOON) for _ in range(reps)]
    floors["value, in a row"] = [stop_value_floor.sample_us(_SOON) for _ in range(reps)]
    stop_floor.close()
    stop_value_floor.close()
    if pool is not None:
        pool.stop()
        pool.join()
    report.figure(
        "stop() → result() returns, task polling should_stop",
        "µs",
        [
            ("numerous.tasks", ours),
            ("numerous.tasks (finished_ns − stop_requested_ns)", ours_by_library),
            ("numerous.tasks, one stop after another, each 1 ms after start()", ours_in_a_row),
            ("pebble: cancel() → work actually stopped (worker killed)", pebble_gone),
            ("pebble: cancel() → future done (work still running)", pebble_done),
            ("ProcessPoolExecutor, loky", []),
            (
                "no library: shared byte → spinning process → pipe → poll() wakes (this machine's floor)",
                floors["bare"],
            ),
            ("no library, a value sent: the same, the value pickled into the write and unpickled", floors["value"]),
            ("no library, one after another, each after 1 ms of spin", floors["bare, in a row"]),
            ("no library, a value sent, one after another, each after 1 ms of spin", floors["value, in a row"]),
        ],
        note="Target p50 ≤ 150 µs, p99 ≤ 1 ms. The first row stops each task once the library "
        "reports it running, about 50 ms after start(), with the peers' and the floors' samples "
        "in between; the third stops one task after another, each 1 ms after its start(). "
        "ProcessPoolExecutor and loky cannot stop a running call (their cancel() only works "
        "before it starts). The last four rows are floors (benchmarks/_floor.py): the same "
        "wake-up with nothing in between, and with the least Python any library needs on it "
        "(pickle the value, one framed write; read it, unpickle it); the first two sampled next "
        "to our first row, their helper spinning as long as our task ran before its stop, the "
        "last two one after another like our third row.",
    )


def _spinning(pids: set) -> bool:
    """Whether any of these processes still runs (a zombie has stopped working)."""
    import psutil

    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return True
        except psutil.Error:
            continue
    return False


def hard_stop(report: Report, reps: int) -> None:
    ours: List[float] = []
    with Session(name="bench-hard-stop", stop_grace=0.0):
        for rep in range(reps):
            instance = _work.nt_ignore_stop.instance()
            future = instance.start(rep % 2 == 0)  # every other one with a child process
            wait_for(lambda: instance.times.running_ns is not None)
            t0 = time.perf_counter_ns()
            instance.stop(timeout=0)
            try:
                future.result()
            except TaskCancelledError:
                pass
            ours.append(ms(time.perf_counter_ns() - t0))
    report.figure(
        "hard stop of a task ignoring should_stop (grace 0) → future done, tree gone",
        "ms",
        [("numerous.tasks", ours)],
        note="Target p99 ≤ 20 ms. SIGTERM to the worker, its process group "
        "and its tree, SIGKILL 0.5 s later if needed; the future resolves after "
        "the worker is reaped. Half the tasks have a child process of their own.",
    )


def in_worker_costs(report: Report, reps: int) -> None:
    from numerous.tasks.backends.local._shm import Arena
    from numerous.tasks.backends.local._worker import WorkerSink, WorkerTaskControl, _Channel

    arena = Arena.create()
    block = arena.take()
    assert block is not None
    read_fd, write_fd = os.pipe()
    channel = _Channel(write_fd)
    sink = WorkerSink(block, channel)
    tc = WorkerTaskControl("bench", "bench", sink=sink)
    event = SPAWN.Event()
    queue = SPAWN.Queue()
    n = 200_000
    rows: Dict[str, List[float]] = {k: [] for k in ("should_stop", "event", "progress", "queue")}
    for _ in range(reps):
        # Loops as timeit runs them (itertools.repeat: no int object per pass), the same
        # for ours and the peer, so the figure is the read and not the loop around it.
        t0 = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            tc.should_stop
        rows["should_stop"].append((time.perf_counter_ns() - t0) / n)
        t0 = time.perf_counter_ns()
        for _ in itertools.repeat(None, n):
            event.is_set()
        rows["event"].append((time.perf_counter_ns() - t0) / n)
        t0 = time.perf_counter_ns()
        for _ in range(n):
            tc.update_progress(50.0, "halfway there")
        rows["progress"].append((time.perf_counter_ns() - t0) / n)
        t0 = time.perf_counter_ns()
        for _ in range(n // 10):
            queue.put((50.0, "halfway there"))
        rows["queue"].append((time.perf_counter_ns() - t0) / (n // 10))
        for _ in range(n // 10):
            queue.get()
    queue.close()
    queue.join_thread()
    os.close(read_fd)
    sink.release()
    block.close()
    arena.retire()
    report.figure(
        "one tc.should_stop read in the worker",
        "ns",
        [("numerous.tasks", rows["should_stop"]), ("multiprocessing.Event.is_set()", rows["event"])],
        note="Target ≤ 60 ns. Measured in this process on a real control block.",
    )
    report.figure(
        "one tc.update_progress(pct, status) in the worker",
        "ns",
        [("numerous.tasks", rows["progress"]), ("multiprocessing.Queue.put()", rows["queue"])],
        note="Target ≤ 1 µs. A seqlocked write into the control block; validation included.",
    )


class _Counter(TaskControlHandler):
    def __init__(self) -> None:
        self.count = 0

    def log(self, task_control: TaskControl, message: str, level: str, **extra: Any) -> None:
        self.count += 1


def log_throughput(report: Report, reps: int, lines: int) -> None:
    ours: List[float] = []
    stdlib: List[float] = []
    counter = _Counter()
    previous = set_task_control_handler(counter)
    try:
        with Session(name="bench-logs"):
            for _ in range(reps):
                counter.count = 0
                instance = _work.nt_log_lines.instance()
                instance.start(lines).result()
                assert counter.count == lines
                elapsed = instance.times.finished_ns - instance.times.running_ns
                ours.append(lines / (elapsed / 1e9))
                queue = SPAWN.Queue()
                process = SPAWN.Process(target=_work.log_through_queue, args=(queue, lines))
                process.start()
                queue.get()
                t0 = time.perf_counter_ns()
                for _ in range(lines - 1):
                    queue.get()
                stdlib.append((lines - 1) / ((time.perf_counter_ns() - t0) / 1e9))
                process.join()
                queue.close()
    finally:
        set_task_control_handler(previous)
    report.figure(
        "tc.log lines per second delivered to a parent-side handler",
        "lines/s",
        [("numerous.tasks", ours), ("logging + QueueHandler + multiprocessing.Queue", stdlib)],
        note="Target ≥ 1.5 M/s. From the body starting to the last record handed to the handler.",
        higher_is_better=True,
    )


def start_latency_warm(report: Report, reps: int) -> None:
    ours: List[float] = []
    peers: Dict[str, List[float]] = {"ProcessPoolExecutor (spawn)": [], "pebble": [], "loky": []}
    executors: Dict[str, Any] = {
        "ProcessPoolExecutor (spawn)": concurrent.futures.ProcessPoolExecutor(1, mp_context=SPAWN)
    }
    if pebble:
        executors["pebble"] = pebble.ProcessPool(max_workers=1, context=SPAWN)
    if loky:
        executors["loky"] = loky.get_reusable_executor(max_workers=1)
    submit = {
        "ProcessPoolExecutor (spawn)": lambda e: e.submit(_work.body_started_ns),
        "pebble": lambda e: e.schedule(_work.body_started_ns),
        "loky": lambda e: e.submit(_work.body_started_ns),
    }
    for name, executor in executors.items():  # warm every pool first
        submit[name](executor).result()
    with Session(name="bench-warm"):
        _work.nt_body_started_ns.instance().start().result()
        for _ in range(reps):
            instance = _work.nt_body_started_ns.instance()
            instance.start().result()
            ours.append(us(instance.times.running_ns - instance.times.started_ns))
            for name, executor in executors.items():
                t0 = time.monotonic_ns()
                body = submit[name](executor).result()
                peers[name].append(us(body - t0))
    executors["ProcessPoolExecutor (spawn)"].shutdown()
    if pebble:
        executors["pebble"].stop()
        executors["pebble"].join()
    if loky:
        executors["loky"].shutdown()
    report.figure(
        "start() → body running, warm worker",
        "µs",
        [("numerous.tasks", ours)] + list(peers.items()),
        note="Target p50 ≤ 300 µs. From start()/submit() to the body's first line (the worker's monotonic clock).",
    )


def round_trip_warm(report: Report, reps: int) -> None:
    ours: List[float] = []
    peers: Dict[str, List[float]] = {}
    pools = peer_pools(1)
    with Session(name="bench-round-trip"):
        _work.nt_tiny.instance().start(0).result()
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            _work.nt_tiny.instance().start(1).result()
            ours.append(us(time.perf_counter_ns() - t0))
            for name, (_, submit, _) in pools.items():
                t0 = time.perf_counter_ns()
                submit(_work.tiny, 1).result()
                peers.setdefault(name, []).append(us(time.perf_counter_ns() - t0))
    for pool, _, close in pools.values():
        close(pool)
    report.figure(
        "start() → result() round trip, warm worker",
        "µs",
        [("numerous.tasks", ours)] + list(peers.items()),
        note="Target ≤ 0.8× ProcessPoolExecutor and ≤ 1.0× pebble. One tiny call at a time, from "
        "start()/submit() to its value in the caller.",
    )


def round_trip_steps(report: Report, reps: int) -> None:
    """Where one warm round trip's time goes, by the caller's and the body's own clocks
    (``time.monotonic_ns`` is the same clock in every process of a machine)."""
    steps: Dict[str, List[float]] = {
        name: []
        for name in (
            "numerous.tasks: start() call",
            "numerous.tasks: start() returned → body began (job to the worker)",
            "numerous.tasks: body began → body returned",
            "numerous.tasks: body returned → result() returned (outcome to the caller)",
            "numerous.tasks: whole round trip",
        )
    }
    with Session(name="bench-round-trip-steps"):
        _work.nt_body_span_ns.instance().start().result()
        for _ in range(reps):
            t0 = time.monotonic_ns()
            future = _work.nt_body_span_ns.instance().start()
            t1 = time.monotonic_ns()
            began, returned = future.result()
            t2 = time.monotonic_ns()
            for samples, (start, end) in zip(
                steps.values(), ((t0, t1), (t1, began), (began, returned), (returned, t2), (t0, t2))
            ):
                samples.append(us(end - start))
    report.figure(
        "one warm round trip, step by step",
        "µs",
        list(steps.items()),
        note="Ours only: the peers have no clock inside their workers' calls. The steps are "
        "medians of their own, so they need not add up to the whole. The body may begin before "
        "start() returns (start() ends its bookkeeping after the job is written), so the second "
        "step can be negative.",
    )


def syscalls_per_task(report: Report, reps: int, tasks: int) -> None:
    rows: Dict[str, List[float]] = {name: [] for name in _syscall_count.IMPLEMENTATIONS}
    if not pebble:
        del rows["pebble"]
    available = _syscall_count.strace_available()
    for _ in range(reps if available else 0):
        for name, samples in rows.items():
            samples.append(_syscall_count.per_task(name, tasks))
    report.figure(
        f"system calls per task, {tasks:,} tiny tasks on a warm pool of 2 (strace -f -c)",
        "calls",
        list(rows.items()),
        note="Target ≤ 20. Every process of the tree counted; a run with no tasks is subtracted, so "
        "starting, warming and closing the pool cancel out."
        + ("" if available else " strace is not installed (or may not trace) here: not measured."),
    )


def throughput_warm(report: Report, reps: int, tasks: int) -> None:
    rows: Dict[str, List[float]] = {"numerous.tasks": []}
    pools = peer_pools(2)
    with Session(name="bench-throughput-warm"):
        [f.result() for f in [_work.nt_tiny.instance().start(i) for i in range(4)]]  # 2 warm workers
        for _ in range(reps):
            t0 = time.perf_counter()
            futures = [_work.nt_tiny.instance().start(i) for i in range(tasks)]
            assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]
            rows["numerous.tasks"].append(tasks / (time.perf_counter() - t0))
            for name, (_, submit, _) in pools.items():
                t0 = time.perf_counter()
                futures = [submit(_work.tiny, i) for i in range(tasks)]
                assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]
                rows.setdefault(name, []).append(tasks / (time.perf_counter() - t0))
    for pool, _, close in pools.values():
        close(pool)
    report.figure(
        f"{tasks:,} tiny tasks on a warm pool (2 workers, max_parallel=2)",
        "tasks/s",
        list(rows.items()),
        note="Target ≥ 1.0× pebble. Workers already started; from the first start()/submit() to the last value.",
        higher_is_better=True,
    )


def start_latency_fresh(report: Report, reps: int) -> None:
    ours: List[float] = []
    ppe: List[float] = []
    with Session(name="bench-fresh"):
        for _ in range(reps):
            instance = _work.nt_body_started_ns.instance(fresh_process=True)
            instance.start().result()
            ours.append(ms(instance.times.running_ns - instance.times.started_ns))
            t0 = time.monotonic_ns()
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=SPAWN) as pool:
                body = pool.submit(_work.body_started_ns).result()
            ppe.append(ms(body - t0))
    report.figure(
        "start() → body running, fresh process",
        "ms",
        [("numerous.tasks (fresh_process=True)", ours), ("ProcessPoolExecutor (spawn), new pool", ppe)],
        note="Target ≤ 60 ms. A new interpreter per instance.",
    )


def throughput(report: Report, reps: int, tasks: int) -> None:
    rows: Dict[str, List[float]] = {"numerous.tasks": [], "pebble": [], "ProcessPoolExecutor (spawn)": [], "loky": []}
    for _ in range(reps):
        t0 = time.perf_counter()
        with Session(name="bench-throughput"):
            futures = [_work.nt_tiny.instance().start(i) for i in range(tasks)]
            assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]
        rows["numerous.tasks"].append(tasks / (time.perf_counter() - t0))
        if pebble:
            t0 = time.perf_counter()
            pool = pebble.ProcessPool(max_workers=2, context=SPAWN)
            futures = [pool.schedule(_work.tiny, args=(i,)) for i in range(tasks)]
            assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]
            pool.stop()
            pool.join()
            rows["pebble"].append(tasks / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=SPAWN) as executor:
            futures = [executor.submit(_work.tiny, i) for i in range(tasks)]
            assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]
        rows["ProcessPoolExecutor (spawn)"].append(tasks / (time.perf_counter() - t0))
        if loky:
            t0 = time.perf_counter()
            executor = loky.ProcessPoolExecutor(max_workers=2)
            futures = [executor.submit(_work.tiny, i) for i in range(tasks)]
            assert [f.result() for f in futures] == [i + 1 for i in range(tasks)]
            executor.shutdown()
            rows["loky"].append(tasks / (time.perf_counter() - t0))
    report.figure(
        f"{tasks:,} tiny tasks through one session (max_parallel=2), from nothing to all results",
        "tasks/s",
        list(rows.items()),
        note="Target ≥ 1.5× pebble. Each run includes starting and stopping the pool (or session).",
        higher_is_better=True,
    )


def map_throughput(report: Report, reps: int, items: int, chunksize: int) -> None:
    ours, ppe, peb = (
        "numerous.tasks (task.map, max_parallel=2)",
        "ProcessPoolExecutor.map (spawn, 2 workers)",
        "pebble ProcessPool.map (2 workers)",
    )
    rows: Dict[str, List[float]] = {ours: [], ppe: [], peb: []}
    expected_last = (items - 1) ** 2

    def measure(name: str, run: Callable[[], List[int]]) -> None:
        t0 = time.perf_counter()
        values = run()
        rows[name].append(items / (time.perf_counter() - t0))
        assert len(values) == items and values[-1] == expected_last

    warm = range(4 * chunksize)
    with Session(name="bench-map"), concurrent.futures.ProcessPoolExecutor(2, mp_context=SPAWN) as executor:
        # Warm both: their workers are spawned and have imported the work function.
        list(_work.nt_square.map(warm, chunksize=chunksize))
        list(executor.map(_work.square, warm, chunksize=chunksize))
        for _ in range(reps):
            measure(ours, lambda: list(_work.nt_square.map(range(items), chunksize=chunksize)))
            measure(ppe, lambda: list(executor.map(_work.square, range(items), chunksize=chunksize)))
    if pebble:  # 10-40x slower per item: fewer runs, after the others, its pool gone after
        pool = pebble.ProcessPool(max_workers=2, context=SPAWN)
        list(pool.map(_work.square, warm, chunksize=chunksize).result())
        for _ in range(max(2, reps // 4)):
            measure(peb, lambda: list(pool.map(_work.square, range(items), chunksize=chunksize).result()))
        pool.stop()
        pool.join()
    report.figure(
        f"map: {items:,} tiny items, chunksize {chunksize:,}, warm workers, from the call to the last value",
        "items/s",
        list(rows.items()),
        note="Target ≥ ProcessPoolExecutor.map with the same chunksize. Each chunk is one instance "
        "(one worker call) for every implementation. numerous.tasks and ProcessPoolExecutor "
        "runs alternate; pebble's (many times slower) follow, in a pool of their own.",
        higher_is_better=True,
    )


def big_result_round_trip(report: Report, reps: int, size: int) -> None:
    ours: List[float] = []
    ppe: List[float] = []
    with Session(name="bench-big"), concurrent.futures.ProcessPoolExecutor(1, mp_context=SPAWN) as executor:
        _work.nt_big_result.instance().start(10).result()
        executor.submit(_work.big_result, 10).result()
        for _ in range(reps):
            t0 = time.perf_counter_ns()
            assert len(_work.nt_big_result.instance().start(size).result()) == size
            ours.append(ms(time.perf_counter_ns() - t0))
            t0 = time.perf_counter_ns()
            assert len(executor.submit(_work.big_result, size).result()) == size
            ppe.append(ms(time.perf_counter_ns() - t0))
    report.figure(
        f"{size // 2**20} MB result round trip (warm worker)",
        "ms",
        [("numerous.tasks", ours), ("ProcessPoolExecutor (spawn)", ppe)],
        note="Target ≤ ProcessPoolExecutor in the same run.",
    )


def machine_facts() -> str:
    versions = peer_versions()
    return (
        "# Benchmark results\n\n"
        f"Written by `python benchmarks/run.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.\n\n"
        f"- machine: {os.cpu_count()} cores ({platform.machine()}), "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.system()} {platform.release()}\n"
        + "".join(f"- {name}: {version}\n" for name, version in versions.items())
    )


#: Every figure, in the order a run measures them (``--only`` names).
FIGURES = (
    "stop",
    "hard-stop",
    "in-worker",
    "logs",
    "start-warm",
    "round-trip",
    "round-trip-steps",
    "syscalls",
    "start-fresh",
    "throughput-warm",
    "throughput",
    "map",
    "big-result",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a few repetitions only (CI)")
    parser.add_argument("--output", type=Path, default=Path(__file__).parent / "RESULTS.md")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        metavar="N",
        help="measure every figure in N whole runs, one after another; the tables give the range",
    )
    parser.add_argument(
        "--only",
        choices=sorted(FIGURES),
        action="append",
        help="measure only this figure (repeat for more); default: all",
    )
    args = parser.parse_args()
    scale = 0.05 if args.smoke else 1.0

    def reps(n: int) -> int:
        return max(2, int(n * scale))

    header = machine_facts()
    print(header, flush=True)
    report = Report()
    smoke = args.smoke
    figures: Dict[str, Callable[[], object]] = {
        "stop": lambda: stop_to_result(report, reps(200)),
        "hard-stop": lambda: hard_stop(report, reps(50)),
        "in-worker": lambda: in_worker_costs(report, reps(20)),
        "logs": lambda: log_throughput(report, reps(5), 200_000 if not smoke else 10_000),
        "start-warm": lambda: start_latency_warm(report, reps(300)),
        "round-trip": lambda: round_trip_warm(report, reps(300)),
        "round-trip-steps": lambda: round_trip_steps(report, reps(300)),
        "syscalls": lambda: syscalls_per_task(report, reps(5), 1_000 if not smoke else 100),
        "start-fresh": lambda: start_latency_fresh(report, reps(20)),
        "throughput-warm": lambda: throughput_warm(report, reps(7), 2_000 if not smoke else 100),
        "throughput": lambda: throughput(report, reps(7), 2_000 if not smoke else 100),
        "map": lambda: [
            map_throughput(report, reps(20), 100_000 if not smoke else 10_000, chunksize)
            for chunksize in (1_000, 10_000)
        ],
        "big-result": lambda: big_result_round_trip(report, reps(5), 100 * 2**20 if not smoke else 2**20),
    }
    assert set(figures) == set(FIGURES)
    for _ in range(max(1, args.repeat)):
        for name in FIGURES:
            if not args.only or name in args.only:
                figures[name]()
    args.output.write_text(report.render(header), encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":  # ProcessPoolExecutor and pebble (spawn) re-import this file
    main()
