"""CPU and memory of the process that runs an instance: :class:`ResourceFigures`.

A live view shows, per running instance, how busy its process is and how much memory it
holds. The figures are read where the process runs, by :class:`ProcessSampler`:

* the Dask backend reads them on the Dask worker's host and sends them to the parent
  with the instance's progress; the parent's handler gets them through
  :meth:`TaskControlHandler.resources_sampled
  <numerous.tasks.control.TaskControlHandler.resources_sampled>`, at the interval its
  :meth:`~numerous.tasks.control.TaskControlHandler.resource_sample_interval` asks for;
* on the local backend the task's process is on this machine, and the live display reads
  it itself (``numerous.tasks.display``), with the same sampler.

Both read the one process that runs the task body (not processes it started), the way
``top`` shows a process: CPU % since the previous reading (100 = one core busy, more for
a body that runs threads on several cores) and its resident memory (RSS).
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

__all__ = ["ProcessSampler", "ResourceFigures"]


class ResourceFigures(NamedTuple):
    """One reading of the CPU and memory of an instance's process, where it runs."""

    #: CPU % since the previous reading (100 = one core); None on the first reading (a
    #: percentage needs an interval) or when the process could not be read.
    cpu_percent: Optional[float]
    #: Resident memory in bytes; None when the process could not be read (it had ended).
    rss_bytes: Optional[int]
    #: The process that was read (the one that runs the task body, on ``host``).
    pid: int
    #: The name of the machine it runs on (``socket.gethostname()`` there).
    host: str


class ProcessSampler:
    """Reads one process's figures, each time since the previous reading.

    Args:
        pid: the process to read.
        host: the name of this machine, put in the figures (default
            ``socket.gethostname()``).
    """

    def __init__(self, pid: int, host: Optional[str] = None) -> None:
        import psutil  # imported on first use: importing numerous.tasks stays cheap

        if host is None:
            import socket

            host = socket.gethostname()
        self.pid = pid
        self.host = host
        self._psutil: Any = psutil
        self._process: Any = None  # the psutil.Process once the first reading succeeded

    def read(self) -> ResourceFigures:
        """The figures now: the first reading starts the CPU interval (its ``cpu_percent``
        is None); a process that cannot be read (it ended, or is not ours to read) gives
        None for both."""
        psutil = self._psutil
        try:
            if self._process is None:
                process = psutil.Process(self.pid)
                process.cpu_percent(None)  # the first call only starts the interval
                rss = process.memory_info().rss
                self._process = process
                return ResourceFigures(None, rss, self.pid, self.host)
            process = self._process
            cpu = process.cpu_percent(None)
            return ResourceFigures(cpu, process.memory_info().rss, self.pid, self.host)
        except (psutil.Error, OSError):
            return ResourceFigures(None, None, self.pid, self.host)
