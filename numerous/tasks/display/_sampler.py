"""CPU % and memory of each running worker, read with psutil by the display's thread.

The figures are of the process ``control.process_id`` names, on this machine: right for
the local backend, whose workers are ours. (On a Dask cluster that pid belongs to another
host; sampling there is the Dask backend's to do.)
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Tuple

from ._rows import Row

__all__ = ["Sampler"]


class Sampler:
    """Keeps a ``psutil.Process`` per worker pid, so CPU % spans the time between samples."""

    def __init__(self) -> None:
        self._processes: Dict[str, Tuple[int, Any]] = {}  # instance id -> (pid, psutil.Process)

    def sample(self, rows: Iterable[Row]) -> Dict[str, Tuple[Optional[float], int]]:
        """Read ``(cpu %, rss bytes)`` of each row's worker; cpu is None on a first read.

        Rows whose worker has exited, or cannot be read, are left out.
        """
        import psutil

        figures: Dict[str, Tuple[Optional[float], int]] = {}
        seen = set()
        for row in rows:
            pid = row.pid
            if pid is None:
                continue
            seen.add(row.instance_id)
            try:
                known = self._processes.get(row.instance_id)
                if known is None or known[0] != pid:
                    process = psutil.Process(pid)
                    self._processes[row.instance_id] = (pid, process)
                    process.cpu_percent(None)  # the first call only starts the interval
                    cpu = None
                else:
                    process = known[1]
                    cpu = process.cpu_percent(None)
                figures[row.instance_id] = (cpu, process.memory_info().rss)
            except (psutil.Error, OSError):  # the worker has exited or is not ours to read
                continue
        for gone in set(self._processes) - seen:  # finished instances: forget their process
            del self._processes[gone]
        return figures
