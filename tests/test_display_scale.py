"""200 instances, max_parallel=8, on an 80x24 terminal: every frame fits and every number is true."""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Dict, List

import pytest
from cli_tasks import run_in_terminal, screen
from display_tasks import FAIL_EVERY
from rich.console import Console

from numerous.tasks.display._render import frame
from numerous.tasks.display._rows import Board

TESTS = Path(__file__).resolve().parent
WIDTH, HEIGHT = 80, 24
TOTAL = 200

ROW = re.compile(r"^\S+ +[0-9a-f]{6} (running|stopping|completed|stopped|failed|cancelled) ")
HIDDEN = re.compile(r"^(\d+) finished not shown: (.*)$")
MORE = re.compile(r"^\+(\d+) more running \(not shown\)$")
PENDING = re.compile(r"^(\d+) pending(: .*)?$")
FOOTER = re.compile(r"(\d+)/(\d+) done(?: · (\d+) failed)?")
FINAL = re.compile(r"^(\d+) instances: (.*?) · ")


def counts_of(text: str) -> Dict[str, int]:
    """``"37 completed, 1 failed"`` -> ``{"completed": 37, "failed": 1}``."""
    return {label: int(n) for n, label in (part.split(" ", 1) for part in text.split(", "))}


def check_frame(lines: List[str], total: int, done: int, failed: int) -> Dict[str, int]:
    """Assert that a frame fits and that its numbers add up; return what it shows."""
    assert len(lines) <= HEIGHT - 2, lines  # the cursor's line and a spare stay free
    assert all(len(line) <= WIDTH for line in lines), lines
    seen = {"hidden": 0, "hidden_failed": 0, "finished": 0, "failed": 0, "running": 0, "pending": 0}
    for line in lines[:-1]:
        if HIDDEN.match(line):
            number, what = HIDDEN.match(line).groups()  # type: ignore[union-attr]
            what = what.replace(" (tracebacks above)", "")
            assert sum(counts_of(what).values()) == int(number), line
            seen["hidden"] += int(number)
            seen["hidden_failed"] += counts_of(what).get("failed", 0)
        elif ROW.match(line):
            state = ROW.match(line).group(1)  # type: ignore[union-attr]
            if state in ("running", "stopping"):
                seen["running"] += 1
            else:
                seen["finished"] += 1
                seen["failed"] += state == "failed"
        elif MORE.match(line):
            seen["running"] += int(MORE.match(line).group(1))  # type: ignore[union-attr]
        elif PENDING.match(line):
            seen["pending"] += int(PENDING.match(line).group(1))  # type: ignore[union-attr]
        else:
            raise AssertionError(f"not a line of the frame: {line!r} in {lines}")
    footer = lines[-1]
    if FINAL.match(footer):
        number, what = FINAL.match(footer).groups()  # type: ignore[union-attr]
        assert int(number) == total and sum(counts_of(what).values()) == total, footer
        assert counts_of(what).get("failed", 0) == failed, footer
    else:
        match = FOOTER.search(footer)
        assert match, footer
        assert (int(match.group(1)), int(match.group(2))) == (done, total), footer
        assert int(match.group(3) or 0) == failed, footer
        assert seen["running"] + seen["pending"] == total - done, lines
    assert seen["hidden"] + seen["finished"] == done, lines
    assert seen["hidden_failed"] + seen["failed"] == failed, lines
    return seen


def render(board: Board, now: float) -> List[str]:
    out = io.StringIO()
    Console(file=out, force_terminal=True, width=WIDTH, height=HEIGHT).print(frame(board, now, WIDTH, HEIGHT))
    return screen(out.getvalue())


def test_200_instances_8_at_a_time_every_frame_fits_80x24_and_every_number_is_true() -> None:
    board = Board()
    board.started_at = 0.0
    rows = [board.row("resize_image", f"{i:03d}" + "abc" + f"{i:06d}") for i in range(TOTAL)]
    now, done, failed = 0.0, 0, 0
    running: List[int] = []
    snapshot: List[str] = []
    following = 0
    while done < TOTAL:
        while len(running) < 8 and following < TOTAL:
            board.set_state(rows[following], "running", now)
            running.append(following)
            following += 1
        now += 0.25
        for number in running:
            board.set_progress(rows[number], min(95.0, rows[number].progress + 10.0 + number % 7), now)
            rows[number].status = f"tile {number % 9}/9"
        if running and int(now * 4) % 2 == 0:  # the oldest two finish every half second
            for number in running[:2]:
                fails = number % 23 == 7
                board.set_state(
                    rows[number], "failed" if fails else "completed", now, "ValueError: bad pixel" if fails else ""
                )
                done, failed = done + 1, failed + fails
            running = running[2:]
        check_frame(render(board, now), TOTAL, done, failed)
        if done == 40 and not snapshot:
            snapshot = render(board, now)
    assert check_frame(render(board, now + 1), TOTAL, TOTAL, failed)["failed"] == failed  # failures all shown
    assert snapshot == [
        "27 finished not shown: 27 completed",
        "resize_image 007abc failed    ━━━━━━━━╺━  80%   2.0s           ValueError: bad …",
        "resize_image 028abc completed ━━━━━━━━━━ 100%   2.0s           tile 1/9",
        "resize_image 029abc completed ━━━━━━━━━━ 100%   2.0s           tile 2/9",
        "resize_image 030abc failed    ━━━━━━━━━╸  95%   2.0s           ValueError: bad …",
        "resize_image 031abc completed ━━━━━━━━━━ 100%   2.0s           tile 4/9",
        "resize_image 032abc completed ━━━━━━━━━━ 100%   2.0s           tile 5/9",
        "resize_image 033abc completed ━━━━━━━━━━ 100%   2.0s           tile 6/9",
        "resize_image 034abc completed ━━━━━━━━━━ 100%   2.0s           tile 7/9",
        "resize_image 035abc completed ━━━━━━━━━━ 100%   2.0s           tile 8/9",
        "resize_image 036abc completed ━━━━━━━━━━ 100%   2.0s           tile 0/9",
        "resize_image 037abc completed ━━━━━━━━━━ 100%   2.0s           tile 1/9",
        "resize_image 038abc completed ━━━━━━━━━━ 100%   2.0s           tile 2/9",
        "resize_image 039abc completed ━━━━━━━━━━ 100%   2.0s           tile 3/9",
        "resize_image 040abc running   ━━━━━━━━━╺  90%   1.5s  eta 0.2s tile 4/9",
        "resize_image 041abc running   ━━━━━━━━━╸  95%   1.5s  eta 0.1s tile 5/9",
        "resize_image 042abc running   ━━━━╺━━━━━  40%   1.0s  eta 1.5s tile 6/9",
        "resize_image 043abc running   ━━━━╺━━━━━  44%   1.0s  eta 1.3s tile 7/9",
        "resize_image 044abc running   ━━╺━━━━━━━  24%   0.5s  eta 1.6s tile 8/9",
        "resize_image 045abc running   ━━╸━━━━━━━  26%   0.5s  eta 1.4s tile 0/9",
        "154 pending: resize_image",
        "━━━━╺━━━━━━━━━━━━━━━ 40/200 done · 2 failed · 4/s · 10.0s · eta 35.5s",
    ], "\n".join(snapshot)


@pytest.mark.timeout(120)
def test_200_real_instances_in_an_80x24_terminal(tmp_path: Path) -> None:
    script = tmp_path / "many.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(TESTS)!r})\n"
        "from display_tasks import step\n"
        "from numerous.tasks import Session\n"
        "with Session(display=True):\n"
        f"    futures = [step.instance().start(n) for n in range({TOTAL})]\n"
    )
    code, output, _ = run_in_terminal(
        [sys.executable, str(script)], cwd=tmp_path, timeout=100, columns=WIDTH, lines=HEIGHT
    )
    assert code == 0, output[-3000:]
    failures = len([n for n in range(TOTAL) if n % FAIL_EVERY == 7])
    # Each redraw starts by erasing the frame before: the screen just before it holds a whole frame.
    starts = [m.start() for m in re.finditer(re.escape("\r\x1b[2K"), output)]
    frames = 0
    pending_seen = set()
    for end in starts[:: max(1, len(starts) // 40)] + [len(output)]:
        lines = screen(output[:end])
        assert all(len(line) <= WIDTH for line in lines)
        footer = [i for i, line in enumerate(lines) if FOOTER.search(line) or FINAL.match(line)]
        if not footer:
            continue
        top = footer[-1]
        while top > 0 and any(p.match(lines[top - 1]) for p in (ROW, HIDDEN, MORE, PENDING)):
            top -= 1
        shown = lines[top : footer[-1] + 1]
        match = FOOTER.search(shown[-1])
        done = int(match.group(1)) if match else TOTAL
        failed = int(match.group(3) or 0) if match else failures
        # While the script is still starting them, the display counts the instances so far.
        total = int(match.group(2)) if match else TOTAL
        assert total <= TOTAL
        seen = check_frame(shown, total, done, failed)
        pending_seen.add(seen["pending"])
        frames += 1
    assert frames >= 5
    assert max(pending_seen) >= 100  # early on, the pending ones were one line
    final = screen(output)
    assert final[-1].startswith(f"{TOTAL} instances: {TOTAL - failures} completed, {failures} failed · ")
    assert sum("failed; its traceback from the worker:" in line for line in final) == failures
