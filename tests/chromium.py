"""Headless Chromium for the browser tests, installed from Debian's packages when missing.

tox runs this file before the tests (``commands_pre``), so CI, which starts on a clean
machine as root, installs Chromium once; the ``chromium`` fixture calls :func:`ensure`
too, for runs without tox. Where installing is impossible (not root, no apt-get) the
browser tests skip and say why.

    python tests/chromium.py          # install if missing; print the browser's path
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Set

import psutil

NAMES = ("chromium", "chromium-browser")
#: Two test processes (pytest-xdist) may both find Chromium missing: one installs.
LOCK = Path(tempfile.gettempdir()) / "numerous-tasks-chromium.lock"
#: Seconds apt-get may take to fetch and install Chromium and its libraries.
INSTALL_TIMEOUT = 900
#: Seconds a screenshot may take: about 2 s on a quiet machine, far more on a loaded one.
SCREENSHOT_TIMEOUT = 300
FLAGS = (
    "--headless",
    "--no-sandbox",  # as root (CI) the sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


class ChromiumUnavailable(Exception):
    """Chromium is not installed and cannot be installed here; the message says why."""


def find() -> Optional[str]:
    """The path of an installed Chromium, or None."""
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def ensure() -> str:
    """The path of Chromium, installed with apt-get first if it is missing.

    Raises:
        ChromiumUnavailable: missing, and this process cannot install it.
    """
    path = find()
    if path:
        return path
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        raise ChromiumUnavailable("chromium is not installed, and installing it (apt-get install chromium) needs root")
    if not shutil.which("apt-get"):
        raise ChromiumUnavailable("chromium is not installed, and there is no apt-get to install it with")
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        path = find()  # another process may have installed it meanwhile
        if path:
            return path
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium"]):
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
            if done.returncode != 0:
                raise ChromiumUnavailable(f"{' '.join(command)} failed ({done.returncode}): {done.stderr[-2000:]}")
    path = find()
    if path is None:
        raise ChromiumUnavailable("apt-get installed chromium, but no chromium command is on PATH")
    return path


def screenshot(browser: str, page: Path, image: Path, profile: Path, width: int, height: int) -> None:
    """Open ``page`` in a fresh headless browser (its profile in ``profile``) and save
    what it shows, ``width`` x ``height`` pixels, as the PNG ``image``."""
    command = [
        browser,
        *FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
        f"--screenshot={image}",
        page.resolve().as_uri(),
    ]
    before = {child.pid for child in psutil.Process().children()}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=SCREENSHOT_TIMEOUT)
    finally:
        _reap_orphans(before)
    if done.returncode != 0 or not image.exists():
        raise AssertionError(f"chromium failed ({done.returncode}): {done.stderr[-2000:]}")


def _reap_orphans(before: Set[int], timeout: float = 10.0) -> None:
    """Wait for the helper processes Chromium leaves behind.

    numerous.tasks makes this process a child subreaper, so Chromium's helpers (zygote,
    crash handler), orphaned when it exits, become our children: reap exactly those.
    """
    deadline = time.monotonic() + timeout
    while True:
        left = [child for child in psutil.Process().children() if child.pid not in before]
        if not left:
            return
        _, alive = psutil.wait_procs(left, timeout=max(0.1, deadline - time.monotonic()))  # waitpid: reaps
        for child in alive:  # still there after the timeout: not ours to keep
            child.kill()


if __name__ == "__main__":
    try:
        print(ensure())
    except ChromiumUnavailable as reason:  # the browser tests will skip and say so
        print(f"chromium: {reason}", file=sys.stderr)
