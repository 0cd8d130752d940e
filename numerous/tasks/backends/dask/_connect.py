"""Where the cluster is, and the session's client of it.

The scheduler's address comes from ``NUMEROUS_DASK_ADDRESS`` (``tcp://host:8786``, or
any address Dask's ``Client`` takes: one printed by ``dask scheduler``, by a
dask-jobqueue or dask-kubernetes cluster's ``scheduler_address``...).
"""

from __future__ import annotations

import os
from typing import Any

from ._errors import DaskUnavailableError

__all__ = ["ADDRESS_ENV", "CONNECT_TIMEOUT_ENV", "DEFAULT_CONNECT_TIMEOUT", "connect"]

ADDRESS_ENV = "NUMEROUS_DASK_ADDRESS"
CONNECT_TIMEOUT_ENV = "NUMEROUS_DASK_CONNECT_TIMEOUT"
#: Seconds to wait for the scheduler: long enough for a scheduler on another host or
#: one that is just starting, short enough that a wrong address fails while you watch.
DEFAULT_CONNECT_TIMEOUT = 10.0


def _timeout() -> float:
    text = os.environ.get(CONNECT_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_CONNECT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise DaskUnavailableError(f"{CONNECT_TIMEOUT_ENV}={text!r} must be a number of seconds > 0")
    return value


def connect() -> Any:
    """A new ``distributed.Client`` of the scheduler named by ``NUMEROUS_DASK_ADDRESS``.

    Raises:
        DaskUnavailableError: the variable is unset, ``distributed`` is missing, or the
            scheduler cannot be reached in time; the message names the variable.
    """
    address = os.environ.get(ADDRESS_ENV, "").strip()
    if not address:
        raise DaskUnavailableError(
            f"the dask backend needs the Dask scheduler's address in {ADDRESS_ENV} "
            f"(for example {ADDRESS_ENV}=tcp://10.0.0.5:8786); it is not set"
        )
    timeout = _timeout()
    try:
        import distributed
    except ImportError as exc:
        raise DaskUnavailableError(
            f"the dask backend needs dask.distributed: install numerous-tasks with its dask extra "
            f"(pip install '.[dask]' in a checkout) ({exc})"
        ) from exc
    client_class: Any = distributed.Client
    try:
        return client_class(address, timeout=timeout, set_as_default=False)
    except Exception as exc:
        _release_failed_client(exc, client_class)
        raise DaskUnavailableError(
            f"cannot reach the Dask scheduler at {ADDRESS_ENV}={address!r} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}); start one (dask scheduler) or fix {ADDRESS_ENV}"
        ) from exc


def _release_failed_client(exc: BaseException, client_class: Any) -> None:
    """Stop the event loop thread of a ``Client`` whose constructor raised.

    ``distributed`` leaves it running (a thread and three descriptors) when the first
    connection fails; the half-made client is found in the traceback's frames.
    """
    tb = exc.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, client_class):
            runner = getattr(candidate, "_loop_runner", None)
            try:
                candidate.close()
                if runner is not None:
                    runner.stop()
            except Exception:
                pass
            return
        tb = tb.tb_next
