"""The display of a task with retries: the row says which retry it is, and why."""

from __future__ import annotations

import io

from cli_tasks import screen
from rich.console import Console
from test_display import EPOCH, Clock, control, terminal

from numerous.tasks.display import TaskDisplay


class TransientError(Exception):
    pass


def test_a_retried_row_shows_retrying_then_the_retry_it_runs_and_the_error_it_ended_with() -> None:
    console, out = terminal(width=120)
    clock = Clock(100.0)
    display = TaskDisplay(console=console, get_time=clock, refresh_interval=None)
    a, _ = control("fetch", "a1b2c3d4e5f6")
    a._retries = 2
    with display:
        display.instance_state_changed(a, "pending", None)
        display.instance_state_changed(a, "running", None)
        display.update_progress(a, 40.0, "page 4")
        clock.now = 101.0
        a._attempt = 2  # what the library sets before it reports "retrying"
        display.instance_state_changed(a, "retrying", TransientError("503"))
        display.refresh()
        assert screen(out.getvalue())[0] == (
            "fetch a1b2c3 retrying  ━━━━━━━━━━━━━━━━━━━━   0%   1.0s                         retry 1/2 after TransientError: 503"
        )
        clock.now = 102.0
        display.instance_state_changed(a, "running", None)
        display.update_progress(a, 10.0, "page 1")
        display.refresh()
        assert screen(out.getvalue())[0] == (
            "fetch a1b2c3 running   ━━╺━━━━━━━━━━━━━━━━━  10%   2.0s                         retry 1/2 · page 1"
        )
        a._attempt = 3
        display.instance_state_changed(a, "retrying", TransientError("503 again"))
        display.instance_state_changed(a, "running", None)
        clock.now = 103.0
        display.instance_state_changed(a, "failed", TransientError("503 for good"))
    rows = [line for line in screen(out.getvalue()) if line.startswith("fetch a1b2c3 failed ")]
    assert rows == [
        "fetch a1b2c3 failed    ━━━━━━━━━━━━━━━━━━━━   0%   3.0s                         retry 2/2 · TransientError: 503 for good"
    ]


def test_without_a_terminal_a_retry_is_a_line_of_its_own() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120)  # a file: not a terminal
    clock = Clock(100.0)
    display = TaskDisplay(console=console, get_time=clock, refresh_interval=None, wall_clock=lambda: EPOCH)
    a, _ = control("fetch", "a1b2c3d4e5f6")
    a._retries = 3
    with display:
        display.instance_state_changed(a, "pending", None)
        display.instance_state_changed(a, "running", None)
        a._attempt = 2
        display.instance_state_changed(a, "retrying", TransientError("503"))
        display.instance_state_changed(a, "running", None)
        clock.now = 101.5
        display.instance_state_changed(a, "completed", None)
    lines = [line.split(" ", 1)[1] for line in out.getvalue().splitlines() if "a1b2c3" in line]
    assert lines == [
        "fetch a1b2c3 retrying (retry 1/3) after TransientError: 503",
        "fetch a1b2c3 completed in 1.5s (retry 1/3)",
    ]
