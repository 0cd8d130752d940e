"""CPU % and memory of each running instance's process, read on this machine by the
display's thread.

The figures are of the process ``control.process_id`` names, read here: right for the
local backend, whose task processes are ours. A backend whose task processes run
elsewhere (Dask) reads them where they run and sends them
(``TaskControlHandler.resources_sampled``); the display never reads such a pid here.
"""

from __future__ import annotations

from typing import Dict, Iterable, Optional, Tuple

from ..resources import ProcessSampler
from ._rows import Row

__all__ = ["Sampler"]


class Sampler:
    """Keeps a :class:`~numerous.tasks.resources.ProcessSampler` per instance, so CPU %
    spans the time between samples."""

    def __init__(self) -> None:
        self._processes: Dict[str, ProcessSampler] = {}  # instance id -> its process's sampler

    def sample(self, rows: Iterable[Row]) -> Dict[str, Tuple[Optional[float], int]]:
        """Read ``(cpu %, rss bytes)`` of each row's process; cpu is None on a first read.

        Rows whose process has exited, or cannot be read, are left out.
        """
        figures: Dict[str, Tuple[Optional[float], int]] = {}
        seen = set()
        for row in rows:
            pid = row.pid
            if pid is None:
                continue
            seen.add(row.instance_id)
            sampler = self._processes.get(row.instance_id)
            if sampler is None or sampler.pid != pid:
                sampler = self._processes[row.instance_id] = ProcessSampler(pid)
            reading = sampler.read()
            if reading.rss_bytes is not None:  # else it has exited or is not ours to read
                figures[row.instance_id] = (reading.cpu_percent, reading.rss_bytes)
        for gone in set(self._processes) - seen:  # finished instances: forget their process
            del self._processes[gone]
        return figures
