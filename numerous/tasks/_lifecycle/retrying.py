"""Whether a failed attempt of an instance is run again: the one rule, on every backend.

``@task(retries=N, retry_on=(...), retry_delay=s)`` (see :mod:`numerous.tasks._options`).
A backend calls :meth:`~numerous.tasks.backends.base.Job.finish` when an attempt ends;
before it settles the future, the job asks :func:`retry_error` here::

    attempt ends ── failed with an error of retry_on, attempts left, ──▶ "retrying":
                    not stopped, not timed out, not terminated           the session runs
                                                                         it again after
                  ── anything else ─────────────────────────────────▶    retry_delay, in a
                                                                         new process
                     settle the future (the last attempt's error)

A stopped instance (``stop()``, ``cancel()``, a session leaving by an exception) and a
timed-out one are never retried: their end was asked for. Only an error the task's own
run produced counts; what the future would be cancelled for never does.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple, Type

from ..exceptions import TaskTimeoutError
from .outcomes import Ending

__all__ = ["RetryPolicy", "retry_error"]


class RetryPolicy(NamedTuple):
    """A task's retry options, as a job carries them."""

    retries: int  # attempts after the first, at most
    retry_on: Tuple[Type[BaseException], ...]
    delay: float  # seconds between an attempt's end and the next one's launch


def retry_error(
    policy: Optional[RetryPolicy],
    attempt: int,
    ending: Optional[Ending],
    *,
    timed_out: bool,
    terminated: bool,
    stop_requested: bool,
) -> Optional[BaseException]:
    """The error to retry attempt ``attempt`` (1 for the first) for, or None to settle.

    Args:
        ending: how the attempt ended (None: it produced no ending, it was terminated).
        timed_out, terminated: what its stop ladder says.
        stop_requested: someone asked the instance to stop.
    """
    if policy is None or attempt > policy.retries or ending is None or ending.ok:
        return None
    if timed_out or terminated or stop_requested:
        return None
    error = ending.error
    # On Dask the timeout runs where the task runs: it arrives as the error itself.
    if error is None or isinstance(error, TaskTimeoutError) or not isinstance(error, policy.retry_on):
        return None
    return error
