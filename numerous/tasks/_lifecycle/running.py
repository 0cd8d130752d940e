"""Where the task runs: load its call, run its body, capture what came of it.

The same code runs in a local worker process, in an inline runner thread and (through
the local backend) on a Dask worker. Everything a task returns or raises becomes an
:class:`~.messages.Outcome` — never an exception out of here, so a worker never dies of
a task's error (not even of an exception that cannot be pickled, or whose class refuses
to have its traceback set).
"""

from __future__ import annotations

import pickle
from typing import Any, Callable, Dict, Tuple, TypeVar

from .frames import is_library_file
from .messages import ERROR, IN_THE_TASK, LOADING, PICKLING_THE_RESULT, RESULT, ErrorInfo, Outcome

__all__ = ["capture", "dumps_result", "encode_error", "load_call", "safe_str", "trim_traceback"]

L = TypeVar("L")

_TRACEBACK_KEEP = 60  # frames kept at each end of a very deep traceback (a RecursionError's)

#: Tasks this process has loaded from a pickled reference (see :func:`load_call`), by
#: those bytes: a reused worker imports a task's module and finds the task once.
_loaded_tasks: Dict[bytes, Any] = {}
_MAX_LOADED_TASKS = 256

#: A loaded call: the task, its positional and its keyword arguments.
Call = Tuple[Any, Tuple[Any, ...], Dict[str, Any]]


def load_call(payload: bytes) -> Call:
    """Unpickle a call that ``numerous.tasks._pickling.dumps_call`` pickled.

    The task comes either as itself or, for an importable task, as the bytes of its
    pickled reference (``Task.pickled_reference()``), loaded once per process. Plain
    pickle: cloudpickle is imported only if the payload needs it (a function sent by
    value), which keeps a fresh worker's start short.
    """
    task, args, kwargs = pickle.loads(payload)
    if type(task) is bytes:
        reference = task
        task = _loaded_tasks.get(reference)
        if task is None or not task.travels_by_reference():  # a reloaded module holds a new one
            if len(_loaded_tasks) >= _MAX_LOADED_TASKS:
                _loaded_tasks.clear()
            task = _loaded_tasks[reference] = pickle.loads(reference)
    return task, args, kwargs


def capture(load: Callable[[], L], run: Callable[[L], Any]) -> Outcome:
    """``run(load())``, its value or exception as an Outcome, saying which step failed."""
    try:
        loaded = load()
    except BaseException as exc:
        return error_outcome(exc, LOADING)
    try:
        value = run(loaded)
    except BaseException as exc:
        return error_outcome(exc, IN_THE_TASK)
    try:
        return Outcome(RESULT, dumps_result(value))
    except BaseException as exc:
        return error_outcome(exc, PICKLING_THE_RESULT)


def error_outcome(exc: BaseException, phase: str) -> Outcome:
    """An ERROR outcome for ``exc``; the task ended normally if it is an ``Exception``."""
    return Outcome(ERROR, encode_error(exc, phase), isinstance(exc, Exception))


def dumps_result(value: Any) -> bytes:
    """Plain pickle when it can (most results), cloudpickle when it must (lambdas,
    classes that exist only by value)."""
    try:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        from .._pickling import dumps

        return dumps(value)


def trim_traceback(exc: BaseException) -> None:
    """Drop the library's own leading frames, and the middle of very deep tracebacks."""
    tb = exc.__traceback__
    while tb is not None and is_library_file(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    if tb is None:
        return
    exc.with_traceback(tb)  # C-level; `exc.__traceback__ = tb` calls __setattr__, which a frozen dataclass refuses
    entries = []
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if len(entries) > 2 * _TRACEBACK_KEEP:
        entries[_TRACEBACK_KEEP - 1].tb_next = entries[-_TRACEBACK_KEEP]


def safe_str(exc: BaseException) -> str:
    """``str(exc)``, or a placeholder if that raises."""
    try:
        return str(exc)
    except Exception:
        return f"<str() of the {type(exc).__name__} failed>"


def type_name(exc: BaseException) -> str:
    """``module.Qualname`` of the exception's class (builtins without the module)."""
    return f"{type(exc).__module__}.{type(exc).__qualname__}".replace("builtins.", "")


def encode_error(exc: BaseException, phase: str) -> bytes:
    """Describe ``exc`` for the parent as a pickled :class:`~.messages.ErrorInfo`."""
    trim_traceback(exc)
    info = describe_error(exc, phase)
    return pickle.dumps(info, protocol=pickle.HIGHEST_PROTOCOL)


def describe_error(exc: BaseException, phase: str, pickled: bool = True) -> ErrorInfo:
    """The exception itself if it pickles (with its frames; not tried unless ``pickled``),
    and always the fallback: its type name, message and formatted traceback."""
    import traceback

    try:
        formatted = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        formatted = "<the traceback could not be formatted>\n"
    body, problem = _pickled_with_frames(exc) if pickled else (None, None)
    return ErrorInfo(type_name(exc), safe_str(exc), formatted, phase, body, problem)


def _pickled_with_frames(exc: BaseException) -> Tuple[Any, Any]:
    try:
        from .._pickling import dumps_exception

        return dumps_exception(exc), None
    except BaseException as problem:
        return None, f"{type(problem).__name__}: {safe_str(problem)}"
