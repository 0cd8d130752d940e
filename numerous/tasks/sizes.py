"""What ``@task(size=...)`` means: a memory limit and a number of workers per size.

::

    size      memory limit (default)       workers (default)   counts against max_workers
    ------    --------------------------   -----------------   ---------------------------
    small     1/8 of this machine's RAM    1                   1 per running instance
    medium    1/4 of it                    2                   2
    large     1/2 of it                    4                   4 (never more than max_workers)

``Session(sizes={"large": Size(memory="8GB", workers=4)})`` overrides sizes for one
session; the ones it does not name keep their defaults. "This machine's RAM" is the
total physical memory, or the cgroup's ``memory.max`` when a container allows less.

**Memory** is enforced by the local backend by accounting: every
:data:`MEMORY_POLL_INTERVAL` seconds the parent adds up the resident memory (RSS) of the
instance's worker and every process it started; an instance over its limit is killed
(its whole tree, at once: it may be growing fast) and its future fails with
:class:`~numerous.tasks.MemoryLimitError`, naming the size, the limit and the peak seen.
Other instances run on. Between two readings a task can overshoot, so leave headroom. The
inline backend runs tasks in threads of your process and cannot tell their memory apart:
it does not enforce it.

**Workers** is how many of the session's ``max_workers`` one running instance takes
(capped at ``max_workers``, so a large task still runs, alone, in a smaller session).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Mapping, Optional, Tuple, Union

from ._options import SIZES

__all__ = ["DEFAULT_SIZES", "MEMORY_POLL_INTERVAL", "Size", "parse_memory", "resolve_sizes", "total_memory"]

#: Seconds between two readings of a running instance's memory on the local backend:
#: reading a process tree costs a scan of ``/proc`` (about a millisecond here), so not
#: at every 50 ms progress poll.
MEMORY_POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class Size:
    """What one task size allows (frozen; compare and hash by value).

    Args:
        memory: the memory limit of one running instance (its worker process and every
            process it starts, added up): bytes as an int, a str with a unit
            (``"512MB"``, ``"8GiB"``, ``"1.5 GB"``: KB/MB/GB/TB are powers of 1000,
            KiB/MiB/GiB/TiB of 1024), a share of this machine's memory (``"25%"``), or
            None for no limit.
        workers: how many of the session's ``max_workers`` one running instance takes
            (an int >= 1).

    Raises:
        TypeError: a field has the wrong type.
        ValueError: a memory figure that cannot be read or is not > 0, or workers < 1.
    """

    memory: Union[int, str, None] = None
    workers: int = 1

    def __post_init__(self) -> None:
        if self.memory is not None:
            _read_figure(self.memory)  # raises on a bad figure; a share is resolved per session
        if isinstance(self.workers, bool) or not isinstance(self.workers, int):
            raise TypeError(f"Size.workers must be an int, not {type(self.workers).__name__}")
        if self.workers < 1:
            raise ValueError(f"Size.workers must be at least 1, not {self.workers}")

    def memory_bytes(self) -> Optional[int]:
        """The memory limit in bytes (a share resolved against ``total_memory()``), or None."""
        return None if self.memory is None else parse_memory(self.memory)


_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
_FIGURE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*|%)\s*$")


def parse_memory(memory: Union[int, str]) -> int:
    """Bytes from an int, ``"512MB"``/``"8GiB"``-style text, or a share ``"25%"`` of
    ``total_memory()``.

    Raises:
        TypeError: neither an int nor a str.
        ValueError: text that is no figure with a known unit, or a figure that is not > 0.
    """
    number, unit = _read_figure(memory)
    if unit == "%":
        return max(1, int(number * total_memory() / 100))
    return int(number * _UNITS[unit])


def _read_figure(memory: Union[int, str]) -> Tuple[float, str]:
    """``(number, unit)`` of a valid memory figure (unit "" for bytes, "%" for a share)."""
    if isinstance(memory, bool) or not isinstance(memory, (int, str)):
        raise TypeError(f"a memory figure must be an int of bytes or a str like '8GB', not {type(memory).__name__}")
    if isinstance(memory, int):
        number, unit = float(memory), ""
    else:
        match = _FIGURE.match(memory)
        unit = match.group(2).lower() if match else ""
        if match is None or (unit != "%" and unit not in _UNITS):
            raise ValueError(
                f"cannot read memory figure {memory!r}: use bytes or a number with a unit "
                "(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB) or a share of this machine's memory ('25%')"
            )
        number = float(match.group(1))
        if unit == "%" and not 0 < number <= 100:
            raise ValueError(f"a share of memory must be > 0% and <= 100%, not {memory!r}")
    if unit != "%" and int(number * _UNITS[unit]) <= 0:
        raise ValueError(f"a memory figure must be > 0, not {memory!r}")
    return number, unit


def total_memory() -> int:
    """This machine's memory in bytes: the physical total, or the cgroup v2 limit
    (``/sys/fs/cgroup/memory.max``) when a container allows less."""
    import psutil  # imported on first use: importing numerous.tasks stays cheap

    total = int(psutil.virtual_memory().total)
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            text = f.read().strip()
    except OSError:
        return total
    return min(total, int(text)) if text.isdigit() else total


def resolve_sizes(overrides: Optional[Mapping[str, Size]]) -> Dict[str, Size]:
    """:data:`DEFAULT_SIZES` with ``overrides`` (a session's ``sizes=``) in place.

    Raises:
        TypeError: not a mapping, or a value that is not a :class:`Size`.
        ValueError: a key that is no size name.
    """
    sizes = dict(DEFAULT_SIZES)
    if overrides is None:
        return sizes
    if not isinstance(overrides, Mapping):
        raise TypeError(f"sizes must be a dict of size name to Size, not {type(overrides).__name__}")
    for name, size in overrides.items():
        if name not in SIZES:
            raise ValueError(f"sizes: {name!r} is no size; use {', '.join(map(repr, SIZES))}")
        if not isinstance(size, Size):
            raise TypeError(f"sizes[{name!r}] must be a numerous.tasks.Size, not {type(size).__name__}")
        sizes[name] = size
    return sizes


#: The sizes a session has unless ``Session(sizes=...)`` overrides them.
DEFAULT_SIZES: Dict[str, Size] = {
    "small": Size(memory="12.5%", workers=1),
    "medium": Size(memory="25%", workers=2),
    "large": Size(memory="50%", workers=4),
}
