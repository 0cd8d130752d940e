"""stdlib ``logging`` inside tasks: records reach the parent like ``tc.log`` records,
tagged with the task and the original logger, in order; the default handler re-emits them
as ordinary ``LogRecord``s on the parent's logger of the same name; ``TaskFormatter``
formats app and task records alike; ``capture_output=True`` logs print()."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import logging_free_tasks
import logging_tasks
import pytest
from api_tasks import RecordingHandler
from rich.console import Console

from numerous.tasks import Session, TaskControl, set_task_control_handler
from numerous.tasks.backends.local._worker_logging import forward_task_output
from numerous.tasks.control import FROM_LOGGING, LoggingTaskControlHandler, level_name
from numerous.tasks.display import TaskDisplay

pytestmark = pytest.mark.timeout(60)

RESULT_WAIT = 30.0
REPO = Path(__file__).resolve().parent.parent


def _use_handler() -> RecordingHandler:
    handler = RecordingHandler()
    set_task_control_handler(handler)
    return handler


def _from_logging(handler: RecordingHandler, instance_id: str) -> List[Tuple[str, str, Dict[str, Any]]]:
    return [log for log in handler.of(instance_id, "log") if FROM_LOGGING in log[2]]


def _task_records(caplog: pytest.LogCaptureFixture, instance_id: str) -> List[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "instance_id", None) == instance_id]


class _Collect(logging.Handler):
    """Keeps every record it is handed."""

    def __init__(self) -> None:
        super().__init__()
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def parent_loggers() -> Iterator[None]:
    """Loggers a test configures get their level, handlers, filters and propagation back."""
    names = ["", "numerous.tasks", "levels", "ntapp", "ntapp.sub", "ntapp.noisy", "ntquiet"]
    saved = {}
    for name in names:
        logger = logging.getLogger(name)
        saved[name] = (logger.level, list(logger.handlers), list(logger.filters), logger.propagate)
    yield
    for name, (level, handlers, filters, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.setLevel(level)
        logger.handlers[:], logger.filters[:], logger.propagate = handlers, filters, propagate


# -- records reach the parent's default handler, and caplog --------------------------------------
@pytest.mark.timeout(90)
@pytest.mark.task_backend("local", "dask")  # inline: the task logs in this process, nothing travels
@pytest.mark.usefixtures("task_backend", "parent_loggers")
def test_a_workers_record_is_handled_by_the_parents_logger_of_the_same_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    set_task_control_handler(None)
    caplog.set_level(logging.DEBUG)
    app = _Collect()
    logging.getLogger("ntapp").addHandler(app)
    logging.getLogger("ntapp").setLevel(logging.INFO)
    logging.getLogger("ntapp.noisy").setLevel(logging.ERROR)  # silenced here, as for local records
    records = [
        ("ntapp.sub", logging.INFO, "info from sub"),
        ("ntapp.noisy", logging.WARNING, "dropped by the parent's level"),
        ("ntapp.noisy", logging.ERROR, "loud enough"),
        ("elsewhere", logging.WARNING, "not under ntapp"),
    ]
    with Session():
        instance = logging_tasks.logs_as.instance()
        instance.start(records).result(timeout=RESULT_WAIT)
    assert [(r.name, r.levelname, r.getMessage(), r.task_name, r.instance_id) for r in app.records] == [
        ("ntapp.sub", "INFO", "info from sub", "logs_as", instance.id),
        ("ntapp.noisy", "ERROR", "loud enough", "logs_as", instance.id),
    ]
    # Everything propagated to the root (caplog) too; tc.log keeps its own logger.
    assert [(r.name, r.getMessage()) for r in _task_records(caplog, instance.id)] == [
        ("ntapp.sub", "info from sub"),
        ("ntapp.noisy", "loud enough"),
        ("elsewhere", "not under ntapp"),
        ("numerous.tasks", "from tc.log"),
    ]


@pytest.mark.usefixtures("parent_loggers")
def test_filters_propagation_and_the_root_logger_apply_as_for_local_records(caplog: pytest.LogCaptureFixture) -> None:
    set_task_control_handler(None)
    caplog.set_level(logging.DEBUG)
    app, quiet = _Collect(), _Collect()
    logging.getLogger("ntapp").addHandler(app)
    logging.getLogger("ntapp.sub").addFilter(lambda record: "secret" not in record.getMessage())
    logging.getLogger("ntquiet").addHandler(quiet)
    logging.getLogger("ntquiet").propagate = False  # its records stop there
    with Session():
        instance = logging_tasks.logs_as.instance()
        instance.start(
            [
                ("ntapp.sub", logging.WARNING, "a secret"),
                ("ntapp.sub", logging.WARNING, "public"),
                ("ntquiet", logging.WARNING, "kept to itself"),
                ("", logging.WARNING, "on the worker's root logger"),
            ]
        ).result(timeout=RESULT_WAIT)
    assert [r.getMessage() for r in app.records] == ["public"]
    assert [r.getMessage() for r in quiet.records] == ["kept to itself"]
    assert [(r.name, r.getMessage()) for r in _task_records(caplog, instance.id)] == [
        ("ntapp.sub", "public"),
        ("root", "on the worker's root logger"),
        ("numerous.tasks", "from tc.log"),
    ]


@pytest.mark.task_backend("local", "dask")  # inline: the task logs in this process, nothing travels
@pytest.mark.usefixtures("task_backend")
def test_a_workers_logging_records_reach_caplog_with_the_task_fields(caplog: pytest.LogCaptureFixture) -> None:
    set_task_control_handler(None)
    caplog.set_level(logging.WARNING, logger="numerous.tasks")
    with Session():
        instance = logging_tasks.warns.instance()
        worker_pid = instance.start("hi").result(timeout=RESULT_WAIT)
    user, library = _task_records(caplog, instance.id)
    assert (user.name, user.levelname, user.getMessage()) == ("user.code", "WARNING", "user says hi")
    assert (user.task_name, user.instance_id, user.logger_name) == ("warns", instance.id, "user.code")
    assert (user.filename, user.funcName) == ("logging_tasks.py", "warns")  # where the worker logged
    assert (library.logger_name, library.getMessage(), library.funcName) == (
        logging_tasks.LIBRARY,
        "library call 7",
        "_library_call",
    )
    assert worker_pid != os.getpid()  # it was logged in the worker


def test_levels_the_worker_configured_are_honoured_and_info_is_the_default() -> None:
    handler = _use_handler()
    with Session():
        default = logging_tasks.at_every_level.instance()
        default.start(None).result(timeout=RESULT_WAIT)
        errors_only = logging_tasks.at_every_level.instance()
        errors_only.start(logging.ERROR).result(timeout=RESULT_WAIT)
        everything = logging_tasks.at_every_level.instance()
        everything.start(logging.DEBUG).result(timeout=RESULT_WAIT)

    def seen(instance: Any) -> List[Tuple[str, str, int]]:
        return [(m, lvl, extra["levelno"]) for m, lvl, extra in _from_logging(handler, instance.id)]

    info_up = [
        ("info record", "info", 20),
        ("warning record", "warning", 30),
        ("error record", "error", 40),
        ("critical record", "error", 50),  # tc.log has no "critical": the exact level travels along
    ]
    assert seen(default) == info_up
    assert seen(errors_only) == info_up[2:]
    assert seen(everything) == [("debug record", "debug", 10)] + info_up


def test_basic_config_with_a_level_in_the_task_body_still_configures_it() -> None:
    # Our handler on the root logger must not make the task's basicConfig a no-op.
    handler = _use_handler()
    with Session():
        instance = logging_tasks.configures_basic_config_debug.instance()
        instance.start().result(timeout=RESULT_WAIT)
    assert [(m, lvl) for m, lvl, _ in _from_logging(handler, instance.id)] == [("debug after basicConfig", "debug")]


def test_the_parents_level_of_the_same_logger_decides_what_it_shows(
    caplog: pytest.LogCaptureFixture, parent_loggers: Any
) -> None:
    set_task_control_handler(None)
    caplog.set_level(logging.DEBUG)  # the root and caplog's handler would take everything
    logging.getLogger("levels").setLevel(logging.ERROR)  # the logger the task logs on, here
    logging.getLogger("numerous.tasks").setLevel(logging.CRITICAL + 1)  # not the one that decides
    with Session():
        instance = logging_tasks.at_every_level.instance()
        instance.start(None).result(timeout=RESULT_WAIT)
    assert [(r.name, r.levelname, r.getMessage()) for r in _task_records(caplog, instance.id)] == [
        ("levels", "ERROR", "error record"),
        ("levels", "CRITICAL", "critical record"),
    ]


def test_exception_info_travels_as_text(caplog: pytest.LogCaptureFixture) -> None:
    set_task_control_handler(None)
    caplog.set_level(logging.WARNING, logger="numerous.tasks")
    with Session():
        instance = logging_tasks.logs_an_exception.instance()
        instance.start().result(timeout=RESULT_WAIT)
    (record,) = _task_records(caplog, instance.id)
    assert (record.levelname, record.getMessage(), record.logger_name) == ("ERROR", "lookup failed", "failing")
    assert record.exc_info is None  # the exception itself stayed in the worker ...
    assert record.exc_text.startswith("Traceback (most recent call last):")  # ... its text came home
    assert record.exc_text.rstrip().endswith("KeyError: 'missing'")
    assert "lookup failed\nTraceback (most recent call last):" in caplog.text  # formatters print it


def test_logging_records_and_tc_log_records_keep_their_order() -> None:
    handler = _use_handler()
    count = 200
    with Session():
        instance = logging_tasks.interleaves.instance()
        instance.start(count).result(timeout=RESULT_WAIT)
    messages = [message for message, _, _ in handler.of(instance.id, "log")]
    assert messages == [m for i in range(count) for m in (f"tc {i}", f"logging {i}")]


def test_extra_fields_and_records_from_other_threads_arrive() -> None:
    handler = _use_handler()
    with Session():
        with_extra = logging_tasks.logs_with_extra.instance()
        with_extra.start().result(timeout=RESULT_WAIT)
        threaded = logging_tasks.logs_from_a_thread.instance()
        threaded.start().result(timeout=RESULT_WAIT)
    ((message, level, extra),) = _from_logging(handler, with_extra.id)
    assert (message, level, extra["user"], extra["obj"], extra["items"]) == (
        "with extra",
        "warning",
        "bob",
        "object",
        "[1, 2]",
    )
    assert [m for m, _, _ in _from_logging(handler, threaded.id)] == ["from a thread"]


# -- a worker stays clean and cheap ------------------------------------------------------------------
def test_a_reused_worker_does_not_keep_the_handler() -> None:
    handler = _use_handler()
    with Session():
        first = logging_tasks.warns.instance()
        first_pid = first.start("once").result(timeout=RESULT_WAIT)
        quiet = logging_tasks.quiet.instance()
        assert quiet.start().result(timeout=RESULT_WAIT) == first_pid  # the same warm worker
        states = [logging_tasks.root_logger_state.instance().start().result(timeout=RESULT_WAIT) for _ in range(2)]
    assert len(_from_logging(handler, first.id)) == 2
    assert handler.of(quiet.id, "log") == []
    for state in states:
        assert state["pid"] == first_pid
        # One forwarding handler during each body, never one left over from the last.
        assert state["handlers"] == ["_ForwardingHandler"]
        assert state["level"] == logging.INFO and state["basicConfig"]


def test_the_body_scope_restores_the_root_logger_and_basic_config() -> None:
    # In this process (where logging is configured by pytest): attach, log, detach.
    root = logging.getLogger()
    handlers, level, basic_config = list(root.handlers), root.level, logging.basicConfig
    got: List[Tuple[str, str, Dict[str, Any]]] = []

    class Sink:
        def log(self, message: str, level: str, extra: Dict[str, Any]) -> None:
            got.append((message, level, extra))

    output = forward_task_output(Sink(), capture_output=False)
    try:
        assert len(root.handlers) == len(handlers) + 1 and logging.basicConfig is not basic_config
        logging.getLogger("scoped").error("inside")
    finally:
        output.close()
    logging.getLogger("scoped").error("outside")
    assert [(m, lvl, e[FROM_LOGGING]) for m, lvl, e in got] == [("inside", "error", "scoped")]
    assert (root.handlers, root.level, logging.basicConfig) == (handlers, level, basic_config)


def test_logging_imported_inside_the_body_is_forwarded_and_never_imported_otherwise() -> None:
    handler = _use_handler()
    with Session():
        late = logging_free_tasks.logging_imported_in_body.instance()
        outcome = late.start().result(timeout=RESULT_WAIT)
        untouched = logging_free_tasks.logging_never_imported.instance().start().result(timeout=RESULT_WAIT)
    assert [(m, e[FROM_LOGGING]) for m, _, e in _from_logging(handler, late.id)] == [
        ("imported in the body", "late.import")
    ]
    if sys.version_info >= (3, 11):  # below, numerous.tasks imports concurrent.futures, which imports logging
        assert outcome["was_imported"] is False
        assert untouched is False  # a task that does not use logging does not pay for it


HOOK_SCRIPT = """
import sys
from numerous.tasks.backends.local._worker_logging import forward_task_output

for name in [n for n in sys.modules if n == "logging" or n.startswith("logging.")]:
    del sys.modules[name]  # as in a worker whose task has not imported logging yet
got = []

class Sink:
    def log(self, message, level, extra):
        got.append((message, level, extra["logger_name"]))

output = forward_task_output(Sink(), capture_output=False)
import logging
logging.getLogger("late").info("after the import")
output.close()
logging.getLogger("late").warning("after the body")
hooks = [type(f).__name__ for f in sys.meta_path if "Hook" in type(f).__name__]
print(got, logging.root.handlers, logging.root.level, hooks, logging.getLogger().handlers == [])
"""


def test_the_import_hook_attaches_when_the_body_imports_logging_and_goes_away() -> None:
    done = subprocess.run([sys.executable, "-c", HOOK_SCRIPT], capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    # Root keeps the INFO we set (20) for the next body; no handler and no hook of ours stay.
    assert done.stdout == "[('after the import', 'info', 'late')] [] 20 [] True\n"
    assert done.stderr == "after the body\n"  # logging's last resort: our handler is gone


LEVELS_SCRIPT = """
import logging
from numerous.tasks.backends.local._worker_logging import forward_task_output

class Sink:
    def log(self, message, level, extra):
        pass

def body(action=None):
    output = forward_task_output(Sink(), capture_output=False)
    seen = logging.getLevelName(logging.root.level)
    if action is not None:
        action()
    output.close()
    return seen

seen = [body()]  # unconfigured: INFO
seen.append(body(lambda: logging.root.setLevel(logging.DEBUG)))  # INFO, then the task's DEBUG
seen.append(body(lambda: logging.root.setLevel(logging.WARNING)))  # DEBUG is the task's: kept
seen.append(body())  # WARNING and no handler: unconfigured again, INFO
seen.append(body(lambda: logging.basicConfig(level=logging.INFO)))  # configured at INFO
seen.append(body())  # INFO with a handler of the task's: configured, left alone
logging.root.handlers.clear()
logging.root.setLevel(logging.ERROR)
seen.append(body())  # a level the task chose, without a handler: left alone
print(seen)
"""


def test_a_body_finds_info_when_logging_is_unconfigured_and_a_level_the_task_chose_otherwise() -> None:
    # Bodies one after another in one process, as in a warm worker: the INFO we set stays
    # between them and counts as ours; a level or handler the task set is never overridden.
    done = subprocess.run([sys.executable, "-c", LEVELS_SCRIPT], capture_output=True, text=True, timeout=50)
    assert done.returncode == 0, done.stderr
    assert done.stdout == str(["INFO", "INFO", "DEBUG", "INFO", "INFO", "INFO", "ERROR"]) + "\n"


# -- capture_output ----------------------------------------------------------------------------------
def test_output_is_not_captured_by_default(capfd: pytest.CaptureFixture[str]) -> None:
    handler = _use_handler()
    with Session():
        instance = logging_tasks.prints.instance()
        instance.start(["line one", "line two"], "tail").result(timeout=RESULT_WAIT)
    captured = capfd.readouterr()
    assert handler.of(instance.id, "log") == []
    assert "line one\nline two\n" in captured.out and "to stderr\n" in captured.err


def test_capture_output_logs_each_line_and_restores_the_streams(capfd: pytest.CaptureFixture[str]) -> None:
    handler = _use_handler()
    with Session():
        instance = logging_tasks.prints_captured.instance()
        during = instance.start(["line one", "line two"], "tail").result(timeout=RESULT_WAIT)
        after = logging_tasks.stdout_type.instance().start().result(timeout=RESULT_WAIT)
    captured = capfd.readouterr()
    assert handler.of(instance.id, "log") == [
        ("line one", "info", {"stream": "stdout"}),
        ("line two", "info", {"stream": "stdout"}),
        ("to stderr", "warning", {"stream": "stderr"}),
        ("progress 100%", "info", {"stream": "stdout"}),  # a line redrawn with \r: its last frame
        ("tail", "info", {"stream": "stdout"}),  # the partial line, at the body's end
    ]
    assert "line one" not in captured.out and "to stderr" not in captured.err
    assert during["stdout"] == "_LineWriter"
    assert after == {"pid": during["pid"], "stdout": "TextIOWrapper"}  # the same worker, restored


def test_capture_output_is_validated_like_the_other_options() -> None:
    from numerous.tasks import task

    with pytest.raises(TypeError, match="capture_output must be a bool, not str"):
        task(capture_output="yes")  # type: ignore[call-overload]
    assert logging_tasks.prints_captured.capture_output is True
    assert logging_tasks.prints.capture_output is False


# -- what the parent does with them ------------------------------------------------------------------
def test_the_default_handler_maps_forwarded_fields_onto_the_record(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="numerous.tasks")
    control = TaskControl("abc", "t")
    LoggingTaskControlHandler().log(
        control,
        "disk 100% full",  # a % in the text is not a format
        "error",
        logger_name="lib",
        levelno=logging.CRITICAL,
        pathname="/x/lib.py",
        lineno=12,
        funcName="write",
        exc_text="Traceback ...\nOSError: full",
        task_name="not this one",  # the task's own identity wins
        user="bob",
    )
    (record,) = caplog.records
    assert (record.name, record.levelname, record.getMessage()) == ("lib", "CRITICAL", "disk 100% full")
    assert (record.task_name, record.instance_id, record.logger_name, record.user) == ("t", "abc", "lib", "bob")
    assert (record.filename, record.lineno, record.funcName) == ("lib.py", 12, "write")
    assert record.exc_text == "Traceback ...\nOSError: full"
    assert [level_name(n) for n in (5, 10, 25, 30, 45, 50)] == ["debug", "debug", "info", "warning", "error", "error"]


def test_the_display_shows_logging_records_like_tc_log_lines() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with TaskDisplay(console=console, refresh_interval=None):
        with Session():
            instance = logging_tasks.logs_an_exception.instance()
            instance.start().result(timeout=RESULT_WAIT)
    text = out.getvalue()
    assert f"logs_an_exception {instance.id[:6]} error   failing: lookup failed\nTraceback" in text
    assert "KeyError: 'missing'" in text
    assert "levelno" not in text and "pathname" not in text


def test_basic_config_in_a_script_prints_the_workers_record(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            """
            import logging
            from numerous.tasks import Session, task

            logging.basicConfig(format="%(levelname)s|%(name)s|%(task_name)s|%(logger_name)s|%(message)s")

            @task
            def shout(n):
                logging.getLogger("script.lib").warning("hello %d from the worker", n)
                logging.getLogger("script.lib").info("not shown: the parent is at WARNING")
                return n

            with Session():
                print(shout.instance().start(3).result())
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=50, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3\n"
    assert done.stderr == "WARNING|script.lib|shout|script.lib|hello 3 from the worker\n"
