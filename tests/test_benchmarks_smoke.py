"""The benchmark command runs end to end (a smoke run: it checks nothing about speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.timeout(240)
def test_the_benchmark_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "run.py"), "--smoke", "--output", str(output)],
        capture_output=True, text=True, timeout=230, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    for figure in (
        "stop() → result() returns",
        "hard stop of a task ignoring should_stop",
        "one tc.should_stop read",
        "one tc.update_progress",
        "tc.log lines per second",
        "start() → body running, warm worker",
        "start() → body running, fresh process",
        "tiny tasks through one session",
        "result round trip",
    ):
        assert figure in text, figure
    assert text.count("\n### ") == 9
    assert "| pebble" in text and "| ProcessPoolExecutor (spawn)" in text and "| loky" in text
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(300)
def test_the_soak_script_reports_no_growth() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "soak.py"), "--instances", "300"],
        capture_output=True, text=True, timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.rstrip().endswith("OK")
