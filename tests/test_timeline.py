"""Session(timeline=...): a self-contained HTML or SVG picture of every instance's life."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from chromium import ChromiumUnavailable, ensure, screenshot
from display_tasks import phases

from numerous.tasks import Session
from numerous.tasks.display.timeline import Timeline

TESTS = Path(__file__).resolve().parent
SVG = "{http://www.w3.org/2000/svg}"


def run_four(path: Path) -> List[str]:
    """Four instances of a one-at-a-time task: completed, stopped, failed, cancelled."""
    with Session(name="four", timeline=str(path)):
        first = phases.instance().start(0.3)
        second = phases.instance()
        stopped = second.start(5.0)
        failed = phases.instance().start(0.1, fail=True)
        cancelled = phases.instance().start(0.1)
        assert cancelled.cancel()  # still waiting for a slot: it never runs
        first.result(timeout=30)
        while second.times.running_ns is None:  # it waits for the first one's slot, then starts
            stopped.wait_done(0.01)
        second.stop()
        assert stopped.result(timeout=30) == "stopped"
        assert failed.wait_done(30) and failed.status == "failed"
    return [first.instance_id, stopped.instance_id, failed.instance_id]


def rows_of(svg: ET.Element) -> List[ET.Element]:
    return [g for g in svg.iter(f"{SVG}g") if g.get("class") == "row"]


@pytest.mark.timeout(60)
def test_a_session_saves_an_html_timeline_with_one_bar_per_instance(tmp_path: Path) -> None:
    page = tmp_path / "run.html"
    with Session(name="four", timeline=str(page)):
        pass  # nothing started: still a page
    assert "0 instances" in page.read_text()
    first, stopped, failed = run_four(page)
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # Self-contained: no script, no stylesheet or font or image to fetch.
    assert "<script" not in html and "src=" not in html and "@import" not in html
    assert re.findall(r"https?://[^\"]+", html) == ["http://www.w3.org/2000/svg"]  # the SVG namespace only
    svg = ET.fromstring(html[html.index("<svg") : html.index("</svg>") + 6])
    rows = rows_of(svg)
    assert len(rows) == 4
    hovers = [row.find(f"{SVG}title").text or "" for row in rows]  # type: ignore[union-attr]
    outcomes = [hover.splitlines()[0].rsplit("— ", 1)[1] for hover in hovers]
    assert outcomes == ["completed", "stopped", "failed", "cancelled"]  # in the order they were started
    assert [hover.splitlines()[0] for hover in hovers[:3]] == [
        f"phases {first} — completed",
        f"phases {stopped} — stopped",
        f"phases {failed} — failed",
    ]
    assert "ValueError: the third one fails" in hovers[2]
    assert "stop latency" in hovers[1] and "queued" in hovers[1]

    def phases_of(row: ET.Element) -> List[str]:
        return [r.get("class", "") for r in row.iter(f"{SVG}rect") if r.get("class") not in (None, "hover")]

    assert phases_of(rows[0]) == ["queued", "running", "end completed"]
    assert phases_of(rows[1]) == ["queued", "running", "stopping", "end stopped"]
    assert phases_of(rows[2]) == ["queued", "running", "end failed"]
    assert phases_of(rows[3]) == ["queued", "end cancelled"]  # it never ran
    # The stopped one waited for the first one's slot: its queued bar is longer.
    widths = [
        float(next(r for r in row.iter(f"{SVG}rect") if r.get("class") == "queued").get("width", 0)) for row in rows
    ]
    assert widths[1] > widths[0]
    labels = ["".join(row.itertext()) for row in rows]
    assert "failed · ran " in labels[2] and labels[3].endswith("cancelled · never ran")


@pytest.mark.timeout(60)
def test_an_svg_path_saves_a_standalone_svg(tmp_path: Path) -> None:
    image = tmp_path / "run.svg"
    run_four(image)
    svg = ET.parse(image).getroot()
    assert svg.tag == f"{SVG}svg" and len(rows_of(svg)) == 4


def test_bad_timeline_arguments_are_clear_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="timeline must be a path"):
        Session(timeline=5)  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="no such directory"):
        Session(timeline=str(tmp_path / "missing" / "run.html"))
    Timeline(tmp_path / "ok.html")  # a pathlib.Path is fine


@pytest.mark.timeout(60)
def test_the_command_saves_a_timeline_for_a_task_and_for_every_session_of_a_script(tmp_path: Path) -> None:
    page = tmp_path / "task.html"
    done = subprocess.run(
        [sys.executable, "-m", "numerous.tasks", "run", "--timeline", str(page), "cli_tasks:add", "a=1", "b=2"],
        capture_output=True,
        text=True,
        cwd=TESTS,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3\n" and f"saved {page}" in done.stderr
    assert ">add <tspan" in page.read_text()
    script = tmp_path / "two.py"
    script.write_text(
        "from numerous.tasks import Session\n"
        f"import sys; sys.path.insert(0, {str(TESTS)!r})\n"
        "from cli_tasks import add\n"
        "with Session(name='first'):\n    add.instance().start(1, 2).result()\n"
        "with Session(name='second'):\n    add.instance().start(3, 4).result()\n"
    )
    image = tmp_path / "two.svg"
    done = subprocess.run(
        [sys.executable, "-m", "numerous.tasks", "run", "--timeline", str(image), str(script)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    text = image.read_text()
    assert "session first" in text and "session second" in text and len(rows_of(ET.fromstring(text))) == 2
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "numerous.tasks",
            "run",
            "--timeline",
            "/no/such/dir/x.html",
            "cli_tasks:add",
            "a=1",
            "b=2",
        ],
        capture_output=True,
        text=True,
        cwd=TESTS,
        timeout=30,
    )
    assert missing.returncode == 2 and "no such directory" in missing.stderr


# -- in a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[str]:
    """Headless Chromium (installed with apt-get first when missing and we are root)."""
    try:
        yield ensure()
    except ChromiumUnavailable as reason:
        pytest.skip(str(reason))


def colour_count(image: Path, colour: Tuple[int, int, int]) -> int:
    from PIL import Image

    with Image.open(image) as picture:
        counts = picture.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(n for n, each in counts if each == colour)


def hex_rgb(value: str) -> Tuple[int, int, int]:
    return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


@pytest.mark.timeout(900)  # the first run may install Chromium (apt-get) first
def test_the_timeline_renders_in_headless_chromium(chromium: str, tmp_path: Path) -> None:
    from numerous.tasks.display._timeline_page import OUTCOME_COLOURS, PHASE_COLOURS

    page = tmp_path / "run.html"
    run_four(page)
    image = tmp_path / "run.png"
    screenshot(chromium, page, image, tmp_path / "profile", 1200, 300)
    from PIL import Image

    with Image.open(image) as picture:
        assert picture.size == (1200, 300)
    # Every phase and outcome is drawn: solid pixels of its colour, bars not a few dots.
    for name in ("queued", "running", "stopping"):
        assert colour_count(image, hex_rgb(PHASE_COLOURS[name])) > 50, name
    for name in ("completed", "stopped", "failed", "cancelled"):
        assert colour_count(image, hex_rgb(OUTCOME_COLOURS[name])) > 30, name
