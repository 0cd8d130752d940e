"""TaskDisplay: rendering (deterministic, injected clock), the plain fallback, composition."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import time
from typing import Any, List, Optional, Tuple

import pytest
from cli_tasks import screen, untimed, wait_for_stop
from rich.console import Console

from numerous.tasks import Session, TaskControl, TaskFailedError
from numerous.tasks import display as display_module
from numerous.tasks.control import TaskControlHandler, get_task_control_handler, set_task_control_handler
from numerous.tasks.display import TaskDisplay, default_enabled, set_default

ESC = "\x1b"


class FakeSink:
    """Stands in for an instance's control channel: a stop flag and a process id."""

    def __init__(self, process_id: Optional[int] = None) -> None:
        self.stop = False
        self.process_id = process_id

    def should_stop(self) -> bool:
        return self.stop


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def control(name: str, instance_id: str, process_id: Optional[int] = None) -> Tuple[TaskControl, FakeSink]:
    sink = FakeSink(process_id)
    return TaskControl(instance_id, name, sink=sink), sink  # type: ignore[arg-type]


def terminal(width: int = 100) -> Tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=True, width=width, height=30, color_system="standard"), out


def real_error(message: str) -> ValueError:
    def check(value: str) -> None:
        raise ValueError(message)

    try:
        check("x")
    except ValueError as error:
        return error
    raise AssertionError("unreachable")


class Recorder(TaskControlHandler):
    """A user's handler: records every call it gets."""

    def __init__(self) -> None:
        self.calls: List[Tuple[Any, ...]] = []
        self.ready = threading.Event()

    def log(self, task_control: TaskControl, message: str, level: str, **extra: Any) -> None:
        self.calls.append(("log", task_control.instance_id, message, level, extra))

    def update_progress(self, task_control: TaskControl, progress: float, status: Optional[str]) -> None:
        self.calls.append(("progress", task_control.instance_id, progress, status))

    def update_status(self, task_control: TaskControl, status: str) -> None:
        self.calls.append(("status", task_control.instance_id, status))
        if status == "waiting for a stop":
            self.ready.set()

    def instance_state_changed(self, task_control: TaskControl, state: str, error: Optional[BaseException]) -> None:
        self.calls.append(("state", task_control.instance_id, state, type(error).__name__ if error else None))


# -- terminal rendering ---------------------------------------------------------------------


def test_rows_show_name_id_state_bar_percent_elapsed_time_left_and_status_as_they_change() -> None:
    console, out = terminal()
    clock = Clock(100.0)
    display = TaskDisplay(console=console, get_time=clock, refresh_interval=None)
    a, _ = control("resize", "a1b2c3d4e5f6")
    b, b_sink = control("train_model", "0f0f0f0f0f0f")
    c, _ = control("resize", "999999999999")
    with display:
        for each in (a, b, c):
            display.instance_state_changed(each, "pending", None)
        clock.now = 101.0
        display.instance_state_changed(a, "running", None)
        display.instance_state_changed(b, "running", None)
        display.update_progress(a, 40.0, "step 4/10")
        display.update_status(b, "warming up")
        clock.now = 103.5
        display.refresh()
        # 40% in 2.5 s: 60% more takes 3.75 s. b reported no progress: no estimate.
        assert screen(out.getvalue()) == [
            "resize      a1b2c3 running   ━━━━╺━━━━━  40%   2.5s  eta 3.8s               step 4/10",
            "train_model 0f0f0f running   ━━━━━━━━━━   0%   2.5s                         warming up",
            "1 pending: resize",
            "━━╸━━━━━━━━━━━━━━━━━ 0/3 done · 3.5s · Ctrl-C stops all, twice kills",
        ]
        b_sink.stop = True  # a stop was requested: the row says so before the task reacts
        display.update_progress(a, 90.0, "step 9/10")
        clock.now = 104.0
        display.refresh()
        lines = screen(out.getvalue())
        assert lines[0] == "resize      a1b2c3 running   ━━━━━━━━━╺  90%   3.0s  eta 0.3s               step 9/10"
        assert lines[1].startswith("train_model 0f0f0f stopping ")
        # 0.9 of 3 instances' work in 3 s: 2.1 more take 12.6 s.
        assert lines[3] == "━━━━━━╺━━━━━━━━━━━━━ 0/3 done · 4.0s · eta 12.6s · Ctrl-C stops all, twice kills"
        display.instance_state_changed(a, "completed", None)
        display.instance_state_changed(b, "completed", None)
        display.instance_state_changed(c, "cancelled", None)
        clock.now = 110.0  # finished rows keep the time they took
    assert screen(out.getvalue()) == [
        "resize      a1b2c3 completed ━━━━━━━━━━ 100%   3.0s                         step 9/10",
        "train_model 0f0f0f stopped   ━━━━━━━━━━   0%   3.0s                         warming up",
        "resize      999999 cancelled ━━━━━━━━━━   0%",
        # 3 finished in the 3 s from the first start to the last end.
        "3 instances: 1 completed, 1 stopped, 1 cancelled · 10.0s · 1/s",
    ]
    final = out.getvalue().rsplit("\x1b[1A", 1)[-1]
    assert "\x1b[32mcompleted" in final and "\x1b[33mstopped" in final and "\x1b[35mcancelled" in final


def test_logs_print_above_the_rows_with_the_task_name_coloured_by_level() -> None:
    console, out = terminal()
    display = TaskDisplay(console=console, get_time=Clock(), refresh_interval=None)
    a, _ = control("fetch", "abcdef123456")
    with display:
        display.instance_state_changed(a, "pending", None)
        display.instance_state_changed(a, "running", None)
        display.log(a, "connected", "info")
        display.log(a, "slow mirror", "warning", mirror="eu-1")
        display.log(a, "checksum mismatch", "error")
        display.log(a, "bytes 0-1023", "debug")  # hidden unless show_debug
        display.refresh()
        display.instance_state_changed(a, "completed", None)
    lines = screen(out.getvalue())
    assert lines[:3] == [
        "fetch abcdef info    connected",
        "fetch abcdef warning slow mirror mirror='eu-1'",
        "fetch abcdef error   checksum mismatch",
    ]
    assert lines[3].startswith("fetch abcdef completed ")
    assert not any("bytes 0-1023" in line for line in lines)
    raw = out.getvalue()
    assert "\x1b[33mslow mirror" in raw  # yellow
    assert "\x1b[1;31mchecksum mismatch" in raw  # bold red


def test_a_failed_row_shows_type_and_message_and_the_traceback_prints_once() -> None:
    console, out = terminal(width=120)
    clock = Clock()
    display = TaskDisplay(console=console, get_time=clock, refresh_interval=None)
    a, _ = control("parse_logs", "fa11ed000000")
    with display:
        display.instance_state_changed(a, "pending", None)
        display.instance_state_changed(a, "running", None)
        display.update_progress(a, 24.0, "line 1200/5000")
        clock.now += 2.0
        display.instance_state_changed(a, "failed", real_error("bad record 37"))
        for _ in range(3):
            display.refresh()
    lines = screen(out.getvalue())
    assert lines[0] == "parse_logs fa11ed failed; its traceback from the worker:"
    assert lines[1] == "Traceback (most recent call last):"
    traceback_end = lines.index("ValueError: bad record 37")
    assert lines[traceback_end - 2].endswith(", in check")  # the frame that raised
    row, summary = lines[traceback_end + 1 :]
    assert row.startswith("parse_logs fa11ed failed ")
    assert "24%" in row and "2.0s" in row and row.endswith("ValueError: bad record 37")
    assert summary == "1 instance: 1 failed · 2.0s"
    # Printed once, although the rows were drawn four times.
    assert out.getvalue().count("Traceback (most recent call last)") == 1


def test_a_task_failed_error_prints_the_workers_formatted_traceback() -> None:
    console, out = terminal()
    display = TaskDisplay(console=console, get_time=Clock(), refresh_interval=None)
    a, _ = control("pickle_bomb", "0123456789ab")
    worker_tb = 'Traceback (most recent call last):\n  File "/w/job.py", line 3, in pickle_bomb\n    raise Weird()\nWeird: no pickling\n'
    error = TaskFailedError("Weird", "no pickling", worker_tb, "the exception could not be pickled")
    with display:
        display.instance_state_changed(a, "running", None)
        display.instance_state_changed(a, "failed", error)
    lines = screen(out.getvalue())
    assert '  File "/w/job.py", line 3, in pickle_bomb' in lines
    assert lines.count("Weird: no pickling") == 1
    assert any(line.startswith("pickle_bomb 012345 failed ") and line.endswith("Weird: no pickling") for line in lines)


def test_the_librarys_own_frames_show_paths_relative_to_where_it_is_installed() -> None:
    # So that a recording (docs/demo.svg) shows no path of the machine that made it.
    console, out = terminal(width=200)
    display = TaskDisplay(console=console, get_time=Clock(), refresh_interval=None)
    a, _ = control("parse_logs", "0123456789ab")
    demo = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(display_module.__file__))), "_demo.py")
    worker_tb = (
        "Traceback (most recent call last):\n"
        '  File "/home/me/job.py", line 3, in main\n'
        f'  File "{demo}", line 91, in _parse_line\n'
        "ValueError: N/A\n"
    )
    with display:
        display.instance_state_changed(a, "running", None)
        display.instance_state_changed(a, "failed", TaskFailedError("ValueError", "N/A", worker_tb, "no pickling"))
    lines = screen(out.getvalue())
    assert '  File "numerous/tasks/_demo.py", line 91, in _parse_line' in lines
    assert '  File "/home/me/job.py", line 3, in main' in lines  # the task's own files keep theirs
    assert demo not in out.getvalue()


def test_rows_beyond_the_screen_fold_the_oldest_finished_into_a_count_keeping_failures() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100, height=8)
    display = TaskDisplay(console=console, get_time=Clock(), refresh_interval=None)
    with display:
        controls = [control("step", f"{i:02d}" + "0" * 10)[0] for i in range(11)]
        for each in controls[:10]:
            display.instance_state_changed(each, "running", None)
        display.instance_state_changed(controls[10], "pending", None)
        for each in controls[:8]:
            display.instance_state_changed(each, "failed" if each is controls[2] else "completed", None)
    frame = screen(out.getvalue())
    # 8 lines: 1 left for the cursor, 1 spare, the footer; 5 for rows and counts.
    assert [line.split()[:3] for line in frame] == [
        ["7", "finished", "not"],
        ["step", "020000", "failed"],  # failures stay, though older than the rest
        ["step", "080000", "running"],
        ["step", "090000", "running"],
        ["1", "pending:", "step"],
        ["━━━━━━━━━━━━━━╸━━━━━", "8/11", "done"],
    ]
    assert frame[0] == "7 finished not shown: 7 completed"
    assert frame[-1].startswith("━━━━━━━━━━━━━━╸━━━━━ 8/11 done · 1 failed · ")


# -- not a terminal ---------------------------------------------------------------------------


EPOCH = 1_700_000_000.0  # the wall-clock time the displays below start at


def stamp(clock_time: float, started: float = 100.0) -> str:
    """The timestamp a log line gets for a display clock reading."""
    return time.strftime("%H:%M:%S", time.localtime(EPOCH + clock_time - started))


def test_without_a_terminal_it_prints_timestamped_lines_and_a_summary_every_interval() -> None:
    out = io.StringIO()
    console = Console(file=out, width=100)  # a file: not a terminal
    assert not console.is_terminal
    clock = Clock(100.0)
    display = TaskDisplay(console=console, get_time=clock, refresh_interval=None, wall_clock=lambda: EPOCH)
    a, a_sink = control("crawl", "c0ffee000000", process_id=4242)
    b, _ = control("parse", "bad000000000")
    quick = [control("thumb", f"{i}a" * 6)[0] for i in range(3)]
    with display:
        display.instance_state_changed(a, "pending", None)
        display.instance_state_changed(a, "running", None)
        display.instance_state_changed(b, "pending", None)
        for each in quick:  # short tasks: one line each, at their end
            display.instance_state_changed(each, "pending", None)
        display.instance_state_changed(quick[0], "running", None)
        clock.now = 100.3
        display.instance_state_changed(quick[0], "completed", None)
        display.instance_state_changed(quick[1], "running", None)
        display.instance_state_changed(quick[1], "failed", real_error("tiny"))
        display.instance_state_changed(quick[2], "cancelled", None)
        display.refresh()
        clock.now = 100.5
        display.instance_state_changed(b, "running", None)
        for step in range(1, 51):  # a line per progress update would be 50 lines
            clock.now = 100.5 + step * 0.1
            display.update_progress(a, step, f"page {step}")
            display.refresh()  # at 101.0: a has run for a second: "running"
        display.log(a, "halfway " + "x" * 120, "warning")  # long: not wrapped at 100 columns
        clock.now = 110.0
        display.refresh()  # 10 s since the display began: a summary
        clock.now = 115.0
        display.refresh()
        a_sink.stop = True
        display.refresh()
        clock.now = 116.5
        display.instance_state_changed(a, "completed", None)
        display.update_progress(b, 12.0, None)
        display.instance_state_changed(b, "failed", real_error("bad record 37"))
    text = out.getvalue()
    assert ESC not in text
    lines = text.splitlines()
    traceback = lines.index("Traceback (most recent call last):")
    assert lines[:traceback] == [
        f"{stamp(100.3)} thumb 0a0a0a completed in 0.3s",
        f"{stamp(100.3)} thumb 1a1a1a failed after 0.0s: ValueError: tiny",
    ]
    assert (
        lines[traceback + 5 :]
        == [
            "ValueError: tiny",
            f"{stamp(100.3)} thumb 2a2a2a cancelled",  # before it ran
            f"{stamp(101.0)} crawl c0ffee running (pid 4242)",  # it has run for a second
            f"{stamp(101.5)} parse bad000 running",
            f"{stamp(105.5)} crawl c0ffee warning halfway " + "x" * 120,
            f"{stamp(110.0)} 3/5 done · 1 failed · 2 running · 0.3/s · eta 5.8s · "
            "running: crawl c0ffee 50% (eta 10.0s), parse bad000 0%",
            f"{stamp(115.0)} crawl c0ffee stopping",
            f"{stamp(116.5)} crawl c0ffee stopped after 16.5s (50%, page 50)",
            f"{stamp(116.5)} parse bad000 failed after 16.0s: ValueError: bad record 37",
            "Traceback (most recent call last):",
            *lines[traceback + 15 : -2],
            "ValueError: bad record 37",
            f"{stamp(116.5)} 5 instances: 1 completed, 1 stopped, 2 failed, 1 cancelled · 16.5s · 0.3/s",
        ]
    )
    assert lines[traceback + 3].endswith(", in check")  # the frame that raised
    assert not any("pending" in line for line in lines)  # waiting is the normal start: no line


def test_a_long_quiet_task_gets_a_summary_line_every_summary_interval() -> None:
    out = io.StringIO()
    clock = Clock(100.0)
    display = TaskDisplay(
        console=Console(file=out, width=100),
        get_time=clock,
        refresh_interval=None,
        wall_clock=lambda: EPOCH,
        summary_interval=30.0,
    )
    a, _ = control("train", "7a1700000000")
    with display:
        display.instance_state_changed(a, "running", None)
        for second in range(1, 121):
            clock.now = 100.0 + second
            display.update_progress(a, second / 2, None)
            display.refresh()
        display.instance_state_changed(a, "completed", None)
    assert untimed(out.getvalue()) == [
        "train 7a1700 running",
        # 0.5% a second: 85% more take 170 s.
        "0/1 done · 1 running · eta 2m50s · running: train 7a1700 15% (eta 2m50s)",
        "0/1 done · 1 running · eta 2m20s · running: train 7a1700 30% (eta 2m20s)",
        "0/1 done · 1 running · eta 1m49s · running: train 7a1700 45% (eta 1m50s)",
        "0/1 done · 1 running · eta 1m20s · running: train 7a1700 60% (eta 1m20s)",
        "train 7a1700 completed in 2m00s",
        "1 instance: 1 completed · 2m00s",
    ]


def test_200_short_tasks_print_one_line_each_not_one_per_state_change() -> None:
    out = io.StringIO()
    clock = Clock(100.0)
    display = TaskDisplay(console=Console(file=out, width=100), get_time=clock, refresh_interval=None)
    controls = [control("step", f"{i:03d}" + "0" * 9)[0] for i in range(200)]
    with display:
        for each in controls:
            display.instance_state_changed(each, "pending", None)
        for batch in range(0, 200, 8):  # max_parallel=8, 0.5 s each
            for each in controls[batch : batch + 8]:
                display.instance_state_changed(each, "running", None)
            for _ in range(5):
                clock.now += 0.1
                display.refresh()
            for each in controls[batch : batch + 8]:
                display.instance_state_changed(each, "completed", None)
    lines = untimed(out.getvalue())
    ends = [line for line in lines if line.startswith("step ")]
    assert len(ends) == 200 and all(" completed in 0.5s" in line for line in ends)
    # 12.5 s: one summary at 10 s, and the last line.
    assert [line for line in lines if not line.startswith("step ")] == [
        "160/200 done · 8 running · 32 pending · 16/s · eta 2.4s · running: "
        + ", ".join(f"step {i:03d}000 0%" for i in range(160, 168)),
        "200 instances: 200 completed · 12.5s · 16/s",
    ]
    assert len(lines) == 202


# -- composing with the user's handler --------------------------------------------------------


def test_every_call_reaches_the_users_handler_too_and_it_is_restored_on_exit() -> None:
    mine = Recorder()
    set_task_control_handler(mine)
    console, out = terminal()
    display = TaskDisplay(console=console, get_time=Clock(), refresh_interval=None)
    a, _ = control("job", "aaaaaaaaaaaa")
    error = real_error("nope")
    with display:
        assert get_task_control_handler() is display
        display.instance_state_changed(a, "running", None)
        display.log(a, "hi", "info", k=1)
        display.update_progress(a, 50.0, "half")
        display.update_status(a, "busy")
        display.instance_state_changed(a, "failed", error)
    assert get_task_control_handler() is mine
    assert mine.calls == [
        ("state", "aaaaaaaaaaaa", "running", None),
        ("log", "aaaaaaaaaaaa", "hi", "info", {"k": 1}),
        ("progress", "aaaaaaaaaaaa", 50.0, "half"),
        ("status", "aaaaaaaaaaaa", "busy"),
        ("state", "aaaaaaaaaaaa", "failed", "ValueError"),
    ]
    assert "job aaaaaa info    hi k=1" in screen(out.getvalue())


def test_the_previous_handler_is_restored_when_the_block_raises_and_a_nested_display_stays_quiet() -> None:
    mine = Recorder()
    set_task_control_handler(mine)
    console, _ = terminal()
    outer = TaskDisplay(console=console, get_time=Clock(), refresh_interval=None)
    inner_out = io.StringIO()
    inner = TaskDisplay(console=Console(file=inner_out, force_terminal=True), refresh_interval=None)
    with pytest.raises(RuntimeError):
        with outer:
            with inner:  # the outer one already shows everything
                assert get_task_control_handler() is outer
            raise RuntimeError("boom")
    assert get_task_control_handler() is mine
    assert inner_out.getvalue() == ""


def test_a_real_session_with_display_true_shows_its_instances_and_feeds_my_handler(
    capsys: pytest.CaptureFixture[str],
) -> None:
    mine = Recorder()
    set_task_control_handler(mine)
    with Session(display=True):
        assert isinstance(get_task_control_handler(), TaskDisplay)
        instance = wait_for_stop.instance()
        future = instance.start()
        assert mine.ready.wait(10)
        instance.stop()
        assert future.result(10) == "stopped on request"
    assert get_task_control_handler() is mine
    short = instance.id[:6]
    captured = capsys.readouterr()  # pytest's capture is not a terminal: plain lines
    assert captured.out == ""  # the display writes to stderr, leaving stdout to the program
    out = captured.err
    assert f"wait_for_stop {short} info    ready" in out
    assert f"wait_for_stop {short} warning stop seen" in out
    assert f"wait_for_stop {short} stopped after " in out
    states = [c[2] for c in mine.calls if c[0] == "state"]
    assert states == ["pending", "running", "completed"]
    assert ("log", instance.id, "ready", "info", {}) in mine.calls


def test_the_process_default_turns_the_display_on_for_sessions_that_do_not_say(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert not default_enabled()
    set_default(True, show_debug=True)
    try:
        with Session():
            assert isinstance(get_task_control_handler(), TaskDisplay)
            assert get_task_control_handler().show_debug  # type: ignore[attr-defined]
        with Session(display=False):
            assert not isinstance(get_task_control_handler(), TaskDisplay)
    finally:
        set_default(False)
    with Session():
        assert not isinstance(get_task_control_handler(), TaskDisplay)
    with pytest.raises(TypeError, match="display must be True, False or None"):
        Session(display="yes")  # type: ignore[arg-type]


# -- CPU and memory -------------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_running_worker_shows_its_cpu_and_memory() -> None:
    console, out = terminal(width=120)
    mine = Recorder()
    set_task_control_handler(mine)
    with TaskDisplay(console=console, refresh_interval=0.02, sample_interval=0.05) as display:
        with Session():
            instance = wait_for_stop.instance()
            future = instance.start()
            assert mine.ready.wait(10)
            deadline = time.monotonic() + 10
            row = f"wait_for_stop {instance.id[:6]} running "
            while time.monotonic() < deadline:
                lines = [line for line in screen(out.getvalue()) if line.startswith(row)]
                if lines and " MB " in lines[-1] and "%" in lines[-1].split("s ", 1)[-1]:
                    break
                time.sleep(0.02)
            else:
                pytest.fail(f"no CPU/memory shown:\n{out.getvalue()[-2000:]}")
            instance.stop()
            future.result(10)
        assert display is get_task_control_handler()


def test_sampling_a_worker_that_has_exited_is_harmless() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    console, out = terminal()
    display = TaskDisplay(console=console, get_time=Clock(), refresh_interval=None)
    a, _ = control("short", "5h0r7000000", process_id=gone.pid)
    with display:
        display.instance_state_changed(a, "running", None)
        display._sample()  # what the display's thread does twice a second
        display.refresh()
        display.instance_state_changed(a, "completed", None)
    assert screen(out.getvalue())[0].startswith("short 5h0r70 completed ")


# -- narrow screens and bad options -------------------------------------------------------------


def test_the_footer_and_the_pending_line_leave_out_whole_parts_on_narrow_screens() -> None:
    from numerous.tasks.display._render import footer, frame
    from numerous.tasks.display._rows import Board

    board = Board()
    board.started_at = 0.0
    rows = [board.row(name, f"{i:012d}") for i, name in enumerate(["resize"] * 3 + ["fetch"] * 2 + ["train"])]
    board.set_state(rows[0], "running", 1.0)
    board.set_progress(rows[0], 50.0, 2.0)
    board.set_state(rows[1], "running", 1.0)
    board.set_state(rows[1], "failed", 3.0, "ValueError: x")

    def render(renderable: Any, width: int) -> List[str]:
        out = io.StringIO()
        Console(file=out, force_terminal=True, width=width, height=24).print(renderable)
        return screen(out.getvalue())

    # From 0.5 instances' work at 2 s to 1.5 at 4 s: 0.5 a second, so the 4.5 left take 9 s.
    assert render(footer(board, 4.0, 100), 100) == [
        "━━━━━╺━━━━━━━━━━━━━━ 1/6 done · 1 failed · 0.33/s · 4.0s · eta 9.0s · Ctrl-C stops all, twice kills"
    ]
    assert render(footer(board, 4.0, 60), 60) == ["━━╸━━━━━━━ 1/6 done · 1 failed · 0.33/s · 4.0s · eta 9.0s"]
    assert render(footer(board, 4.0, 40), 40) == ["━━╸━━━━━━━ 1/6 done · 1 failed"]
    assert render(frame(board, 4.0, 100, 24), 100)[-2] == "4 pending: resize ×1, fetch ×2, train ×1"
    assert render(frame(board, 4.0, 30, 24), 30)[-2] == "4 pending: resize ×1, +2 more"


@pytest.mark.parametrize(
    "option", [{"summary_interval": 0}, {"sample_interval": -1}, {"announce_after": "1"}, {"refresh_interval": 0}]
)
def test_bad_intervals_are_a_value_error_naming_the_option(option: Any) -> None:
    [name] = option
    with pytest.raises(ValueError, match=f"{name} must be a number of seconds"):
        TaskDisplay(**option)


def test_the_recorded_demo_shows_no_path_of_the_machine_that_recorded_it() -> None:
    svg = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "docs", "demo.svg")
    with open(svg, encoding="utf-8") as f:
        text = f.read().replace("&#160;", " ").replace("&quot;", '"')
    assert 'File "numerous/tasks/_demo.py"' in text  # the failed parser's traceback is in it
    assert not [line for line in text.splitlines() if 'File "/' in line]
