"""The local backend: one spawned worker process per instance (see ``backend``).

``LocalExecutionBackend`` (numerous-sdk's name for it) is importable from here, on first
use: a worker process imports ``._worker`` through this package and needs nothing else.
:func:`shared_memory_names` is what a leak check asks of it.
"""

from typing import TYPE_CHECKING, Any, FrozenSet

if TYPE_CHECKING:
    from .backend import LocalExecutionBackend as LocalExecutionBackend

__all__ = ["LocalExecutionBackend", "shared_memory_names"]


def shared_memory_names() -> FrozenSet[str]:
    """Names of the ``/dev/shm`` blocks this process made and has not removed yet
    (control blocks made as named shared memory; none where the backend never ran):
    what ``numerous.tasks.testing``'s leak snapshot looks for."""
    from ._shm import linked_blocks

    return linked_blocks()


def __getattr__(name: str) -> Any:
    """``LocalExecutionBackend``, imported on first use (PEP 562)."""
    if name == "LocalExecutionBackend":
        from .backend import LocalExecutionBackend

        return LocalExecutionBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
