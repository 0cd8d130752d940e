"""In the parent: an :class:`~.messages.Outcome`, or a death, becomes an :class:`Ending`.

An ending says what ``result()`` will give: the value (``ok``) or the exception to raise.
What the instance's stop ladder says (timed out, terminated) is applied on top of it by
:func:`~.ending.settle`.
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, NamedTuple, Optional, TypeVar, Union

from ..exceptions import TaskFailedError
from .messages import ERROR, IN_THE_TASK, LOADING, RESULT, ErrorInfo, Outcome
from .running import describe_error, trim_traceback

__all__ = ["Ending", "capture_by_reference", "decode", "decode_error", "failed", "returned"]

L = TypeVar("L")


class Ending(NamedTuple):
    """How an instance ended, before its stop ladder is taken into account."""

    ok: bool
    value: Any = None  # what it returned, when ok
    error: Optional[BaseException] = None  # what result() raises, when not ok


def returned(value: Any) -> Ending:
    """It returned ``value``."""
    return Ending(True, value)


def failed(error: BaseException) -> Ending:
    """It failed with ``error`` (raised, or died: a backend's own error for that)."""
    return Ending(False, error=error)


def decode(outcome: Outcome, description: str) -> Ending:
    """The ending an Outcome from the worker stands for (``description`` names the
    instance in error messages)."""
    if outcome.kind == RESULT:
        return _unpickled_result(outcome.body, description)
    if outcome.kind == ERROR:
        return failed(decode_error(outcome.body, description))
    raise ValueError(f"unknown outcome kind {outcome.kind!r}")


def _unpickled_result(body: Union[bytes, bytearray], description: str) -> Ending:
    try:
        return returned(pickle.loads(body))
    except BaseException as exc:
        reason = f"the result of {description} could not be unpickled in the parent"
        return failed(TaskFailedError(type(exc).__name__, str(exc), "", reason))


def decode_error(body: Union[bytes, bytearray], description: str) -> BaseException:
    """The exception ``result()`` raises for an ERROR outcome's body."""
    info: ErrorInfo = pickle.loads(body)
    reason = f"{description} raised it {info.phase}"
    exc: Optional[BaseException] = None
    if info.exception is not None:
        try:
            exc = pickle.loads(info.exception)
        except BaseException as load_exc:
            reason += f"; it could not be unpickled in the parent ({type(load_exc).__name__}: {load_exc})"
    else:
        reason += f"; it could not be pickled in the worker ({info.pickle_error})"
    return _error_for(exc, info, reason)


def capture_by_reference(load: Callable[[], L], run: Callable[[L], Any], description: str) -> Ending:
    """What :func:`~.running.capture` and :func:`decode` make of ``run(load())``, for a
    run in this very process that passes values by reference (the inline backend with
    pickling off): the value or the exception itself, shaped the same way."""
    try:
        loaded = load()
    except BaseException as exc:
        return failed(_shaped(exc, LOADING, description))
    try:
        return returned(run(loaded))
    except BaseException as exc:
        return failed(_shaped(exc, IN_THE_TASK, description))


def _shaped(exc: BaseException, phase: str, description: str) -> BaseException:
    trim_traceback(exc)
    return _error_for(exc, describe_error(exc, phase, pickled=False), f"{description} raised it {phase}")


def _error_for(exc: Optional[BaseException], info: ErrorInfo, reason: str) -> BaseException:
    """``exc`` as ``result()`` raises it: itself, wrapped when it happened outside the
    task's body, or the fallback when there is none (or it would end the caller)."""
    if exc is not None and info.phase != IN_THE_TASK:
        # An error outside the task's body (loading its arguments, pickling its result)
        # is wrapped, so that its message says where it happened; the original is the cause.
        wrapped = _fallback(info, reason)
        wrapped.__cause__ = exc
        return wrapped
    if exc is not None and not isinstance(exc, Exception):
        # SystemExit, KeyboardInterrupt, GeneratorExit: re-raising them in the parent
        # would exit or interrupt the caller's program. Report them instead.
        reason += "; it is reported as TaskFailedError rather than raised in the parent"
        exc = None
    return _fallback(info, reason) if exc is None else exc


def _fallback(info: ErrorInfo, reason: str) -> TaskFailedError:
    return TaskFailedError(info.type_name, info.message, info.traceback, reason)
