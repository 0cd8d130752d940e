"""Inside a worker, while a task body runs: stdlib ``logging`` records, and optionally
the task's ``print()`` output, become records of the task's log.

    task body ── logging.getLogger(...).warning ──▶ root logger ──▶ _ForwardingHandler ─┐
              ── tc.log ─────────────────────────────────────────────────────────────────┼─▶ WorkerSink.log
              ── print() / sys.stderr.write (capture_output=True) ──▶ _LineWriter ───────┘   (one channel:
                                                                                           order is kept)

:func:`forward_task_output` is called right before the body, its :meth:`end_capture`
right after (the streams) and its :meth:`close` once the outcome is on its way (off the
path between the body's end and its caller's wake-up), so a warm worker that is reused
starts the next task clean: no handler of ours on the root logger, the root level and
``logging.basicConfig`` as they were, the original ``sys.stdout``/``sys.stderr``.

``logging`` is not imported here unless the task uses it: a fresh worker's start-up is a
measured target. When the body starts and ``logging`` is already in ``sys.modules`` (the
task's module or a library it imports at top level imported it), the handler is attached
at once. Otherwise a one-line meta-path finder waits for the body to import ``logging``
and attaches the handler as soon as the module has run; it costs one string compare per
import the body makes, and is removed when ``logging`` arrives or the body ends.

The root logger's level: when logging in the worker is unconfigured (root at its default
WARNING, no handlers), it is set to INFO for the body, so ``logger.info`` reaches the
parent by default; a level the task (or its module) configured is left alone. The
parent's own logging configuration then decides what is shown there. The INFO we set
stays between bodies (and the next body finds it ours): ``setLevel`` clears the cache of
every logger in the process, ~10 µs a job with a few libraries' loggers and ~25 µs with
300, twice a job; between bodies nothing logs, and logging's last resort prints from
WARNING on at either level.
"""

from __future__ import annotations

import io
import sys
import threading
from typing import Any, Callable, Dict, Optional, Tuple

from ...control import FROM_LOGGING, RESERVED_EXTRAS, level_name

#: Levels that captured output is logged at.
STDOUT_LEVEL = "info"
STDERR_LEVEL = "warning"
#: Characters of a line without a newline kept before it is sent anyway (a task that
#: writes forever without a newline must not grow the worker's memory without bound).
MAX_LINE = 64 * 1024

_PLAIN = (str, int, float, bool, type(None))

#: The root logger's INFO was set by us (it was unconfigured), and is left in place
#: between bodies: a body that finds root at INFO, still without handlers, takes it as ours.
_root_level_ours = False

LogFunction = Callable[[str, str, Dict[str, Any]], None]


def forward_task_output(sink: Any, capture_output: bool) -> TaskOutput:
    """Start forwarding ``logging`` records (and, if asked, stdout/stderr) to ``sink``."""
    return TaskOutput(sink.log, capture_output)


class TaskOutput:
    """What is installed around one task body; :meth:`close` takes it all down."""

    def __init__(self, log: LogFunction, capture_output: bool) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._closed = False
        self._handler: Any = None
        self._logging: Any = None
        self._original_basic_config: Any = None
        self._hook: Optional[_LoggingImportHook] = None
        self._streams: Optional[Tuple[Any, Any, _LineWriter, _LineWriter]] = None
        if capture_output:
            out = _LineWriter(log, "stdout", STDOUT_LEVEL, sys.stdout)
            err = _LineWriter(log, "stderr", STDERR_LEVEL, sys.stderr)
            self._streams = (sys.stdout, sys.stderr, out, err)
            sys.stdout, sys.stderr = out, err
        logging = sys.modules.get("logging")
        if logging is not None:
            self._attach(logging)
        else:
            self._hook = _LoggingImportHook(self._attach)
            sys.meta_path.insert(0, self._hook)

    def _attach(self, logging: Any) -> None:
        """Put our handler on the root logger (on the thread that imported logging)."""
        global _root_level_ours
        with self._lock:
            if self._closed or self._handler is not None:
                return
            self._remove_hook()
            root = logging.root
            handler = _handler_type(logging).for_body(self._log)
            level = root.level
            unconfigured = level == logging.WARNING or (_root_level_ours and level == logging.INFO)
            _root_level_ours = not root.handlers and unconfigured
            if _root_level_ours and level != logging.INFO:
                root.setLevel(logging.INFO)
            root.addHandler(handler)
            self._handler, self._logging = handler, logging
            self._original_basic_config = original = logging.basicConfig

            def basicConfig(**kwargs: Any) -> None:
                # Our handler must not make the task's basicConfig(level=...) a no-op
                # (it configures only a root logger without handlers).
                root.removeHandler(handler)
                try:
                    original(**kwargs)
                finally:
                    with self._lock:
                        if not self._closed:
                            root.addHandler(handler)

            basicConfig.__doc__ = original.__doc__
            basicConfig.__wrapped__ = original  # type: ignore[attr-defined]
            logging.basicConfig = basicConfig

    def _remove_hook(self) -> None:
        if self._hook is not None:
            try:
                sys.meta_path.remove(self._hook)
            except ValueError:  # the task rebuilt sys.meta_path
                pass
            self._hook = None

    def end_capture(self) -> None:
        """Send what is left of partial output lines and restore the streams (the body
        is over: its outcome must come after its last line). Idempotent."""
        streams, self._streams = self._streams, None
        if streams is not None:
            stdout, stderr, out, err = streams
            sys.stdout, sys.stderr = stdout, stderr
            out.finish()
            err.finish()

    def close(self) -> None:
        """:meth:`end_capture`, then take our handler off the root logger and put
        ``logging.basicConfig`` back (a root level of INFO that we set stays: see the
        module's docstring). A worker calls it once the outcome is sent."""
        self.end_capture()
        with self._lock:
            self._closed = True
            self._remove_hook()
            logging, handler = self._logging, self._handler
            if handler is None:
                return
            root = logging.root
            root.removeHandler(handler)
            handler.detached()
            if getattr(logging.basicConfig, "__wrapped__", None) is self._original_basic_config:
                logging.basicConfig = self._original_basic_config


class _LoggingImportHook:
    """A meta-path finder that only watches for ``import logging``: it finds the module
    with the finders after it and runs ``on_import(module)`` once the module has run."""

    def __init__(self, on_import: Callable[[Any], None]) -> None:
        self._on_import = on_import

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "logging":
            return None
        spec = None
        for finder in list(sys.meta_path):
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(name, path, target)
            if spec is not None:
                break
        if spec is None or not hasattr(spec.loader, "exec_module"):
            return spec
        spec.loader = _NotifyingLoader(spec.loader, self._on_import)
        return spec


class _NotifyingLoader:
    def __init__(self, loader: Any, on_import: Callable[[Any], None]) -> None:
        self._loader = loader
        self._on_import = on_import

    def create_module(self, spec: Any) -> Any:
        return self._loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        # The module keeps the real loader (linecache and importlib.resources use it).
        module.__loader__ = module.__spec__.loader = self._loader
        self._loader.exec_module(module)
        self._on_import(module)


_forwarding_handler_type: Any = None  # (the logging module, the class made from it)


def _handler_type(logging: Any) -> Any:
    """The handler class, defined the first time ``logging`` is there to subclass."""
    global _forwarding_handler_type
    if _forwarding_handler_type is not None and _forwarding_handler_type[0] is logging:
        return _forwarding_handler_type[1]
    standard = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}
    skip = standard | RESERVED_EXTRAS | {FROM_LOGGING}

    class _ForwardingHandler(logging.Handler):  # type: ignore[misc]
        """Sends each record down the task's channel, like ``tc.log``."""

        _spare: Any = None  # the last body's handler, detached: reused (saves ~4 us a job)

        def __init__(self, log: LogFunction) -> None:
            super().__init__()
            self._log = log
            self._formatter = logging.Formatter()

        @classmethod
        def for_body(cls, log: LogFunction) -> Any:
            handler, cls._spare = cls._spare, None
            if handler is None:
                return cls(log)
            handler._log = log
            return handler

        def detached(self) -> None:
            """Taken off the root logger: keep it for the next body."""
            self._log = _drop
            type(self)._spare = self

        def emit(self, record: Any) -> None:
            try:
                extra: Dict[str, Any] = {
                    FROM_LOGGING: record.name,
                    "levelno": record.levelno,
                    "pathname": record.pathname,
                    "lineno": record.lineno,
                    "funcName": record.funcName,
                }
                exc_text = record.exc_text
                if not exc_text and record.exc_info:
                    exc_text = self._formatter.formatException(record.exc_info)
                if exc_text:
                    extra["exc_text"] = exc_text
                if record.stack_info:
                    extra["stack_info"] = record.stack_info
                for key, value in record.__dict__.items():  # the task's extra={...}
                    if key not in skip and not key.startswith("_"):
                        extra[key] = value if isinstance(value, _PLAIN) else repr(value)
                self._log(record.getMessage(), level_name(record.levelno), extra)
            except RecursionError:
                raise
            except Exception:
                self.handleError(record)

    _forwarding_handler_type = (logging, _ForwardingHandler)
    return _ForwardingHandler


class _LineWriter(io.TextIOBase):
    """A text stream that logs each complete line (``capture_output=True``).

    Partial lines wait for their newline (``flush()`` does not send them) and are sent
    when the body ends. A carriage return starts the line over, as on a terminal, so a
    progress bar redrawn in place is logged as its last frame. After the body, writes go
    to the stream it replaced (a handler the task made with it keeps working).
    """

    def __init__(self, log: LogFunction, name: str, level: str, original: Any) -> None:
        super().__init__()
        self._log = log
        self._extra = {"stream": name}
        self._level = level
        self._original = original
        self._pending = ""
        self._lock = threading.Lock()
        self._finished = False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", None) or "utf-8"

    @property
    def errors(self) -> Optional[str]:  # type: ignore[override]
        return getattr(self._original, "errors", None)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        # What writes to the descriptor itself is not captured (C code, subprocesses).
        return int(self._original.fileno())

    @property
    def buffer(self) -> Any:
        """The replaced stream's binary buffer: bytes written there are not captured."""
        return self._original.buffer

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if self._finished:
            return int(self._original.write(text))
        with self._lock:
            lines = (self._pending + text).split("\n")
            self._pending = _last_frame(lines.pop(), partial=True)
            if len(self._pending) > MAX_LINE:
                lines.append(self._pending)
                self._pending = ""
            for line in lines:
                line = _last_frame(line, partial=False)
                if line:
                    self._log(line, self._level, dict(self._extra))
        return len(text)

    def finish(self) -> None:
        """Send the partial line, if any; later writes go to the original stream."""
        with self._lock:
            self._finished = True
            rest, self._pending = _last_frame(self._pending, partial=False), ""
        if rest:
            self._log(rest, self._level, dict(self._extra))


def _drop(message: str, level: str, extra: Dict[str, Any]) -> None:
    """Where a detached handler's records go (one kept by the task, used later)."""


def _last_frame(line: str, partial: bool) -> str:
    """What a terminal would show of ``line``: the text after its last carriage return
    (one at the very end is a CRLF line end, or may be, while the line is partial)."""
    if "\r" not in line:
        return line
    head, tail = (line[:-1], "\r") if line.endswith("\r") else (line, "")
    if not partial:
        tail = ""
    return head.rsplit("\r", 1)[-1] + tail
