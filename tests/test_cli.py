"""The numerous-tasks command, run as users run it: in a process of its own."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest
from cli_tasks import run_in_terminal, screen, timestamped, untimed

import numerous.tasks
from numerous.tasks.display import TaskDisplay

TESTS = Path(__file__).resolve().parent
CLI_TASKS = TESTS / "cli_tasks.py"
ESC = "\x1b"


def command(*args: str, cwd: Path = TESTS, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "numerous.tasks", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "100"},
    )


def line_of(source: Path, text: str) -> int:
    [number] = [n for n, line in enumerate(source.read_text().splitlines(), 1) if text in line]
    return number


# -- run MODULE:FUNCTION ----------------------------------------------------------------------


def test_run_a_task_prints_its_result_and_exits_0() -> None:
    result = command("run", "cli_tasks:add", "a=2", "b=3")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "5\n"  # only the result on stdout: the display is on stderr
    assert ESC not in result.stderr  # not a terminal: plain lines
    assert all(timestamped(line) for line in result.stderr.splitlines())  # a log: each line says when
    lines = untimed(result.stderr)
    [instance] = {line.split()[1] for line in lines if line.startswith("add ")}
    # A task that ends within a second gets one line for its life, at its end; one that
    # took longer (a slow start on a loaded machine) also got a "running" line.
    [took] = [float(m) for m in re.findall(rf"^add {instance} completed in ([\d.]+)s", "\n".join(lines), re.M)]
    if took >= TaskDisplay.ANNOUNCE_AFTER:
        assert lines[0].startswith(f"add {instance} running"), lines
        lines = lines[1:]
    assert len(lines) == 3, lines
    assert lines[0] == f"add {instance} info    adding 2 and 3"
    assert lines[1].startswith(f"add {instance} completed in ")
    assert lines[2].startswith("1 instance: 1 completed · ")


def test_arguments_are_json_when_they_parse_and_strings_otherwise() -> None:
    result = command(
        "run", "cli_tasks:echo", "n=5", 's="007"', "items=[1, 2]", "word=plain text", "flag=true", "nothing=null"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "n": 5,
        "s": "007",
        "items": [1, 2],
        "word": "plain text",
        "flag": True,
        "nothing": None,
    }


def test_a_result_that_is_not_json_is_printed_with_repr() -> None:
    result = command("run", "cli_tasks:as_set", "items=[3, 1, 3]")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "{1, 3}\n"


def test_a_failing_task_exits_1_with_the_workers_traceback() -> None:
    result = command("run", "cli_tasks:fail", "text=oops")
    assert result.returncode == 1
    assert result.stdout == ""
    err = result.stderr
    assert err.count("Traceback (most recent call last):") == 1
    raising = line_of(CLI_TASKS, 'raise ValueError(f"bad input: {text}")')
    assert f'cli_tasks.py", line {raising}, in check_input' in err
    assert "ValueError: bad input: oops" in err.splitlines()
    assert "failed after" in err and ": ValueError: bad input: oops" in err


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "no_such_module_here:f"], "no module named 'no_such_module_here'"),
        (["run", "cli_tasks:no_such_task"], "module 'cli_tasks' has no attribute 'no_such_task'"),
        (["run", "cli_tasks:plain_function"], "cli_tasks:plain_function is a function, not a task"),
        (["run", "cli_tasks:NOT_CALLABLE"], "cli_tasks:NOT_CALLABLE is a int, not a task"),
        (["run", "cli_tasks:add", "a2"], "argument 'a2' is not key=value"),
        (["run", "cli_tasks:add", "a=1", "a=2"], "argument 'a' is given twice"),
        (["run", "cli_tasks:add", "a=1"], "missing a required argument: 'b'"),
        (["run", "cli_tasks:add", "a=1", "b=2", "c=3"], "unexpected keyword argument 'c'"),
        (["run", "no/such/script.py"], "no such script: 'no/such/script.py'"),
        (["run", "justaword"], "expected MODULE:FUNCTION or a path to a .py script"),
        (["run"], "the following arguments are required: TARGET"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(args: List[str], expected: str) -> None:
    result = command(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("numerous-tasks") and "error: " in line
    assert expected in line


@pytest.mark.parametrize("subcommand", [[], ["run"], ["demo"]])
def test_help_for_each_command_has_examples(subcommand: List[str]) -> None:
    result = command(*subcommand, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: numerous-tasks")
    assert "examples:" in result.stdout
    if subcommand == ["demo"]:
        assert "--record-svg PATH" in result.stdout
    if subcommand == ["run"]:
        assert "key=value" in result.stdout and "script.py" in result.stdout


# -- run script.py ------------------------------------------------------------------------------

SCRIPT = """\
import sys
from numerous.tasks import Session, TaskControl, task

@task
def double(tc: TaskControl, x: int) -> int:  # defined in the script: travels by value
    tc.log(f"doubling {x}")
    return 2 * x

print("argv:", sys.argv[1:])
with Session():  # no display=...: the command turns it on for every session
    print("result:", double.instance().start(int(sys.argv[1])).result())
if sys.argv[2:] == ["--fail"]:
    raise RuntimeError("the script failed after its session")
"""


def test_run_a_script_shows_the_display_for_its_sessions(tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    result = command("run", str(script), "21", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["argv: ['21']", "result: 42"]  # the display is on stderr
    lines = untimed(result.stderr)
    [instance] = {line.split()[1] for line in lines if line.startswith("double ")}
    assert f"double {instance} info    doubling 21" in lines
    assert any(line.startswith(f"double {instance} completed in ") for line in lines)

    failed = command("run", str(script), "1", "--fail", cwd=tmp_path)
    assert failed.returncode == 1
    assert failed.stderr.count("Traceback (most recent call last):") == 1
    traceback = failed.stderr[failed.stderr.index("Traceback") :]  # after the display's lines
    assert f'job.py", line {line_of(script, "raise RuntimeError")}, in <module>' in traceback
    assert "runpy" not in traceback and "cli.py" not in traceback  # the script's frames only
    assert traceback.endswith("RuntimeError: the script failed after its session\n")


# -- Ctrl-C ---------------------------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.usefixtures("sigint_reaches_children")
def test_ctrl_c_stops_the_task_gracefully_and_exits_130_without_a_traceback() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "numerous.tasks", "run", "cli_tasks:wait_for_stop"],
        cwd=TESTS,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        seen: List[str] = []
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # until the task says it is ready
            line = process.stderr.readline()
            seen.append(line)
            if line.rstrip().endswith("info    ready") or not line:
                break
        assert seen[-1].rstrip().endswith("info    ready"), seen
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = "\n".join(untimed("".join(seen) + err))
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    instance = untimed(seen[0])[0].split()[1]
    told = err.index("Ctrl-C: stopping every task")
    assert told < err.index(f"wait_for_stop {instance} warning stop seen")  # said before it happens
    assert f"wait_for_stop {instance} stopped after " in err
    assert err.rstrip().endswith("numerous-tasks: interrupted")
    assert timestamped(seen[0])
    assert out == ""


# -- demo under a terminal ------------------------------------------------------------------------


@pytest.mark.timeout(40)
def test_demo_in_a_terminal_finishes_within_20_s_with_every_state_and_records_an_svg(tmp_path: Path) -> None:
    svg = tmp_path / "demo.svg"
    code, output, elapsed = run_in_terminal(
        [sys.executable, "-m", "numerous.tasks", "demo", "--record-svg", str(svg)], cwd=tmp_path, timeout=30
    )
    assert code == 0, output[-3000:]
    assert elapsed < 20
    assert "\x1b[1A" in output  # drawn in place, as on a terminal
    lines = screen(output)
    text = "\n".join(lines)
    assert text.count("Traceback (most recent call last):") == 1
    assert "ValueError: invalid literal for int() with base 10: 'N/A'" in lines
    words = " ".join(text.split())  # rich wraps long frame lines at spaces; the path's length varies
    assert '_demo.py", line' in words and "in _parse_line" in words  # the worker's own frames
    rows = {}
    for line in lines:
        words = line.split()
        if len(words) > 3 and words[0] in ("fetch_dataset", "train_model", "render_scene", "crawl_site", "parse_logs"):
            if words[2] in ("completed", "stopped", "failed", "cancelled", "running", "pending"):
                rows.setdefault(words[0], []).append(words[2])
    assert rows == {
        "fetch_dataset": ["completed"],
        "train_model": ["completed"],
        "render_scene": ["completed", "completed", "completed"],
        "crawl_site": ["stopped"],
        "parse_logs": ["failed"],
    }, text
    assert "7 instances: 5 completed, 1 stopped, 1 failed" in text
    assert any("warning stop requested: saving" in line for line in lines)
    assert any(line.strip().startswith("crawl_site") and "pages'" in line for line in lines)  # results
    image = svg.read_text()
    assert image.startswith("<svg") and "numerous-tasks&#160;demo" in image
    assert "stopped" in image and "ValueError" in image and "Traceback" in image
    # The demo's frames show where it is in the package, not where this machine keeps it.
    assert "File&#160;&quot;numerous/tasks/_demo.py&quot;,&#160;line&#160;" in image
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(numerous.tasks.__file__))))
    assert f"{package_root}/numerous" not in image.replace("&#160;", " ")
