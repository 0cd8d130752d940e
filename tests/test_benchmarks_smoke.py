"""The benchmark command runs end to end (a smoke run: it checks nothing about speed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, List, Optional, Tuple

import psutil
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def run_script(args: List[str], timeout: float, cwd: Optional[Path] = None) -> Tuple[int, str, str]:
    """Run a benchmark script in a process group of its own; return its exit code,
    stdout and stderr once it and everything it left behind are gone.

    The peers it measures leave processes exiting behind it (loky's workers,
    multiprocessing's resource tracker). Once a session has made this process a child
    subreaper, those orphans become its children, and they take a moment to notice
    their parent is gone: wait for them (they keep the script's process group).
    """
    with subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd,
        start_new_session=True,
    ) as script:
        try:
            out, err = script.communicate(timeout=timeout)
        finally:
            if script.poll() is None:
                os.killpg(script.pid, 9)
                script.communicate()
    orphans = [p for p in psutil.Process().children() if _process_group(p) == script.pid]
    _, alive = psutil.wait_procs(orphans, timeout=10)
    for process in alive:
        process.kill()
    psutil.wait_procs(alive, timeout=5)
    return script.returncode, out, err


def _without_peer_spawn_noise(stderr: str) -> str:
    """``stderr`` less the tracebacks of the peers' own spawned children killed while they
    start (multiprocessing's ``spawn_main``, when a pool shuts down under load): those are
    ProcessPoolExecutor's, pebble's or loky's, never ours (our workers are not spawned
    through multiprocessing). A bare ``Traceback (most recent call last):``, a process
    killed right after the first line of its traceback (CI py313 saw one, alone on
    stderr, and four local smoke runs did not), names nothing and goes too; a traceback
    with any frame in it still counts."""
    blocks = re.split(r"(?m)^(?=Traceback \(most recent call last\):)", stderr)
    return "".join(
        b
        for b in blocks
        if not re.match(
            r'Traceback.*\n\s+File "<string>".*\n\s+File ".*multiprocessing/spawn\.py", line \d+, in spawn_main', b
        )
        and not re.fullmatch(r"Traceback \(most recent call last\):\s*", b)
    )


def _process_group(process: psutil.Process) -> Optional[int]:
    try:
        return os.getpgid(process.pid)
    except ProcessLookupError:
        return None


@pytest.mark.timeout(240)
def test_the_benchmark_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    code, _, err = run_script([str(BENCHMARKS / "run.py"), "--smoke", "--output", str(output)], 230, tmp_path)
    assert code == 0, err[-3000:]
    text = output.read_text()
    assert "Traceback" not in _without_peer_spawn_noise(err), err[-3000:]
    for figure in (
        "stop() → result() returns",
        "hard stop of a task ignoring should_stop",
        "one tc.should_stop read",
        "one tc.update_progress",
        "tc.log lines per second",
        "start() → body running, warm worker",
        "start() → result() round trip, warm worker",
        "one warm round trip, step by step",
        "system calls per task",
        "start() → body running, fresh process",
        "tiny tasks on a warm pool",
        "tiny tasks through one session",
        "map: ",
        "result round trip",
    ):
        assert figure in text, figure
    assert text.count("\n### ") == 15  # map: chunksize 1,000 and 10,000
    # the stop figure's floors: sampled like our stops, after the same spin and one after another
    assert "| no library, a value sent, one after another" in text
    assert "| numerous.tasks, one stop after another" in text
    assert "| ProcessPoolExecutor.map (spawn, 2 workers)" in text and "| pebble ProcessPool.map" in text
    assert "| pebble" in text and "| ProcessPoolExecutor (spawn)" in text and "| loky" in text


@pytest.mark.timeout(300)
def test_the_soak_script_reports_no_growth() -> None:
    code, out, err = run_script([str(BENCHMARKS / "soak.py"), "--instances", "300"], 280)
    assert code == 0, out + err[-3000:]
    assert out.rstrip().endswith("OK")


def _benchmark_report() -> Any:
    """An empty ``Report`` of ``benchmarks/run.py`` (a script, not a package module)."""
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import run  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(BENCHMARKS))
    return run.Report()


def test_repeated_runs_give_each_figure_once_with_the_runs_range() -> None:
    report = _benchmark_report()
    for ours, peer in (([10.0, 12.0, 11.0], [20.0, 22.0]), ([30.0], [33.0, 33.0])):
        report.figure("a figure", "µs", [("numerous.tasks", ours), ("a peer", peer)], note="the note")
    text = report.render("# header")
    assert text.count("### a figure") == 1 and "Over 2 whole runs" in text
    # ours: run medians 11 and 30; the peer's: 21 and 33, ratios 21/11 and 33/30
    assert "| numerous.tasks | 20.5 | 11–30 | 30 | 30 | 4 |  |" in text
    assert "| a peer | 27 | 21–33 | 33 | 33 | 4 | 1.50× (1.10–1.91) |" in text


def test_a_rate_figure_says_its_ratio_is_ours_over_the_peers() -> None:
    report = _benchmark_report()
    report.figure("a rate", "tasks/s", [("numerous.tasks", [30.0]), ("a peer", [20.0])], higher_is_better=True)
    report.figure("a time", "µs", [("numerous.tasks", [20.0]), ("a peer", [30.0])])
    rate, time_ = report.render("# header").split("### a time")
    assert "| ours / peer median |" in rate and "| a peer | 20 | 20 | 20 | 1 | 1.50× |" in rate
    assert "| peer median / ours |" in time_ and "| a peer | 30 | 30 | 30 | 1 | 1.50× |" in time_


@pytest.mark.timeout(120)
def test_the_cold_code_probe_prints_a_row_per_pause() -> None:
    code, out, err = run_script([str(BENCHMARKS / "cold_code.py"), "--samples", "5"], 110)
    assert code == 0, err[-3000:]
    rows = [line for line in out.splitlines() if line.startswith("| ") and "µs" not in line]
    assert [row.split(" | ")[0] for row in rows] == [
        "| right after itself",
        "| after a system call (getppid)",
        "| after a 0.2 ms sleep",
        "| after a 5 ms sleep",
        "| after a 20 ms spin",
    ]
    assert rows[0].endswith("| 1.0× |")
