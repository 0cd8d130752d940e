"""How much slower this machine runs a few lines of Python that have not run for a while.

``python benchmarks/cold_code.py`` times the same short path (a small pickle, a JSON
dump, a str() and a join) right after itself, and after each way a process spends time
between two stops: a system call, sleeps of 0.2 and 5 ms, and a 20 ms spin in a loop.
Where the path's memory stays cached across such pauses the figures stay close. On this
project's machine (a virtual machine whose idle CPUs halt at once, without halt polling)
the path took tens of times as long after the 5 ms sleep or the 20 ms spin, most likely
because what it needs was evicted meanwhile. The stop figure of ``run.py`` meets exactly
this: both sides of a stop run after such a pause (see its floors).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import statistics
import time
from typing import Callable, Dict, List


def short_path() -> int:
    """The path timed: a few lines of everyday Python; its own wall time in ns."""
    t0 = time.perf_counter_ns()
    pickle.dumps({"a": [1, 2, 3]})
    json.dumps([1, 2])
    str(12345)
    "x".join(["a", "b"])
    return time.perf_counter_ns() - t0


def spin(seconds: float) -> None:
    """Run a tight loop for ``seconds``, as a task polling ``should_stop`` does."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=200, help="timings per row (default 200)")
    args = parser.parse_args()
    pauses: Dict[str, Callable[[], object]] = {
        "right after itself": lambda: None,
        "after a system call (getppid)": os.getppid,
        "after a 0.2 ms sleep": lambda: time.sleep(0.0002),
        "after a 5 ms sleep": lambda: time.sleep(0.005),
        "after a 20 ms spin": lambda: spin(0.02),
    }
    samples: Dict[str, List[int]] = {name: [] for name in pauses}
    for _ in range(max(1, args.samples)):
        for name, pause in pauses.items():
            short_path()  # warm: each sample starts from the path just run
            pause()
            samples[name].append(short_path())
    hot = statistics.median(samples["right after itself"])
    print("| the path run … | median (µs) | × right after itself |")
    print("|---|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median / 1e3:.2f} | {median / hot:.1f}× |")


if __name__ == "__main__":
    main()
