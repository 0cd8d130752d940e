"""cloudpickle, keeping source file names in code sent by value; exceptions with frames.

cloudpickle replaces the file name of every code object it pickles by value with
``"<dynamic-code>"`` (for deterministic payloads). Tracebacks from a worker would then
point at ``<dynamic-code>`` instead of the user's script. Our pickler keeps the real
name, so a failing task defined in ``__main__`` shows its own file and source lines.

:func:`dumps_exception` pickles an exception with its traceback (tblib) — also one whose
class blocks attribute assignment (a frozen dataclass, a ``__setattr__`` that raises),
which tblib and pickle would rebuild by assigning attributes: such an exception is
rebuilt here without calling its ``__setattr__``.
"""

from __future__ import annotations

import collections
import io
import pickle
import sys
import types
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Protocol, Set, Tuple, Type

import cloudpickle

__all__ = [
    "UnpicklablePart",
    "dumps",
    "dumps_call",
    "dumps_exception",
    "explain_unpicklable_function",
    "short_repr",
    "unpicklable_part",
]

_code_reduce: Callable[[types.CodeType], Tuple[Any, Tuple[Any, ...]]] = getattr(
    cloudpickle.cloudpickle, "_code_reduce", None
)  # type: ignore[assignment]
_PLACEHOLDER = "<dynamic-code>"


def _reduce_code_keeping_filename(code: types.CodeType) -> Tuple[Any, Tuple[Any, ...]]:
    constructor, args = _code_reduce(code)
    return constructor, tuple(code.co_filename if arg == _PLACEHOLDER else arg for arg in args)


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    if _code_reduce is not None:
        dispatch_table = collections.ChainMap(
            {types.CodeType: _reduce_code_keeping_filename}, cloudpickle.Pickler.dispatch_table
        )


def dumps(obj: Any) -> bytes:
    """Pickle ``obj`` like ``cloudpickle.dumps``, keeping code file names."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    return buffer.getvalue()


def dumps_exception(exc: BaseException) -> bytes:
    """Pickle ``exc`` with its traceback, cause and context (see the module docstring).

    Raises:
        Exception: whatever pickling it raised (an attribute that cannot be pickled).
    """
    from tblib import pickling_support

    pickling_support.install(exc)  # its class and those of its chain, and tracebacks
    blocked: Dict[type, Callable[[Any], Any]] = {
        cls: _reduce_without_setattr for cls in _classes_in_chain(exc) if _blocks_assignment(cls)
    }
    buffer = io.BytesIO()
    _ExceptionPickler(buffer, blocked).dump(exc)
    return buffer.getvalue()


class _ExceptionPickler(_Pickler):
    def __init__(self, file: io.BytesIO, reducers: Dict[type, Callable[[Any], Any]]) -> None:
        if reducers:  # read by the C pickler when it is initialised, so set before that
            self.dispatch_table = collections.ChainMap(reducers, _Pickler.dispatch_table)
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)


def _classes_in_chain(exc: BaseException) -> Set[Type[BaseException]]:
    seen: Set[int] = set()
    classes: Set[Type[BaseException]] = set()
    todo: List[Optional[BaseException]] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        classes.add(type(current))
        todo += [current.__cause__, current.__context__]
    return classes


_PLAIN_SETATTR = (object.__setattr__, BaseException.__setattr__)


def _blocks_assignment(cls: type) -> bool:
    """Whether the class has a ``__setattr__`` of its own (a frozen dataclass's, say)."""
    return getattr(cls, "__setattr__", object.__setattr__) not in _PLAIN_SETATTR


def _reduce_without_setattr(exc: BaseException) -> Tuple[Any, Tuple[Any, ...]]:
    state: Dict[str, Any] = dict(getattr(exc, "__dict__", {}))
    notes = state.pop("__notes__", None)
    return _rebuild_without_setattr, (
        type(exc),
        exc.args,
        state,
        exc.__cause__,
        exc.__context__,
        exc.__suppress_context__,
        exc.__traceback__,
        notes,
    )


def _rebuild_without_setattr(
    cls: Type[BaseException],
    args: Tuple[Any, ...],
    state: Dict[str, Any],
    cause: Optional[BaseException],
    context: Optional[BaseException],
    suppress_context: bool,
    tb: Any,
    notes: Optional[List[str]],
) -> BaseException:
    """Rebuild an exception without ``__init__`` or its class's ``__setattr__``."""
    exc = cls.__new__(cls, *args)
    assign = object.__setattr__
    assign(exc, "args", args)
    for name, value in state.items():
        assign(exc, name, value)
    assign(exc, "__cause__", cause)
    assign(exc, "__context__", context)
    assign(exc, "__suppress_context__", suppress_context)
    if notes is not None:
        assign(exc, "__notes__", notes)
    exc.with_traceback(tb)
    return exc


class UnpicklablePart(NamedTuple):
    """A value a function sent by value takes along that cannot be pickled."""

    label: str  #: "the global 'lock' (<unlocked _thread.lock object>)"
    via: Tuple[str, ...]  #: the helper functions it is reached through, outermost first
    error: str  #: "TypeError: cannot pickle '_thread.lock' object"


def unpicklable_part(function: Any) -> Optional[UnpicklablePart]:
    """What makes a function sent by value unpicklable: the first global it uses,
    variable it closes over or parameter default that ``dumps`` refuses, looking into the
    functions it uses that travel by value too; None if there is no such value."""
    return _unpicklable_part(function, set())


def _unpicklable_part(function: Any, seen: Set[int]) -> Optional[UnpicklablePart]:
    code = getattr(function, "__code__", None)
    if not isinstance(code, types.CodeType) or id(function) in seen:
        return None
    seen.add(id(function))
    for kind, name, value in _references(function, code):
        try:
            dumps(value)
        except Exception as exc:
            inner = _unpicklable_part(value, seen)
            if inner is not None:
                return inner._replace(via=(name, *inner.via))
            return UnpicklablePart(f"{kind} {name!r} ({short_repr(value)})", (), f"{type(exc).__name__}: {exc}")
    return None


def _references(function: Any, code: types.CodeType) -> Iterator[Tuple[str, str, Any]]:
    """(kind, name, value) of what cloudpickle sends along with ``function``."""
    namespace = getattr(function, "__globals__", {})
    for name in _global_names(code):
        if name in namespace:
            yield "the global", name, namespace[name]
    for name, cell in zip(code.co_freevars, getattr(function, "__closure__", None) or ()):
        try:
            yield "the variable", name, cell.cell_contents
        except ValueError:  # an empty cell: nothing is sent
            pass
    parameters = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    defaults = getattr(function, "__defaults__", None) or ()
    positional = parameters[: code.co_argcount]
    for name, value in zip(positional[len(positional) - len(defaults) :], defaults):
        yield "the default of parameter", name, value
    for name, value in (getattr(function, "__kwdefaults__", None) or {}).items():
        yield "the default of parameter", name, value


def _global_names(code: types.CodeType) -> List[str]:
    """Names ``code`` and the code nested in it may look up as globals, in order."""
    names = list(dict.fromkeys(code.co_names))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += [n for n in _global_names(const) if n not in names]
    return names


def short_repr(value: Any) -> str:
    """``repr(value)``, cut to 60 characters (or the type's name if repr fails)."""
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 60 else text[:57] + "..."


def explain_unpicklable_function(task_name: str, function: Any, reason: str) -> Tuple[str, str]:
    """``(subject, reason)`` for the error of a task whose function cannot be pickled:
    the global, variable or default it uses that cannot be, and how to fix that."""
    part = unpicklable_part(function)
    if part is None:
        return f"the task function of task {task_name!r}", reason
    through = f" (through {', '.join(map(repr, part.via))})" if part.via else ""
    module = getattr(function, "__module__", None)
    where = "it is defined in __main__" if module == "__main__" else "it cannot be imported by its name"
    return (
        f"{part.label}, which task {task_name!r} uses{through},",
        f"{part.error}. The task's function is sent to the worker by value ({where}), with "
        "the globals and variables it uses: create such an object inside the task, pass what "
        "it needs as an argument, or define the task at the top level of a module the worker "
        "can import.",
    )


class CalledTask(Protocol):
    """What :func:`dumps_call` reads of a task (a :class:`~numerous.tasks.Task`)."""

    @property
    def name(self) -> str:
        """The task's name, for the error."""

    @property
    def function(self) -> Callable[..., Any]:
        """The task's function, for the error."""

    def pickled_reference(self) -> Optional[bytes]:
        """The task pickled by reference once, or None if it travels by value."""


def _dumps_with_plain_pickle(obj: Any) -> Optional[bytes]:
    """``obj`` pickled by the standard pickler, or None where cloudpickle must do it.

    The standard (C) pickler costs a fifth of cloudpickle's for a typical call, and for
    what it can pickle by reference it writes the same thing. cloudpickle pickles the
    call when the standard pickler fails (lambdas, closures, local classes), when a
    function or class in it would travel by reference to ``__main__`` or to a module not
    imported (your script is not re-imported in the worker: those travel by value;
    :class:`_ByReferencePickler` refuses them as it meets them, so a large argument is
    never pickled twice or searched), and whenever a module is registered with
    ``cloudpickle.register_pickle_by_value``.
    """
    if _BY_VALUE_MODULES is None or _BY_VALUE_MODULES:
        return None
    buffer = io.BytesIO()
    try:
        _ByReferencePickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
    except Exception:  # _TravelsByValue, or anything the standard pickler cannot do
        return None
    return buffer.getvalue()


class _TravelsByValue(Exception):
    """A function or class that cloudpickle would pickle by value was met."""


class _ByReferencePickler(pickle.Pickler):
    """The standard pickler, refusing functions and classes that must travel by value.

    ``reducer_override`` is called only for objects other than the built-in atoms and
    containers (ints, strings, bytes, tuples, lists, dicts, sets): for a call, a few
    times, not once per item of a large argument.
    """

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, (types.FunctionType, type)):
            module = getattr(obj, "__module__", None)
            if module is None or module == "__main__" or module not in sys.modules:
                raise _TravelsByValue(obj)
        return NotImplemented


#: cloudpickle's modules registered for pickling by value (None: not found in this
#: cloudpickle version, and then the standard pickler is never used for calls).
_BY_VALUE_MODULES: Optional[Any] = getattr(cloudpickle.cloudpickle, "_PICKLE_BY_VALUE_MODULES", None)


#: Types the standard pickler writes as themselves, with no reducer: a call whose arguments
#: are only these holds no function or class that would have to travel by value.
_ATOMS = frozenset((int, float, str, bytes, bool, type(None)))


def dumps_call(task: CalledTask, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> bytes:
    """Pickle what a worker needs to run ``task(*args, **kwargs)``
    (``numerous.tasks._lifecycle.running.load_call`` reads it back).

    An importable task travels as its pickled reference, made once
    (``task.pickled_reference()``), so a call pays only for its arguments; arguments that
    are all numbers, strings, bytes, bools or None go through the standard pickler as they
    are.

    Raises:
        TypeError: something cannot be pickled; the message names the argument, or the
            global the task's function uses, that fails, and why.
    """
    reference = task.pickled_reference() if _BY_VALUE_MODULES is not None and not _BY_VALUE_MODULES else None
    call: Tuple[Any, Tuple[Any, ...], Dict[str, Any]] = (task if reference is None else reference, args, kwargs)
    if reference is not None and _ATOMS.issuperset(map(type, args)) and _ATOMS.issuperset(map(type, kwargs.values())):
        return pickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL)  # nothing in it can travel by value
    fast = _dumps_with_plain_pickle(call)
    if fast is not None:
        return fast
    try:
        return dumps(call)
    except Exception as exc:
        parts: List[Tuple[str, Any]] = [("the task function", task)]
        parts += [(f"positional argument {i} ({short_repr(v)})", v) for i, v in enumerate(args)]
        parts += [(f"keyword argument {k!r} ({short_repr(v)})", v) for k, v in kwargs.items()]
        culprit = "an argument"
        for label, value in parts:
            try:
                dumps(value)
            except Exception:
                culprit = label
                break
        subject, reason = f"{culprit} of task {task.name!r}", f"{type(exc).__name__}: {exc}"
        if culprit == "the task function":  # name the global (or variable) it uses that fails
            subject, reason = explain_unpicklable_function(task.name, task.function, reason)
        raise TypeError(f"{subject} cannot be pickled to send it to the worker process: {reason}") from exc
