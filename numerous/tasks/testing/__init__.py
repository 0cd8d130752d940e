"""Helpers for testing your tasks; the pytest plugin is :mod:`numerous.tasks.testing.plugin`.

The plugin is registered through the ``pytest11`` entry point, so installing
numerous-tasks makes its fixtures available in every pytest run:

* ``task_session`` — an open :class:`~numerous.tasks.Session` that fails the test if an
  instance is still running at its end, or a worker process, ``/dev/shm`` block, file
  descriptor or library thread is left behind;
* ``task_backend`` — the backend's name; ``--task-backend local,inline`` runs each test
  that uses it once per backend, ``@pytest.mark.task_backend("inline")`` pins a test;
* ``recorded_task_control`` — a :class:`RecordingTaskControlHandler`, installed for the
  test: every log, progress, status and state change, per instance.

The names below work without pytest too.
"""

from __future__ import annotations

from .leaks import ResourceSnapshot, take_snapshot
from .recording import RecordingTaskControlHandler, TaskEvent, instance_id_of

__all__ = [
    "RecordingTaskControlHandler",
    "ResourceSnapshot",
    "TaskEvent",
    "instance_id_of",
    "take_snapshot",
]
