"""The tasks of ``numerous-tasks demo``: real tasks in real worker processes.

Seven instances of five tasks run in one session for about seven seconds: a download, a
CPU-bound training loop (watch its CPU column), three renders sharing two slots (the
third waits as pending), a crawler that is stopped midway and returns what it has, and a
log parser that fails with a real traceback from the worker.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, List, Optional, Tuple

from rich.console import Console
from rich.table import Table

from .control import TaskControl
from .display import TaskDisplay
from .future import Future
from .session import Session
from .task import TaskInstance, task

#: Seconds after which the demo stops the crawler (it would take ~20 s on its own).
STOP_CRAWLER_AFTER = 5.0


@task
def fetch_dataset(tc: TaskControl, name: str, megabytes: int) -> str:
    """Download in chunks, reporting megabytes as they arrive."""
    tc.log(f"connecting to mirror for {name}")
    received = 0.0
    while received < megabytes:
        if tc.should_stop:
            return f"{name}: {received:.0f} MB (stopped)"
        time.sleep(0.05)
        received = min(megabytes, received + megabytes / 90)
        tc.update_progress(100 * received / megabytes, f"{received:4.1f}/{megabytes} MB")
    tc.log(f"{name}: checksum ok")
    return f"{name}: {megabytes} MB"


@task
def train_model(tc: TaskControl, epochs: int) -> Dict[str, Any]:
    """A CPU-bound loop (a slow way to compute pi) that logs its loss per epoch."""
    loss, total, terms, epoch = 1.0, 0.0, 0, 0
    for epoch in range(1, epochs + 1):
        if tc.should_stop:
            break
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:  # real work, so the CPU column has something to show
            for _ in range(2000):
                total += (-1.0) ** terms / (2 * terms + 1)
                terms += 1
        loss = abs(math.pi - 4 * total) * 1e6
        tc.update_progress(100 * epoch / epochs, f"epoch {epoch}/{epochs} loss {loss:.4f}")
        if epoch % 4 == 0:
            tc.log(f"epoch {epoch}: loss {loss:.4f}")
        if epoch == 9:
            tc.log("validation loss went up; lowering the learning rate", "warning")
    return {"epochs": epoch, "loss": round(loss, 4)}


@task(max_parallel=2)
def render_scene(tc: TaskControl, scene: str, frames: int) -> str:
    """Render frames; only two renders run at once, the third waits its turn."""
    for frame in range(1, frames + 1):
        if tc.should_stop:
            return f"{scene}: {frame - 1} frames (stopped)"
        time.sleep(0.06)
        tc.update_progress(100 * frame / frames, f"{scene} frame {frame}/{frames}")
    tc.log(f"{scene}: wrote {scene}.mp4")
    return f"{scene}.mp4"


@task
def crawl_site(tc: TaskControl, site: str, pages: int) -> str:
    """Crawl slowly; when asked to stop, save what it has and return normally."""
    tc.log(f"crawling {site}")
    for page in range(1, pages + 1):
        if tc.should_stop:
            tc.log(f"stop requested: saving {page - 1} pages crawled so far", "warning")
            return f"{site}: {page - 1} of {pages} pages"
        time.sleep(0.05)
        tc.update_progress(100 * page / pages, f"/{site}/page/{page}")
    return f"{site}: all {pages} pages"


def _parse_line(number: int, line: str) -> Tuple[str, int]:
    level, _, millis = line.split(" ")
    return level, int(millis)  # line 1234 says "N/A": a real ValueError, with its frames


@task
def parse_logs(tc: TaskControl, lines: int) -> Dict[str, int]:
    """Parse log lines until one of them is malformed: fails with a real traceback."""
    slowest: Dict[str, int] = {}
    for number in range(1, lines + 1):
        line = "INFO GET N/A" if number == 1234 else f"INFO GET {number % 97}"
        level, millis = _parse_line(number, line)
        slowest[level] = max(slowest.get(level, 0), millis)
        if number % 50 == 0:
            time.sleep(0.08)
            tc.update_progress(100 * number / lines, f"line {number}/{lines}")
    return slowest


def run_demo(console: Console, transcript: Optional[Console] = None, timeline: Optional[str] = None) -> int:
    """Run the demo with a live display on ``console``; returns the exit code (0).

    ``transcript``, if given, gets what a user sees once the demo is over (see
    :class:`~numerous.tasks.display.TaskDisplay`); the CLI saves it as SVG.
    ``timeline``, if given, is where the session's timeline is saved.
    """
    consoles = [console] if transcript is None else [console, transcript]
    for out in consoles:
        out.print(
            "[bold]numerous-tasks demo[/]: seven task instances, each in a process of its own "
            "[dim](source: numerous/tasks/_demo.py)[/]"
        )
    started: List[Tuple[str, Future[Any]]] = []
    with TaskDisplay(console=console, transcript=transcript):
        # The demo's tasks mostly sleep: all seven run at once, whatever the CPU count.
        with Session(name="demo", stop_grace=2.0, display=False, timeline=timeline, max_workers=None):
            started.append(("fetch_dataset", fetch_dataset.instance().start("weather-2024.csv", 48)))
            started.append(("train_model", train_model.instance().start(epochs=20)))
            for scene, frames in (("intro", 40), ("chase", 90), ("credits", 50)):
                started.append((f"render_scene {scene}", render_scene.instance().start(scene, frames)))
            crawler: TaskInstance[[str, int], str] = crawl_site.instance()
            started.append(("crawl_site", crawler.start("example.org", 400)))
            started.append(("parse_logs", parse_logs.instance().start(lines=5000)))
            time.sleep(STOP_CRAWLER_AFTER)
            crawler.stop()  # the crawler sees tc.should_stop and returns what it has
    table = Table(title="results", title_justify="left", box=None, show_header=False, padding=(0, 2))
    for label, future in started:
        if future.status == "completed":
            table.add_row(label, repr(future.result()))
        else:
            error = future.error
            table.add_row(label, f"[red]{future.status}: {type(error).__name__}: {error}[/]")
    for out in consoles:
        out.print(table)
    return 0
