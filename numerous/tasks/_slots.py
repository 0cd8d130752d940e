"""Which waiting instance of a session runs next: its ``max_parallel`` and ``max_workers`` slots.

Two limits hold at once in a session:

* per task definition, at most ``max_parallel`` instances run;
* across the whole session, the running instances' weights add up to at most
  ``max_workers`` (an instance weighs its size's ``workers``: 1 for ``"small"`` unless
  the session says otherwise; see :mod:`numerous.tasks.sizes`).

Order is first come, first served across the session. Whenever something changes (an
instance starts, ends, or a waiting one is cancelled), the waiting instances are looked
at in the order ``start()`` was called::

    waiting, in start order:   a1  b1  a2  c1  ...
                               │
      its task runs max_parallel already? ── yes ──▶ passed over: a later instance of
                               │                     another task may go ahead of it
                               no
                               │
      its weight fits the free worker slots? ── yes ──▶ it runs; look at the next one
                               │
                               no ──▶ stop: nothing behind it runs before it does, so a
                                      large instance is never starved by small ones

The weight an instance asks for is capped at ``max_workers``, so a large task still runs
(alone) in a session with fewer workers than its size asks for. ``max_workers`` None
means no session cap: only ``max_parallel`` holds.

Waiting instances are kept per task, in start order, so choosing the next one costs a
look at each task that has some waiting, not at each waiting instance.

A backend may queue ahead the instances that will run when a running instance of the
same task ends (the local backend's lane): :meth:`Slots.reserve` hands out the one that
would be taken at that moment, only while nothing can run now. A reserved instance is
neither waiting nor running: it either follows a running one of its task, taking over
its slot as that one ends (:meth:`Slots.transfer`), or is given back to the front of
the queue (:meth:`Slots.give_back`), which the session does whenever a slot comes free
some other way, since the reserved instances are first in line for it.
"""

from __future__ import annotations

import collections
import itertools
import os
from typing import Any, Deque, Dict, Hashable, Iterator, List, Optional, Tuple, Union

from .backends.base import Job

__all__ = ["AUTO", "MaxWorkers", "Slots", "check_max_workers", "usable_cpus"]

#: ``Session(max_workers=AUTO)``, the default: the backend's own default (the usable CPUs
#: on the local and inline backends, no cap on a Dask cluster).
AUTO = "auto"
_NOTHING = object()  # no task: what _first() counts as ending when none does
#: What ``Session(max_workers=...)`` accepts: an int >= 1, None (no cap) or ``"auto"``.
MaxWorkers = Union[int, None, str]


def usable_cpus() -> int:
    """How many CPUs this process may run on: ``os.process_cpu_count()`` (Python 3.13+),
    else the CPUs of ``os.sched_getaffinity(0)`` where the platform has it (a container
    or ``taskset`` may allow fewer than the machine has), else ``os.cpu_count()``; at
    least 1."""
    count = getattr(os, "process_cpu_count", None)
    if count is not None:
        return int(count() or 1)
    affinity = getattr(os, "sched_getaffinity", None)
    if affinity is not None:
        return len(affinity(0)) or 1
    return os.cpu_count() or 1


def check_max_workers(max_workers: Any) -> MaxWorkers:
    """Return ``max_workers`` if it is an int >= 1, None or ``"auto"``, else raise.

    Raises:
        TypeError: neither an int, None nor a str (a bool is refused too).
        ValueError: an int below 1, or a str other than ``"auto"``.
    """
    if max_workers is None:
        return None
    if isinstance(max_workers, str):
        if max_workers != AUTO:
            raise ValueError(f"max_workers must be an int >= 1, None or 'auto', not {max_workers!r}")
        return max_workers
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be an int >= 1, None or 'auto', not {type(max_workers).__name__}")
    if max_workers < 1:
        raise ValueError(f"max_workers must be at least 1, not {max_workers}")
    return max_workers


class Slots:
    """The running counts and the waiting instances of one session (not thread-safe:
    the session calls it with its lock held).

    Args:
        max_workers: the session's cap on the running weight; None: none.
    """

    def __init__(self, max_workers: Optional[int] = None) -> None:
        self.max_workers = max_workers
        self.used = 0  # the running instances' weights, added up
        self._running: Dict[Hashable, int] = collections.defaultdict(int)  # task -> how many run
        self._weights: Dict[Job, int] = {}  # running job -> the weight it holds
        # task -> its waiting jobs in start order, as (order, job, weight)
        self._waiting: Dict[Hashable, Deque[Tuple[int, Job, int]]] = {}
        self._order = itertools.count()
        self._reserved: Dict[Job, Tuple[int, Job, int]] = {}  # job -> its waiting entry

    def weight_of(self, weight: int) -> int:
        """``weight`` capped at ``max_workers`` (so it can run, alone if need be)."""
        return weight if self.max_workers is None else min(weight, self.max_workers)

    def add(self, job: Job, weight: int = 1) -> None:
        """Queue ``job`` behind every job added before it."""
        self._waiting.setdefault(job.task, collections.deque()).append((next(self._order), job, self.weight_of(weight)))

    def add_then_take_all(self, job: Job, weight: int = 1) -> List[Job]:
        """:meth:`add`, then :meth:`take_all`: what ``start()`` does.

        With instances of its task waiting already, nothing may run: whatever holds them
        back holds back ``job``, which is behind them, and nothing else changed (the
        session takes all it can after each change). A burst of ``start()`` calls beyond
        ``max_parallel`` then costs one look here each, not a walk of the queues."""
        others_wait = bool(self._waiting.get(job.task))
        self.add(job, weight)
        return [] if others_wait else self.take_all()

    def take(self) -> Optional[Job]:
        """The next waiting job that may run now (counted as running), or None: the
        first in start order whose task is below its ``max_parallel``, if its weight
        fits (if not, it waits for room, and everything behind it waits too)."""
        if not self._waiting:  # the common case as an instance ends
            return None
        first = self._next()
        if first is None:
            return None
        _, job, weight = first
        queue = self._waiting[job.task]
        queue.popleft()
        if not queue:
            del self._waiting[job.task]
        self._running[job.task] += 1
        self._weights[job] = weight
        self.used += weight
        return job

    def reserve(self, task: Hashable) -> Optional[Job]:
        """The waiting job that will be taken when a running job of ``task`` ends,
        if nothing may run now: reserved to follow that one (None if there is none)."""
        if self._running.get(task, 0) == 0 or self._next() is not None:
            return None
        first = self._first(ending=task)
        if first is None or first[1].task is not task:
            return None
        job = first[1]
        queue = self._waiting[task]
        queue.popleft()
        if not queue:
            del self._waiting[task]
        self._reserved[job] = first
        return job

    def transfer(self, ended: Job, successor: Job) -> None:
        """The reserved ``successor`` took over the slot of ``ended`` (same task)."""
        entry = self._reserved.pop(successor, None)
        weight = self._weights.pop(ended, None)
        if weight is None:  # not counted (never happens: it was running): count it now
            weight = entry[2] if entry is not None else self.weight_of(1)
            self._running[successor.task] += 1
            self.used += weight
        self._weights[successor] = weight

    def give_back(self, jobs: List[Job]) -> None:
        """Reserved jobs that will not follow after all: back to the queue, ahead of
        every job of their task that waits (they were started before those)."""
        entries = [self._reserved.pop(job) for job in jobs if job in self._reserved]
        for entry in sorted(entries, key=lambda entry: entry[0], reverse=True):  # the first ends up in front
            self._waiting.setdefault(entry[1].task, collections.deque()).appendleft(entry)

    def is_reserved(self, job: Job) -> bool:
        """Whether ``job`` is reserved (see :meth:`reserve`)."""
        return job in self._reserved

    @property
    def has_reserved(self) -> bool:
        """Whether any job is reserved."""
        return bool(self._reserved)

    def _next(self) -> Optional[Tuple[int, Job, int]]:
        """The waiting entry :meth:`take` would take now, or None."""
        first = self._first()
        if first is None:
            return None
        if self.max_workers is not None and self.used + first[2] > self.max_workers:
            return None
        return first

    def _first(self, ending: Hashable = _NOTHING) -> Optional[Tuple[int, Job, int]]:
        """The first waiting entry, in start order, whose task runs fewer than its
        ``max_parallel`` — counting one running job of ``ending`` as ended."""
        first: Optional[Tuple[int, Job, int]] = None
        for task, queue in self._waiting.items():
            running = self._running.get(task, 0) - (task is ending)
            if running < _max_parallel(task) and (first is None or queue[0][0] < first[0]):
                first = queue[0]
        return first

    def take_all(self) -> List[Job]:
        """Every job that may run now, in the order they were added (counted as running)."""
        return list(iter(self.take, None))

    def release(self, job: Job) -> bool:
        """A job taken by :meth:`take` ended (or never launched): free what it held;
        False if it held nothing (it handed its slot over, or was released already)."""
        weight = self._weights.pop(job, None)
        if weight is None:
            return False
        self.used -= weight
        task = job.task
        self._running[task] -= 1
        if not self._running[task]:
            del self._running[task]
        return True

    def remove(self, job: Job) -> bool:
        """Take ``job`` out of the queue; False if it was not waiting."""
        return self._remove_waiting(job)

    def is_full(self, job: Job) -> bool:
        """Whether ``job``'s own task runs its ``max_parallel`` already."""
        return self._running.get(job.task, 0) >= _max_parallel(job.task)

    def waiting(self) -> Iterator[Job]:
        """The waiting jobs (in no particular order)."""
        for queue in self._waiting.values():
            for _, job, _ in queue:
                yield job

    def _remove_waiting(self, job: Job) -> bool:
        queue = self._waiting.get(job.task)
        if queue is None:
            return False
        for entry in queue:
            if entry[1] is job:
                queue.remove(entry)
                break
        else:
            return False
        if not queue:
            del self._waiting[job.task]
        return True


def _max_parallel(task: Any) -> int:
    """A job's ``max_parallel`` (a job with no task, which sessions never make: 1)."""
    return 1 if task is None else int(task.max_parallel)
