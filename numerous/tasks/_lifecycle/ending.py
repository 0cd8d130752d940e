"""Settling an instance's future from how it ended and what its stop ladder says."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ..exceptions import TaskTimeoutError
from .outcomes import Ending

if TYPE_CHECKING:
    from ..future import Future

__all__ = ["settle"]


def settle(
    future: Future[Any],
    ending: Optional[Ending],
    *,
    description: str,
    timeout: Optional[float],
    timed_out: bool,
    terminated: bool,
) -> None:
    """Give ``future`` its one final state.

    Args:
        ending: how it ended (None: it never produced one, which only a termination
            explains: its future ends cancelled).
        timed_out: its timeout passed (it was asked to stop for it).
        terminated: it was terminated for not stopping. Once that was done, the outcome
            is "cancelled" whatever it reported (a SIGTERM handler's ``SystemExit``, say),
            or a timeout error if the timeout caused it.
    """
    if timed_out and (terminated or (ending is not None and ending.ok)):
        assert timeout is not None
        future.set_error(TaskTimeoutError(description, timeout, terminated))
    elif terminated or ending is None:
        future.set_cancelled()
    elif ending.ok:
        future.set_result(ending.value)
    else:
        assert ending.error is not None
        future.set_error(ending.error)
