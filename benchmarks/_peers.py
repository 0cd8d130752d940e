"""The peers the benchmarks measure numerous.tasks against: ``ProcessPoolExecutor``
(spawn), and pebble and loky where installed, each as a warm pool of its own."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

import _work

SPAWN = multiprocessing.get_context("spawn")
#: A peer's warm pool: (pool, submit(fn, *args) -> future, close(pool)).
Pool = Tuple[Any, Callable[..., Any], Callable[[Any], None]]


def optional(module: str) -> Any:
    """The module, or None when it is not installed."""
    try:
        return __import__(module)
    except ImportError:
        return None


pebble = optional("pebble")
loky = optional("loky")


def peer_pools(workers: int, names: Optional[Iterable[str]] = None) -> Dict[str, Pool]:
    """Each installed peer's pool of ``workers`` spawned processes (only those ``names``,
    if given), warm: its processes started and their imports done."""
    wanted = None if names is None else set(names)
    pools: Dict[str, Pool] = {}
    if wanted is None or "ProcessPoolExecutor (spawn)" in wanted:
        ppe = concurrent.futures.ProcessPoolExecutor(workers, mp_context=SPAWN)
        pools["ProcessPoolExecutor (spawn)"] = (ppe, lambda fn, *a: ppe.submit(fn, *a), lambda e: e.shutdown())
    if pebble and (wanted is None or "pebble" in wanted):
        peb = pebble.ProcessPool(max_workers=workers, context=SPAWN)
        pools["pebble"] = (peb, lambda fn, *a: peb.schedule(fn, args=a), lambda e: (e.stop(), e.join()))
    if loky and (wanted is None or "loky" in wanted):
        lok = loky.ProcessPoolExecutor(max_workers=workers)
        pools["loky"] = (lok, lambda fn, *a: lok.submit(fn, *a), lambda e: e.shutdown())
    for _, submit, _ in pools.values():
        [f.result() for f in [submit(_work.tiny, i) for i in range(2 * workers)]]
    return pools
