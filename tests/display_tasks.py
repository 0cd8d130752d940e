"""Tasks the display's tests run for real: many short instances, some of which fail."""

from __future__ import annotations

import time

from numerous.tasks import TaskControl, task

#: Every how many instances of :func:`step` one fails.
FAIL_EVERY = 50


@task(max_parallel=8)
def step(tc: TaskControl, number: int) -> int:
    """Five small steps with progress; instance 7, 57, 107, ... fails at the third."""
    for part in range(1, 6):
        time.sleep(0.02)
        if part == 3 and number % FAIL_EVERY == 7:
            raise ValueError(f"item {number} is corrupt")
        tc.update_progress(20 * part, f"part {part}/5")
    return number


@task(max_parallel=1)
def phases(tc: TaskControl, seconds: float, fail: bool = False) -> str:
    """Run ``seconds`` (checking for a stop), then fail or return; one at a time."""
    tc.update_status("started")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if tc.should_stop:
            time.sleep(0.1)  # a visible "stopping" phase on the timeline
            return "stopped"
        time.sleep(0.01)
    if fail:
        raise ValueError("the third one fails")
    return "done"
