"""The display shows a task.map() as one row: items done of the total, the items' pace
and time left, failures; never a row per chunk (rendering with an injected clock, and
one real session)."""

from __future__ import annotations

import io
import time
from typing import Dict, Optional

import map_tasks
import pytest
from cli_tasks import screen, untimed
from rich.console import Console
from test_display import Clock, control, real_error, terminal

from numerous.tasks import Session
from numerous.tasks.display import TaskDisplay
from numerous.tasks.maps import MapProgress

EPOCH = time.mktime((2024, 5, 1, 12, 0, 0, 0, 0, -1))


def report(
    state: str = "running",
    total: Optional[int] = 1000,
    started: int = 0,
    done: int = 0,
    failed: int = 0,
    chunks: Optional[Dict[str, int]] = None,
    error: Optional[BaseException] = None,
    stop_requested: bool = False,
) -> MapProgress:
    """A map's report, as the map makes them: ``resize``, chunks of 100."""
    return MapProgress(
        "a0b1c2d3e4f5", "resize", state, total, started, done, failed, 100, chunks or {}, stop_requested, error
    )


def test_a_map_is_one_row_that_its_chunks_move_item_by_item() -> None:
    console, out = terminal(width=100)
    clock = Clock(100.0)
    display = TaskDisplay(console=console, get_time=clock, refresh_interval=None)
    chunk_a, _ = control("resize", "c0000000000a")
    chunk_b, _ = control("resize", "c0000000000b")
    single, _ = control("thumb", "5151515151aa")
    with display:
        display.map_changed(report())
        display.map_changed(report(started=200, chunks={chunk_a.instance_id: 100, chunk_b.instance_id: 100}))
        for chunk in (chunk_a, chunk_b):  # a chunk's instance says what every instance says
            display.instance_state_changed(chunk, "pending", None)
            display.instance_state_changed(chunk, "running", None)
        display.instance_state_changed(single, "pending", None)
        display.instance_state_changed(single, "running", None)
        clock.now = 102.0
        display.update_progress(chunk_a, 50.0, None)  # half of its 100 items
        display.update_progress(chunk_b, 30.0, "ignored: a map row shows its items")
        display.update_status(chunk_b, "also ignored")
        display.refresh()
        lines = screen(out.getvalue())
        # 80 items in 2 s: 40/s, 920 more take 23 s.
        assert lines[-3:] == [
            "resize a0b1c2 running   ╸━━━━━━━━━   8%   2.0s eta 23.0s               80/1,000 items · 40/s",
            "thumb  515151 running   ━━━━━━━━━━   0%   2.0s",
            "╸━━━━━━━━━━━━━━━━━━━ 0/2 done · 2.0s · eta 48.0s · Ctrl-C stops all, twice kills",
        ]
        assert not any("c00000" in line for line in lines)  # no chunk has a row
        clock.now = 104.0
        display.instance_state_changed(chunk_a, "completed", None)  # its map's report follows
        display.map_changed(report(started=300, done=100, chunks={chunk_b.instance_id: 100, "c0000000000c": 100}))
        display.refresh()
        assert screen(out.getvalue())[-3].startswith("resize a0b1c2 running   ━╺━━━━━━━━  13%   4.0s eta 26.8s ")
        assert "130/1,000 items · 32/s" in screen(out.getvalue())[-3]
        clock.now = 110.0
        display.map_changed(report("completed", started=1000, done=1000))
        display.instance_state_changed(single, "completed", None)
    lines = screen(out.getvalue())
    assert lines[-3:] == [
        "resize a0b1c2 completed ━━━━━━━━━━ 100%  10.0s                         1,000/1,000 items · 100/s",
        "thumb  515151 completed ━━━━━━━━━━ 100%  10.0s",
        "1 instance and 1 map: 2 completed · 10.0s · 0.2/s",
    ]


def test_an_input_of_unknown_length_shows_what_started_so_far_and_no_time_left() -> None:
    console, out = terminal(width=100)
    clock = Clock(100.0)
    display = TaskDisplay(console=console, get_time=clock, refresh_interval=None)
    with display:
        display.map_changed(report(total=None))
        clock.now = 101.0
        display.map_changed(report(total=None, started=400, done=300, chunks={"c1": 100}))
        display.refresh()
        row = screen(out.getvalue())[-2]
        assert row.startswith("resize a0b1c2 running ")
        assert row.rstrip().endswith("1.0s                         300/400+ items · 300/s")
        display.map_changed(report("completed", total=400, started=400, done=400))


def test_a_chunk_s_logs_name_the_map_and_the_error_that_fails_it_prints_once() -> None:
    console, out = terminal(width=120)
    clock = Clock(100.0)
    display = TaskDisplay(console=console, get_time=clock, refresh_interval=None)
    chunk, _ = control("resize", "c0000000000a")
    error = real_error("image 512: corrupt header")
    with display:
        display.map_changed(report(started=100, chunks={chunk.instance_id: 100}))
        display.instance_state_changed(chunk, "running", None)
        display.log(chunk, "big image", "warning", map_item=412)
        clock.now = 101.0
        display.instance_state_changed(chunk, "failed", error)
        display.map_changed(report(started=200, done=0, failed=1, chunks={"c2": 100}, error=error, stop_requested=True))
        display.refresh()
        assert screen(out.getvalue())[-2].startswith("resize a0b1c2 stopping ")
        display.map_changed(report("failed", started=200, failed=1, error=error, stop_requested=True))
        display.refresh()
    lines = screen(out.getvalue())
    assert lines[0] == "resize a0b1c2 warning big image map_item=412"
    assert lines[1] == "resize a0b1c2 failed; its traceback from the worker:"
    assert out.getvalue().count("Traceback (most recent call last)") == 1
    assert lines[-2].startswith("resize a0b1c2 failed ")
    assert lines[-2].endswith("ValueError: image 512: corrupt header")
    assert lines[-1] == "1 map: 1 failed · 1.0s"


def test_without_a_terminal_a_map_gets_lines_for_its_run_and_its_end_not_per_chunk() -> None:
    out = io.StringIO()
    clock = Clock(100.0)
    display = TaskDisplay(
        console=Console(file=out, width=100), get_time=clock, refresh_interval=None, wall_clock=lambda: EPOCH
    )
    chunks = [control("resize", f"c{i:011d}")[0] for i in range(10)]
    with display:
        display.map_changed(report())
        for step, chunk in enumerate(chunks):
            display.map_changed(report(started=100 * (step + 1), done=100 * step, chunks={chunk.instance_id: 100}))
            display.instance_state_changed(chunk, "pending", None)
            display.instance_state_changed(chunk, "running", None)
            clock.now += 0.25
            display.instance_state_changed(chunk, "completed", None)
            display.refresh()
        clock.now = 110.0
        display.refresh()  # the summary every 10 s
        display.map_changed(report("completed", started=1000, done=1000))
    lines = untimed(out.getvalue())
    assert lines == [
        "resize a0b1c2 running (300/1,000 items · 300/s)",  # once it has run for a second
        "0/1 done · 1 running · eta 1.1s · running: resize a0b1c2 90% (eta 1.1s)",  # every 10 s
        "resize a0b1c2 completed in 10.0s (1,000/1,000 items · 100/s)",
        "1 map: 1 completed · 10.0s",
    ]
    assert not any("c0000" in line for line in lines)


@pytest.mark.timeout(60)
def test_a_real_session_shows_a_map_as_one_row(capsys: pytest.CaptureFixture[str]) -> None:
    with Session(display=True):
        values = map_tasks.square.map(range(600), chunksize=50)
        assert sum(values) == sum(n * n for n in range(600))
    err = capsys.readouterr().err  # not a terminal: one line per row that ended
    lines = untimed(err)
    # A "running" line if it ran for over a second, its end, the summary: chunks never show.
    assert all(line.startswith(f"square {values.id[:6]} ") for line in lines[:-1]), lines
    assert lines[-2].startswith(f"square {values.id[:6]} completed in ")
    assert "(600/600 items · " in lines[-2]
    assert lines[-1].startswith("1 map: 1 completed · ")
