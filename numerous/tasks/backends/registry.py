"""Backend names: the built-in ones, those you register, and those installed packages offer.

A name stands for one of:

* a **class or factory** (a zero-argument callable, or ``"module:attribute"`` text naming
  one): every session that uses the name makes a backend of its own and shuts it down
  when it ends. The built-ins (:data:`~.base.BACKENDS`) are registered this way;
* an **instance**: shared by every session that uses the name; whoever registered it
  shuts it down.

Either kind may be one of our backends (``prepare``/``launch``/``request_stop``/
``shutdown``, see :mod:`.base`) or one written for numerous-sdk (an
:class:`~.execution.ExecutionBackend`, driven through
:class:`~.execution.ExecutionBackendDriver`).

Packages offer backends through the entry point group :data:`ENTRY_POINT_GROUP`; in a
``pyproject.toml``::

    [project.entry-points."numerous.tasks.backends"]
    mycluster = "mypackage.backend:MyClusterBackend"

Names are looked up in this order: registered (the built-ins first of all, so an entry
point cannot shadow ``local``), then entry points, read when a name is not registered.

Which name a session uses: ``Session(backend=...)``, else ``$NUMEROUS_TASK_BACKEND``,
else the one :func:`set_default_backend` chose, else ``local``.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from typing import Any, Dict, List, Optional

from ..exceptions import BackendError, UnknownBackendError
from .base import BACKEND_ENV, BACKENDS, Backend, Job
from .execution import ExecutionBackend, ExecutionBackendDriver

__all__ = [
    "ENTRY_POINT_GROUP",
    "backend_name",
    "create_backend",
    "get_backend",
    "known_backend_names",
    "register_backend",
    "set_default_backend",
]

#: The entry point group packages list their backends in (name = backend name, value =
#: ``"module:attribute"`` naming a class, a factory or an instance).
ENTRY_POINT_GROUP = "numerous.tasks.backends"

_lock = threading.RLock()
_registered: Dict[str, Any] = dict(BACKENDS)  # name -> class, factory, "module:attr" or instance
_shared: Dict[str, Any] = {}  # name -> the instance get_backend() made from a class or factory
_default: Optional[str] = None


def register_backend(name: str, backend: Any) -> None:
    """Make ``backend`` available as ``name`` (replacing what had that name).

    Args:
        name: what ``Session(backend=...)``, ``$NUMEROUS_TASK_BACKEND`` and
            :func:`get_backend` call it.
        backend: a class or zero-argument factory (a backend per session), or an instance
            (shared by every session), of one of our backends or an
            :class:`~.execution.ExecutionBackend`.

    Raises:
        TypeError: ``name`` is not a non-empty string, or ``backend`` is none of these.
    """
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"a backend name must be a non-empty str, not {name!r}")
    if not (_is_backend(backend) or callable(backend) or isinstance(backend, str)):
        raise TypeError(
            f"register_backend({name!r}, ...) takes a backend (an ExecutionBackend, or one with "
            f"prepare/launch/request_stop/shutdown), its class or a factory, not {type(backend).__name__}"
        )
    with _lock:
        _registered[name] = backend
        _shared.pop(name, None)


def get_backend(name: Optional[str] = None) -> Optional[ExecutionBackend]:
    """The backend called ``name``, or None if no backend has that name.

    ``None`` means the one sessions use by default (see the module docstring). For a name
    registered as a class or factory this is one instance made on first use and started
    (``startup()``) for your own ``execute()`` calls; each session still makes its own.

    Raises:
        BackendError: the backend could not be made (its module failed to import, ...).
    """
    if name is None:
        try:
            name = backend_name(None)
        except UnknownBackendError:
            return None
    with _lock:
        entry = _lookup(name)
        if entry is None:
            return None
        if _is_backend(entry):
            backend: ExecutionBackend = entry
            return backend
        shared = _shared.get(name)
        if shared is None:
            shared = _make(name, entry)
            shared.startup()
            _shared[name] = shared
        return shared  # type: ignore[no-any-return]


def set_default_backend(name: str) -> None:
    """Make ``name`` the backend sessions use when neither ``Session(backend=...)`` nor
    ``$NUMEROUS_TASK_BACKEND`` names one.

    Raises:
        UnknownBackendError: no backend has that name (it is a ``ValueError``).
    """
    global _default
    with _lock:
        if not _known(name):
            raise UnknownBackendError(_unknown(f"set_default_backend({name!r})"))
        _default = name


def backend_name(requested: Optional[str] = None) -> str:
    """The backend to use: ``requested``, else ``$NUMEROUS_TASK_BACKEND``, else the
    default (:func:`set_default_backend`, else ``local``).

    Raises:
        UnknownBackendError: no backend has that name.
    """
    source = "Session(backend=...)"
    name = requested
    if name is None:
        name, source = os.environ.get(BACKEND_ENV, "").strip(), BACKEND_ENV
        if not name:
            return _default or "local"
    with _lock:
        if not _known(name):
            raise UnknownBackendError(_unknown(f"{source}={name!r}"))
    return name


def create_backend(name: str) -> Backend:
    """The backend a new session uses for ``name`` (see :func:`backend_name`).

    Raises:
        UnknownBackendError: no backend has that name.
        BackendError: what the name stands for is not a backend.
    """
    with _lock:
        entry = _lookup(name)
    if entry is None:
        raise UnknownBackendError(_unknown(repr(name)))
    if _is_backend(entry):
        return _for_session(name, entry, owned=False)
    backend = _make(name, entry)
    if not _is_native(backend):
        backend.startup()
    return _for_session(name, backend, owned=True)


def known_backend_names() -> List[str]:
    """Every name a backend can be asked for: registered ones and entry points."""
    with _lock:
        names = set(_registered)
    try:
        names.update(_entry_points())
    except Exception:  # a broken installation must not hide the registered names
        pass
    return sorted(names)


# -- what a name stands for ------------------------------------------------------------------
def _lookup(name: str) -> Any:
    """What ``name`` stands for (a text reference loaded), or None. Call with the lock."""
    entry = _registered.get(name)
    if entry is None:
        point = _entry_points().get(name)
        if point is None:
            return None
        try:
            return point.load()
        except Exception as error:
            raise BackendError(
                f"the {name!r} backend's entry point ({point.value}) failed to load: {error!r}"
            ) from error
    if isinstance(entry, str):
        module_name, _, attribute = entry.partition(":")
        return getattr(importlib.import_module(module_name), attribute)
    return entry


def _known(name: str) -> bool:
    """Whether a backend has that name, without loading it. Call with the lock."""
    return name in _registered or name in _entry_points()


def _entry_points() -> Dict[str, Any]:
    """The installed packages' backends by name (read anew each time: cheap, and a
    package installed meanwhile counts)."""
    from importlib.metadata import entry_points

    if sys.version_info >= (3, 10):
        points = entry_points(group=ENTRY_POINT_GROUP)
    else:  # Python 3.9: a dict of groups
        points = entry_points().get(ENTRY_POINT_GROUP, ())
    return {point.name: point for point in points}


def _make(name: str, factory: Any) -> Any:
    backend = factory()
    if not _is_backend(backend):
        raise BackendError(f"the {name!r} backend's factory {factory!r} made {type(backend).__name__}, not a backend")
    return backend


def _is_native(backend: Any) -> bool:
    """One of our backends (see .base.Backend), not a class."""
    return not isinstance(backend, type) and all(
        callable(getattr(backend, method, None)) for method in ("prepare", "launch", "request_stop", "shutdown")
    )


def _is_backend(backend: Any) -> bool:
    """An instance of one of our backends or of numerous-sdk's ExecutionBackend."""
    if isinstance(backend, type):
        return False
    return _is_native(backend) or (
        callable(getattr(backend, "execute", None)) and callable(getattr(backend, "cancel_task_instance", None))
    )


def _for_session(name: str, backend: Any, owned: bool) -> Backend:
    if not _is_native(backend):
        return ExecutionBackendDriver(backend, owned)
    if owned:
        native: Backend = backend
        return native
    return _Borrowed(backend)


def _unknown(what: str) -> str:
    return f"{what} names no backend; valid backends: {', '.join(known_backend_names())}"


class _Borrowed:
    """A registered instance of one of our backends, as one session uses it: everything
    but ``shutdown``, which is its owner's."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self.pickles_calls = getattr(backend, "pickles_calls", True)

    def prepare(self, job: Job) -> None:
        """The backend's ``prepare``."""
        self._backend.prepare(job)

    def launch(self, job: Job) -> None:
        """The backend's ``launch``."""
        self._backend.launch(job)

    def request_stop(self, job: Job, grace: float) -> None:
        """The backend's ``request_stop``."""
        self._backend.request_stop(job, grace)

    def shutdown(self) -> None:
        """Nothing: whoever registered the backend shuts it down."""
