"""Ctrl-C ends a wait of the main thread at once, even when the kernel hands the SIGINT
to another thread of the process (Linux may): result() (on a new worker, and on a warm
one, whose pipe it reads itself) and iterating a map."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from map_tasks import SLOW_TASK_SCRIPT

SCRIPT = (
    SLOW_TASK_SCRIPT
    + """
def interrupt_from_another_thread():
    time.sleep(1.0)
    signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # received here, not in main

@task
def quick() -> int:
    return 0

threading.Thread(target=interrupt_from_another_thread, daemon=True).start()
started = time.monotonic()
try:
    with Session(stop_grace=5):
        if sys.argv[1] == "result-warm":  # result() reads the warm worker's pipe itself
            quick.instance().start().result()
        if sys.argv[1] in ("result", "result-warm"):
            slow.instance().start(1).result()
        else:
            for value in slow.map(range(4)):
                pass
except KeyboardInterrupt:
    print("interrupted after", round(time.monotonic() - started, 1), flush=True)
"""
)


@pytest.mark.timeout(60)
@pytest.mark.usefixtures("sigint_reaches_children")
@pytest.mark.parametrize("waiting_in", ["result", "result-warm", "map"])
def test_a_sigint_another_thread_received_interrupts_the_main_threads_wait(tmp_path: Path, waiting_in: str) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    done = subprocess.run(
        [sys.executable, "script.py", waiting_in], cwd=tmp_path, capture_output=True, text=True, timeout=50
    )
    assert done.stdout.startswith("interrupted after"), done.stdout + done.stderr
    assert float(done.stdout.split()[-1]) < 5, done.stdout  # not the task's 20 s
