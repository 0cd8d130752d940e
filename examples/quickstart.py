"""A short tour of numerous.tasks with real tasks (runs unguarded, as a plain script).

    python examples/quickstart.py

Four instances of two tasks run at once, each in a process of its own. A small
handler prints their progress and logs as they arrive in this process; one instance
is stopped midway, one fails with a real traceback from the worker.
"""

import time
import traceback

from numerous.tasks import Session, TaskControl, task
from numerous.tasks.control import TaskControlHandler, set_task_control_handler


@task(max_parallel=3)
def crunch(tc: TaskControl, label: str, steps: int) -> str:
    """Work in steps, reporting progress and honouring stop requests."""
    tc.log(f"{label}: starting {steps} steps", "info")
    for step in range(steps):
        if tc.should_stop:
            tc.log(f"{label}: stopped at step {step}", "warning")
            return f"{label} stopped after {step} steps"
        time.sleep(0.2)
        tc.update_progress(100 * (step + 1) / steps, f"{label}: step {step + 1}/{steps}")
    return f"{label} finished {steps} steps"


@task
def parse_config(tc: TaskControl, text: str) -> dict:
    """Fail with a real exception on bad input."""
    tc.update_status("parsing")
    key, value = text.split("=")  # "no equals sign" cannot be unpacked
    return {key: value}


class PrintingHandler(TaskControlHandler):
    """Print what the workers report (runs in this process, on a background thread)."""

    def log(self, task_control, message, level, **extra_data):
        print(f"  log   [{level:7}] {message}")

    def update_progress(self, task_control, progress, status):
        print(f"  progress {progress:5.1f}%  {status}")


set_task_control_handler(PrintingHandler())

with Session(name="quickstart", max_workers=4):  # all four at once, even on a 2-CPU machine
    alpha = crunch.instance().start("alpha", 5)
    beta = crunch.instance().start("beta", 8)
    stoppable = crunch.instance()
    gamma = stoppable.start("gamma", 50)
    broken = parse_config.instance().start("no equals sign")

    time.sleep(0.7)
    stoppable.stop()  # gamma sees tc.should_stop and returns early

    for future in (alpha, beta, gamma):
        print(f"result: {future.result()}")  # one write: the handler prints from another thread
    try:
        broken.result()
    except ValueError as error:
        print("parse_config failed, as planned; its traceback from the worker:")
        traceback.print_exception(type(error), error, error.__traceback__)
    print(f"statuses: {[f.status for f in (alpha, beta, gamma, broken)]}")
