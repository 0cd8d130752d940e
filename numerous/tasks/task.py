"""``@task``, :class:`Task` (a task definition) and :class:`TaskInstance` (one run of it).

Typing: ``@task`` keeps the decorated function's signature for type checkers. A function
``f(tc: TaskControl, n: int) -> str`` becomes a ``Task[(n: int), str]``: calling it,
``instance().start(...)`` and the future's ``result()`` are all checked against ``(n: int)``
and ``str``. Type checkers can only drop the TaskControl parameter when it is the *first*
one (the common case, and the one to use in typed code); at run time a TaskControl
parameter is found anywhere by its annotation. A function without annotations is
``Any``-typed: its first parameter is taken to be the TaskControl, which holds for the
``tc`` naming convention.

The options (``max_parallel``, ``size``, ``name``, ``timeout``, ``fresh_process``,
``capture_output``, ``retries``, ``retry_on``, ``retry_delay``) are one frozen :class:`TaskOptions` (``task.options``), checked when
the task is made; see :mod:`numerous.tasks._options`.

numerous-sdk's spellings work too: ``Task(func, TaskConfig(...), expects_task_control)``,
``task.config``, ``task.expects_task_control``, ``task.definition_name``, and on an
instance ``task_definition``, ``task_definition_name``, ``task_control``, ``is_running``
and the blocking ``result`` property. ``TaskConfig`` is importable from here (it lives in
``numerous.tasks._sdk_compat``, imported on first use).

Where this module stands: :class:`Task` and :class:`TaskInstance` name each other
(``task.instance()`` returns one, ``instance.task_definition`` is the other), so they
share it. The session lists instances (``session.tasks``), so :mod:`numerous.tasks.session`
imports this module, never the other way round: an instance reaches its session as an
:class:`~numerous.tasks._current.InstanceHost`, found by ``task.instance()`` in
:mod:`numerous.tasks._current`::

    Task ── instance() ──▶ TaskInstance ── start()/stop() ──▶ its session (InstanceHost)
     │                                                          ▲
     └── map() ──▶ numerous.tasks.maps ── chunks: task.instance() ┘
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sys
import threading
import typing
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    Generic,
    Iterable,
    Literal,
    Optional,
    Tuple,
    TypeVar,
    Union,
    overload,
)

from ._current import InstanceHost, InstanceRecord, open_host
from ._ids import random_hex
from ._map_chunk import MapChunk
from ._options import SIZES, TaskOptions, TaskOptionsArgs, check_timeout
from .control import HandlerSink, TaskControl, handler_task_control
from .exceptions import TaskError

if sys.version_info >= (3, 10):
    from typing import Concatenate, ParamSpec
else:  # Python 3.9
    from typing_extensions import Concatenate, ParamSpec

if TYPE_CHECKING:  # imported where used: a worker importing a task module needs none
    if sys.version_info >= (3, 11):
        from typing import Unpack
    else:
        from typing_extensions import Unpack

    from ._sdk_compat import TaskConfig
    from .future import Future
    from .maps import TaskMap
    from .timing import InstanceTimes

__all__ = ["SIZES", "Task", "TaskConfig", "TaskInstance", "TaskOptions", "task"]

#: The parameters callers pass (without the TaskControl) and the function's return type.
P = ParamSpec("P")
R = TypeVar("R")

#: Makes "is this instance started already?" and "it is now" one step (held for that only:
#: start() itself runs outside it, so a handler may start other instances).
_START_LOCK = threading.Lock()
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def _positional_counts(signature: inspect.Signature, control: Optional[_ControlParameter]) -> Optional[Tuple[int, int]]:
    """How few and how many positional arguments a caller may pass, when that alone
    says whether a call fits (every parameter but the control positional, the control
    first if there is one); None otherwise (``inspect.Signature.bind`` decides)."""
    parameters = list(signature.parameters.values())
    if control is not None:
        if not control.positional or control.position != 0:
            return None
        parameters = parameters[1:]
    plain = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(p.kind not in plain for p in parameters):
        return None
    required = sum(1 for p in parameters if p.default is inspect.Parameter.empty)
    return required, len(parameters)


class _ControlParameter(typing.NamedTuple):
    name: str
    position: int  # its index among the parameters
    positional: bool  # False: it is passed by keyword


def _is_task_control(annotation: Any) -> bool:
    """Whether an annotation says TaskControl: itself, Optional/Union/``| None`` of it,
    or such an annotation as text that could not be evaluated."""
    if annotation is TaskControl:
        return True
    if isinstance(annotation, str):
        text = annotation.replace(" ", "")
        outer_ok = "|" in text or text.split("[", 1)[0] in _OPTIONAL_SPELLINGS or "[" not in text
        tokens = re.split(r"[\[\],|]", text)
        return outer_ok and any(t == "TaskControl" or t.endswith(".TaskControl") for t in tokens)
    return any(arg is TaskControl for arg in typing.get_args(annotation))


_OPTIONAL_SPELLINGS = {"Optional", "typing.Optional", "Union", "typing.Union"}


def _resolved_annotation(function: Callable[..., Any], parameter: Any, hints: Dict[str, Any]) -> Any:
    """The parameter's annotation, evaluated where it is a string that can be."""
    if parameter.name in hints:
        return hints[parameter.name]
    annotation = parameter.annotation
    if isinstance(annotation, str):
        try:  # one parameter at a time: another's unresolvable name must not matter
            return eval(annotation, dict(getattr(function, "__globals__", {})))
        except Exception:
            return annotation
    return annotation


def _find_control_parameter(function: Callable[..., Any]) -> Optional[_ControlParameter]:
    """The parameter that receives a TaskControl: annotated with it, or a first ``tc``."""
    parameters = list(inspect.signature(function).parameters.values())
    try:  # resolves string annotations (``from __future__ import annotations``)
        hints = typing.get_type_hints(function)
    except Exception:  # one unresolvable annotation: fall back to each on its own
        hints = {}
    chosen = None
    for index, parameter in enumerate(parameters):
        if _is_task_control(_resolved_annotation(function, parameter, hints)):
            chosen = index, parameter
            break
    else:
        if parameters and parameters[0].name == "tc" and parameters[0].kind in _POSITIONAL:
            chosen = 0, parameters[0]
    if chosen is None:
        return None
    index, parameter = chosen
    return _control_parameter_at(index, parameter)


def _first_parameter_for_control(function: Callable[..., Any]) -> _ControlParameter:
    """The parameter numerous-sdk gives the TaskControl: the first, or the second after
    ``self``/``cls`` (for ``expects_task_control=True``).

    Raises:
        TypeError: the function has no parameter that can take it positionally.
    """
    parameters = list(inspect.signature(function).parameters.values())
    index = 1 if parameters and parameters[0].name in ("self", "cls") else 0
    if index < len(parameters) and parameters[index].kind == inspect.Parameter.VAR_POSITIONAL:
        return _ControlParameter(parameters[index].name, index, positional=True)
    if index >= len(parameters) or parameters[index].kind not in _POSITIONAL:
        raise TypeError(
            f"expects_task_control=True, but {getattr(function, '__name__', function)!r} has no first "
            "positional parameter to take the TaskControl"
        )
    return _control_parameter_at(index, parameters[index])


def _control_parameter_at(index: int, parameter: inspect.Parameter) -> _ControlParameter:
    return _ControlParameter(parameter.name, index, positional=parameter.kind in _POSITIONAL)


class Task(Generic[P, R]):
    """A function made into a task by ``@task``.

    Calling it runs the function here and now; :meth:`instance` makes an instance to
    run in the current :class:`~numerous.tasks.Session`. ``P`` are the parameters callers
    pass (the function's, less a first TaskControl parameter) and ``R`` its return type.
    """

    # Copied from the function by functools.update_wrapper, like ``__doc__``.
    __name__: str
    __wrapped__: Callable[..., Any]

    @overload
    def __init__(
        self: Task[P, R],
        function: Callable[Concatenate[TaskControl, P], R],
        config: Union[TaskOptions, TaskConfig, None] = None,
        expects_task_control: Optional[bool] = None,
        **options: Unpack[TaskOptionsArgs],
    ) -> None: ...

    @overload
    def __init__(
        self: Task[P, R],
        function: Callable[P, R],
        config: Union[TaskOptions, TaskConfig, None] = None,
        expects_task_control: Optional[bool] = None,
        **options: Unpack[TaskOptionsArgs],
    ) -> None: ...

    def __init__(
        self,
        function: Callable[..., R],
        config: Union[TaskOptions, TaskConfig, None] = None,
        expects_task_control: Optional[bool] = None,
        **options: Unpack[TaskOptionsArgs],
    ) -> None:
        """Make ``function`` a task; :func:`task` describes the keyword options.

        Args:
            config: the options as a :class:`TaskOptions` (instead of keywords), or
                numerous-sdk's ``TaskConfig`` (its ``max_parallel``, ``size`` and ``name``).
            expects_task_control: None (the default) finds the TaskControl parameter
                by its annotation (or a first ``tc``); True gives it to the first
                parameter (the second after ``self``/``cls``); False to none.

        Raises:
            TypeError, ValueError: an option has the wrong type or value.
        """
        if not callable(function):
            raise TypeError(f"@task decorates a function, not {type(function).__name__}")
        unchecked = _given_options(config, options)
        if expects_task_control is not None and not isinstance(expects_task_control, bool):
            raise TypeError(f"expects_task_control must be True, False or None, not {expects_task_control!r}")
        #: The task's options, checked (:class:`~numerous.tasks.task.TaskOptions`; ``name`` None: the function's).
        self.options = unchecked.checked()
        self._name = self.options.name or getattr(function, "__name__", None) or type(function).__name__
        self._expects_task_control = expects_task_control
        self.function: Callable[..., R] = function
        if expects_task_control is None:
            self._control_parameter = _find_control_parameter(function)
        elif expects_task_control:
            self._control_parameter = _find_control_parameter(function) or _first_parameter_for_control(function)
        else:
            self._control_parameter = None
        self._signature = inspect.signature(function)
        self._positional_counts = _positional_counts(self._signature, self._control_parameter)
        functools.update_wrapper(self, function)

    # -- the options ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """The task's name, from ``@task(name=...)``, else the function's."""
        return self._name

    @property
    def max_parallel(self) -> int:
        """How many instances may run at once in one session."""
        return self.options.max_parallel

    @property
    def size(self) -> str:
        """The resource hint, one of ``"small"``, ``"medium"`` and ``"large"``."""
        return self.options.size

    @property
    def timeout(self) -> Optional[float]:
        """How many seconds an instance may run, or None for no limit."""
        return self.options.timeout

    @property
    def fresh_process(self) -> bool:
        """Whether every instance gets a new process of its own."""
        return self.options.fresh_process

    @property
    def capture_output(self) -> bool:
        """Whether what the task prints is logged instead of reaching the terminal."""
        return self.options.capture_output

    @property
    def takes_control(self) -> bool:
        """Whether the function declares a TaskControl parameter."""
        return self._control_parameter is not None

    # -- numerous-sdk's names ---------------------------------------------------------------
    @property
    def expects_task_control(self) -> bool:
        """Whether the function is given a TaskControl (numerous-sdk's ``takes_control``)."""
        return self._control_parameter is not None

    @property
    def definition_name(self) -> str:
        """The task's name (numerous-sdk's name for ``name``)."""
        return self.name

    @property
    def config(self) -> TaskConfig:
        """The task's ``max_parallel``, ``size`` and given ``name`` (None when the name is
        the function's), as a :class:`~numerous.tasks.TaskConfig`. A description: changing
        it does not change the task."""
        from ._sdk_compat import TaskConfig

        return TaskConfig(max_parallel=self.max_parallel, size=self.size, name=self.options.name)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function in this process and return its value (no session needed).

        A TaskControl parameter gets a control whose calls go to the installed handler
        and whose ``should_stop`` is always False.
        """
        if self._control_parameter is None:
            return self.function(*args, **kwargs)
        control, _ = handler_task_control(self.name, "direct", process_id=os.getpid())
        return self.call_with_control(control, args, kwargs)

    def bind_arguments(
        self, control: TaskControl, args: Tuple[Any, ...], kwargs: Dict[str, Any]
    ) -> Tuple[Tuple[Any, ...], Dict[str, Any]]:
        """Insert ``control`` where the function expects its TaskControl."""
        parameter = self._control_parameter
        if parameter is None:
            return args, kwargs
        if parameter.positional and len(args) >= parameter.position:
            return args[: parameter.position] + (control,) + args[parameter.position :], kwargs
        return args, {**kwargs, parameter.name: control}

    def call_with_control(self, control: TaskControl, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> R:
        """Call the function with ``control`` injected (used by backends).

        An instance started by :meth:`map` has one argument, a chunk of the map's items:
        the function is then called once per item (see ``numerous.tasks._map_chunk``).
        """
        if len(args) == 1 and type(args[0]) is MapChunk:
            return args[0].run(self, control)  # type: ignore[return-value]
        args, kwargs = self.bind_arguments(control, args, kwargs)
        return self.function(*args, **kwargs)

    def check_arguments(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> None:
        """Raise TypeError here, in the caller, if the function cannot take these arguments."""
        if len(args) == 1 and type(args[0]) is MapChunk:  # a chunk of map(): its first item
            return args[0].check(self)
        counts = self._positional_counts
        if counts is not None and not kwargs and counts[0] <= len(args) <= counts[1]:
            return  # positional arguments only, as many as the function takes: they fit
        placeholder = TaskControl("check", self.name, sink=_NoSink())
        full_args, full_kwargs = self.bind_arguments(placeholder, args, kwargs)
        try:
            self._signature.bind(*full_args, **full_kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.name!r} cannot be started with these arguments: {exc}") from None

    def instance(
        self, *, queue: bool = True, timeout: Optional[float] = None, fresh_process: Optional[bool] = None
    ) -> TaskInstance[P, R]:
        """Make an instance of this task in the current session.

        Args:
            queue: when every ``max_parallel`` slot is taken, ``start()`` queues the
                instance as ``"pending"`` (the default) or, with ``queue=False``, raises
                :class:`~numerous.tasks.MaxInstancesReachedError`.
            timeout: seconds this instance may run (default: the task's ``timeout``).
                Past it the task is asked to stop, then terminated like ``stop()``, and
                its future fails with :class:`~numerous.tasks.TaskTimeoutError`.
            fresh_process: run in a new process that no other instance ran in or will
                run in (default: the task's ``fresh_process``, normally False: a clean
                idle worker of the session may be reused).

        Raises:
            SessionNotFoundError: no session is open (use ``with Session():``).
            UnknownBackendError: ``NUMEROUS_TASK_BACKEND`` names no backend.
        """
        return TaskInstance(
            self,
            open_host(),
            queue=queue,
            timeout=self.timeout if timeout is None else check_timeout(timeout),
            fresh_process=self.fresh_process if fresh_process is None else bool(fresh_process),
        )

    @overload
    def map(
        self,
        *iterables: Iterable[Any],
        chunksize: int = 1,
        ordered: bool = True,
        errors: Literal["raise"] = "raise",
    ) -> TaskMap[R]: ...

    @overload
    def map(
        self, *iterables: Iterable[Any], chunksize: int = 1, ordered: bool = True, errors: Literal["return"]
    ) -> TaskMap[Union[R, Exception]]: ...

    def map(
        self, *iterables: Iterable[Any], chunksize: int = 1, ordered: bool = True, errors: str = "raise"
    ) -> TaskMap[Any]:
        """Run the task on every item of ``iterables`` in the current session, like the
        builtin ``map`` and ``Executor.map``; iterate the result for the values.

        Items go in chunks of ``chunksize``: one chunk is one instance of the task (it
        takes one of the task's ``max_parallel`` slots, and the task's ``timeout``
        applies to it), whose worker calls the function on each of the chunk's items in
        turn. The work starts at once and goes on whether or not you iterate; the input
        is read as chunks are started, at most ``2 * max_parallel`` chunks ahead of the
        work. :class:`~numerous.tasks.TaskMap` says how stopping, breaking out of the
        loop and errors work.

        Args:
            *iterables: one iterable per parameter of the function (not counting its
                TaskControl); with several, items are taken from each in step and the
                shortest ends the map, as with the builtin ``map``.
            chunksize: items per instance (an int >= 1). Each instance costs about
                0.2 ms of overhead: for items that take microseconds, use hundreds or
                thousands.
            ordered: yield the values in input order (True, the default), or as chunks
                finish (False; within a chunk, in input order).
            errors: ``"raise"`` (the default) fails fast: the first exception stops the
                whole map and iterating raises it. ``"return"`` runs every item and yields
                an item's exception in place of its value, like ``asyncio.gather(...,
                return_exceptions=True)``.

        Raises:
            SessionNotFoundError: no session is open.
            TypeError: no iterable, one that is not iterable, a ``chunksize``,
                ``ordered`` or ``errors`` of the wrong type, or a first item that does
                not fit the function or cannot be pickled.
            ValueError: ``chunksize`` below 1, or ``errors`` neither "raise" nor "return".
        """
        from .maps import start_map

        return start_map(self, iterables, chunksize=chunksize, ordered=ordered, errors=errors)

    def __reduce__(self) -> Any:
        # By reference when importable under its own name (the worker imports it),
        # otherwise by value: functions from __main__, notebooks and closures.
        if self.travels_by_reference():
            return _import_task, (sys.modules[self.function.__module__].__name__, self.function.__qualname__)
        return Task, (self.function, self.options, self._expects_task_control)

    def travels_by_reference(self) -> bool:
        """Whether a worker finds this task by its module and name: the module named by
        the function's ``__module__`` is imported, is not ``__main__``, and holds this very
        task under the function's ``__qualname__`` (after a reload it holds a new one)."""
        target: Any = sys.modules.get(getattr(self.function, "__module__", "") or "")
        if target is None or target.__name__ == "__main__":
            return False
        for part in getattr(self.function, "__qualname__", "").split("."):
            target = getattr(target, part, None)
        return target is self

    def pickled_reference(self) -> Optional[bytes]:
        """This task pickled by reference (its module and name, which a worker imports),
        or None when it travels by value (see :meth:`travels_by_reference`). Made once,
        and used while it still travels by reference: a session pickles only the
        arguments of each call of an importable task."""
        if not self.travels_by_reference():
            return None
        cached: Optional[bytes] = self.__dict__.get("_pickled_reference")
        if cached is None:
            import pickle

            cached = self.__dict__["_pickled_reference"] = pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL)
        return cached

    def __repr__(self) -> str:
        return f"<Task {self.name!r} max_parallel={self.max_parallel} size={self.size!r}>"


class _NoSink:
    process_id = None

    def should_stop(self) -> bool:
        return False

    def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
        pass

    def update_progress(self, progress: float, status: Optional[str]) -> None:
        pass

    def update_status(self, status: str) -> None:
        pass

    def request_stop(self) -> None:
        pass


def _import_task(module_name: str, qualname: str) -> Task[..., Any]:
    import importlib

    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    return target  # type: ignore[no-any-return]


def _given_options(config: Union[TaskOptions, TaskConfig, None], options: TaskOptionsArgs) -> TaskOptions:
    """The options ``Task(function, config, **options)`` was given, not checked yet.

    Raises:
        TypeError: ``config`` is neither a TaskOptions nor a TaskConfig, or it was given
            together with keywords that it holds.
    """
    if config is None:
        return TaskOptions(**options)
    if isinstance(config, TaskOptions):
        if options:
            raise TypeError("give a task's options either as a TaskOptions or as keywords, not both")
        return config
    from ._sdk_compat import options_from_config

    return options_from_config(config, options)


class TaskInstance(Generic[P, R]):
    """One run of a task in a session: ``start()`` it once, ``stop()`` it any time.

    Typed like its task: ``start()`` takes the task's parameters ``P`` and returns a
    ``Future[R]``. It is a handle: its session (``instance.session``) does the work of
    ``start()`` and ``stop()``, and records the started instance (``instance.job``).
    """

    def __init__(
        self,
        task: Task[P, R],
        session: InstanceHost[TaskInstance[Any, Any]],
        *,
        queue: bool = True,
        timeout: Optional[float] = None,
        fresh_process: bool = False,
    ) -> None:
        self.task = task
        #: The session it belongs to (a :class:`~numerous.tasks.Session`), which does the
        #: work of ``start()`` and ``stop()``.
        self.session = session
        self.queue = queue
        self.timeout = timeout
        self.fresh_process = fresh_process
        self.id = random_hex(6)  # unique enough within a process, and short to show
        self._future: Optional[Future[R]] = None
        self.job: Optional[InstanceRecord] = None  # the session's record, once started
        self._starting = False  # start() is under way or done (see _START_LOCK)
        self._control_sink: HandlerSink  # the session binds its stop flag in start()
        #: The TaskControl handlers are given for this instance; its ``progress`` and
        #: ``status`` are the latest the task reported, ``request_stop()`` stops it.
        self.task_control, self._control_sink = handler_task_control(task.name, self.id)
        session.adopt(self)

    @property
    def future(self) -> Optional[Future[R]]:
        """The future returned by ``start()``, or None before it."""
        return self._future

    @property
    def status(self) -> str:
        """The future's status; ``"pending"`` before ``start()`` too, as in numerous-sdk
        (``instance.future is None`` tells an instance not started yet)."""
        return "pending" if self._future is None else self._future.status

    @property
    def times(self) -> InstanceTimes:
        """When it was started, began running, was asked to stop and finished
        (``time.monotonic_ns()`` readings; all None before ``start()``)."""
        job = self.job
        if job is not None:
            return job.times
        from .timing import InstanceTimes

        return InstanceTimes()

    def start(self, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Start the instance with these arguments and return its future.

        Raises:
            TaskError: the instance was already started.
            TypeError: the arguments do not fit the function, or one cannot be pickled.
            MaxInstancesReachedError: no free slot and the instance was made with
                ``queue=False``.
        """
        with _START_LOCK:
            if self._starting:
                raise TaskError(
                    f"instance {self.id} of task {self.task.name!r} was already started; "
                    "make another with task.instance()"
                )
            self._starting = True
        try:
            self.task.check_arguments(args, kwargs)
            future: Future[R] = self.session.start_instance(self, args, kwargs)
        except BaseException:
            self._starting = False  # it did not start: it may be started again
            raise
        self._future = future
        if self._control_sink.stop_requested_here:  # task_control.request_stop() came first
            self.stop()
        return future

    def stop(self, timeout: Optional[float] = None) -> None:
        """Ask the task to stop: ``tc.should_stop`` becomes True.

        A pending instance is cancelled at once (it never runs). A running task that has
        not returned within ``timeout`` seconds (default
        :data:`numerous.tasks.session.DEFAULT_STOP_GRACE`) is terminated with its whole
        process tree, and its future ends ``"cancelled"``. Stopping a finished or
        never-started instance does nothing.
        """
        if self._future is not None:
            self.session.stop_instance(self, timeout)

    async def stop_async(self, timeout: Optional[float] = None) -> str:
        """``await instance.stop_async()``: :meth:`stop`, then wait until the instance has
        ended — suspending the coroutine, never the event loop — and return its final status.

        That is ``"completed"`` when the task saw ``tc.should_stop`` and returned (its value
        is ``future.result()``), ``"cancelled"`` when it was still pending or had to be
        terminated after ``timeout`` seconds (as for :meth:`stop`), ``"failed"`` when it
        raised. Nothing is raised for any of them. Cancelling the awaiting asyncio task
        only stops the waiting: the stop request stands. A never-started instance is left
        alone (``"pending"``).
        """
        self.stop(timeout)
        future = self._future
        if future is None:
            return self.status
        await future._finished_in_loop()
        return future.status

    # -- numerous-sdk's names ---------------------------------------------------------------
    @property
    def task_definition(self) -> Task[P, R]:
        """The task this is an instance of (numerous-sdk's name for ``task``)."""
        return self.task

    @property
    def task_definition_name(self) -> str:
        """The task's name."""
        return self.task.name

    @property
    def is_running(self) -> bool:
        """True from ``start()`` until the instance finished (waiting for a slot included)."""
        future = self._future
        return future is not None and not future.done

    @property
    def result(self) -> R:
        """Wait for the instance to finish and return its value (``future.result()``).

        Raises:
            TaskError: the instance was not started yet.
            Exception: what ``future.result()`` raises.
        """
        future = self._future
        if future is None:
            raise TaskError("Task has not been started yet.")
        return future.result()

    def __repr__(self) -> str:
        return f"<TaskInstance {self.id} of {self.task.name!r} status={self.status}>"


class _TaskDecorator:
    """What ``@task(...)`` with options returns: applied to a function, makes the Task."""

    def __init__(self, options: TaskOptions) -> None:
        self.options = options

    @overload
    def __call__(self, function: Callable[Concatenate[TaskControl, P], R]) -> Task[P, R]: ...

    @overload
    def __call__(self, function: Callable[P, R]) -> Task[P, R]: ...

    def __call__(self, function: Callable[..., R]) -> Task[..., R]:
        return Task(function, self.options)


# A function whose first parameter takes a TaskControl: callers pass the rest.
@overload
def task(function: Callable[Concatenate[TaskControl, P], R]) -> Task[P, R]: ...


# Any other function: callers pass all of its parameters.
@overload
def task(function: Callable[P, R]) -> Task[P, R]: ...


# Options first: ``@task(max_parallel=3)`` returns the decorator.
@overload
def task(function: None = None, **options: Unpack[TaskOptionsArgs]) -> _TaskDecorator: ...


def task(function: Optional[Callable[..., Any]] = None, **options: Unpack[TaskOptionsArgs]) -> Any:
    """Make a function a task: ``@task`` or ``@task(max_parallel=3, size="medium", name=...)``.

    Type checkers see ``Task[P, R]``: the function's parameters less a first TaskControl
    one, and its return type (see the module docstring).

    The options are the fields of :class:`~numerous.tasks.task.TaskOptions`.

    Args:
        max_parallel: how many instances may run at once in one session (an int ≥ 1).
        size: a resource hint, one of ``"small"``, ``"medium"``, ``"large"``.
        name: the task's name (default: the function's name).
        timeout: seconds an instance may run before it is stopped and fails with
            :class:`~numerous.tasks.TaskTimeoutError` (default: no limit).
        fresh_process: give every instance a new process of its own, never reused
            (default False: a session reuses its clean idle workers).
        capture_output: log what the task writes to ``sys.stdout`` (at info) and
            ``sys.stderr`` (at warning), line by line, like ``tc.log`` records with a
            ``stream`` extra, instead of letting it reach the terminal (default False;
            output written to the file descriptors themselves is not captured).
        retries: how many times a failed instance runs again, each time in a new
            process (default 0), when its error is one of ``retry_on``.
        retry_on: the exception classes retried (default ``(WorkerDiedError,)``: a
            worker that died); a stopped or timed-out instance is never retried.
        retry_delay: seconds between a failed attempt and the next (default 0).

    Raises:
        TypeError, ValueError: a parameter has the wrong type or value (checked here, at
            decoration time).
    """
    if function is not None:
        return Task(function, **options)
    return _TaskDecorator(TaskOptions(**options).checked())  # a bad @task(...) fails where it is written


def __getattr__(name: str) -> Any:
    """``TaskConfig``, imported on first use (PEP 562): it needs ``dataclasses``."""
    if name == "TaskConfig":
        from ._sdk_compat import TaskConfig

        return TaskConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
