"""Tasks that tests/test_cli.py runs through the command, and a tiny terminal for tests.

The command imports this module by name (``cli_tasks:add``) from tests/ as its working
directory, and tests/test_display.py renders through :func:`screen`.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path
from typing import Any, Dict, List, Set, Tuple

from numerous.tasks import TaskControl, task


@task
def add(tc: TaskControl, a: int, b: int) -> int:
    tc.log(f"adding {a} and {b}")
    tc.update_progress(100, "added")
    return a + b


@task
def echo(n: int, s: str, items: List[int], word: str, flag: bool, nothing: Any) -> Dict[str, Any]:
    return {"n": n, "s": s, "items": items, "word": word, "flag": flag, "nothing": nothing}


@task
def as_set(items: List[int]) -> Set[int]:
    return set(items)  # not JSON: printed with repr()


def check_input(text: str) -> None:
    raise ValueError(f"bad input: {text}")


@task
def fail(tc: TaskControl, text: str) -> None:
    tc.update_status("checking")
    check_input(text)


@task
def wait_for_stop(tc: TaskControl) -> str:
    tc.update_status("waiting for a stop")
    tc.log("ready")
    deadline = time.monotonic() + 30
    while not tc.should_stop and time.monotonic() < deadline:
        time.sleep(0.01)
    tc.log("stop seen", "warning")
    return "stopped on request"


def plain_function(x: int) -> int:
    return x


NOT_CALLABLE = 42


_STAMP = re.compile(r"^\d\d:\d\d:\d\d ")


def untimed(text: str) -> List[str]:
    """The lines of a display's log output (not a terminal), each without the
    ``HH:MM:SS`` timestamp it starts with (tracebacks have none)."""
    return [_STAMP.sub("", line) for line in text.splitlines()]


def timestamped(line: str) -> bool:
    """Whether a line of a display's log output starts with its timestamp."""
    return _STAMP.match(line) is not None


_CSI = re.compile(r"\x1b\[([?0-9;]*)([A-Za-z])")


def screen(output: str) -> List[str]:
    """What a terminal shows after ``output``: enough of a terminal for rich's Live.

    Handles what rich writes: text, CR, LF, erase line (CSI 2K), cursor up (CSI nA);
    colours and other CSI sequences are dropped. Lines beyond the screen's height are
    kept (scrollback), so the result is everything the user can scroll through.
    """
    lines: List[str] = [""]
    row = col = 0
    i = 0
    while i < len(output):
        char = output[i]
        if char == "\x1b":
            match = _CSI.match(output, i)
            if match:
                argument, command = match.groups()
                if command == "A":
                    row = max(0, row - int(argument or 1))
                elif command == "K":
                    lines[row], col = "", 0
                i = match.end()
            else:
                i += 1
            continue
        if char == "\r":
            col = 0
        elif char == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + char + line[col + 1 :]
            col += 1
        i += 1
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.rstrip() for line in lines]


def run_in_terminal(
    args: List[str], cwd: Path, timeout: float, columns: int = 110, lines: int = 40
) -> Tuple[int, str, float]:
    """Run ``args`` with a pseudo-terminal as stdin, stdout and stderr; returns the exit
    code, everything written, and the seconds it took."""
    master, slave = pty.openpty()
    try:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR", "TERM")}
        env["TERM"] = "xterm-256color"
        started = time.monotonic()
        process = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, cwd=cwd, env=env, close_fds=True)
        try:
            os.close(slave)
            slave = -1
            chunks: List[bytes] = []
            deadline = started + timeout
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.2)
                if ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError:  # EIO: the terminal's other side is closed
                        break
                    if not data:
                        break
                    chunks.append(data)
                elif process.poll() is not None:
                    break
            code = process.wait(timeout=max(0.1, deadline - time.monotonic()))
            elapsed = time.monotonic() - started
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    finally:
        os.close(master)
        if slave != -1:
            os.close(slave)
    return code, b"".join(chunks).decode("utf-8", "replace"), elapsed
