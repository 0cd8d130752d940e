"""The local backend: one spawned worker process per instance (see ``backend``).

``LocalExecutionBackend`` (numerous-sdk's name for it) is importable from here, on first
use: a worker process imports ``._worker`` through this package and needs nothing else.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import LocalExecutionBackend as LocalExecutionBackend

__all__ = ["LocalExecutionBackend"]


def __getattr__(name: str) -> Any:
    """``LocalExecutionBackend``, imported on first use (PEP 562)."""
    if name == "LocalExecutionBackend":
        from .backend import LocalExecutionBackend

        return LocalExecutionBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
