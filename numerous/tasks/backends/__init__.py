"""Backends run started instances; a :class:`~numerous.tasks.Session` owns one.

The contract (``Job``, ``Backend``) lives in :mod:`numerous.tasks.backends.base`, the
names (built-in, registered, offered by installed packages) in :mod:`.registry`,
numerous-sdk's ``ExecutionBackend`` in :mod:`.execution`; each backend in a sub-package
of its own. The names below are imported on first use, so that a worker process, which
imports a backend's worker module through this package, pays for nothing else.
"""

from typing import TYPE_CHECKING, Any, Dict

if TYPE_CHECKING:
    from .execution import ExecutionBackend as ExecutionBackend
    from .registry import get_backend as get_backend
    from .registry import register_backend as register_backend
    from .registry import set_default_backend as set_default_backend

_EXPORTS: Dict[str, str] = {
    "ExecutionBackend": "execution",
    "register_backend": "registry",
    "get_backend": "registry",
    "set_default_backend": "registry",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use (PEP 562)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
