"""Tasks for the stdlib-logging tests (test_stdlib_logging).

This module imports ``logging`` at top level, so in a worker that imported it to run one
of these tasks, ``logging`` is there when the body starts. ``logging_imported_in_body``
lives in ``logging_free_tasks`` (which does not import it) for the other path.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any, Dict, List, Optional, Tuple

from numerous.tasks import TaskControl, task

LIBRARY = "some.library"


def _library_call(n: int) -> None:
    """Stands for a library that logs on its own module logger."""
    logging.getLogger(LIBRARY).warning("library call %d", n)


@task
def warns(message: str) -> int:
    logging.getLogger("user.code").warning("user says %s", message)
    _library_call(7)
    return os.getpid()


@task
def at_every_level(logger_level: Optional[int]) -> None:
    logger = logging.getLogger("levels")
    logger.setLevel(logging.NOTSET if logger_level is None else logger_level)
    logger.debug("debug record")
    logger.info("info record")
    logger.warning("warning record")
    logger.error("error record")
    logger.critical("critical record")


@task
def configures_basic_config_debug() -> None:
    logging.basicConfig(level=logging.DEBUG)
    logging.getLogger("configured").debug("debug after basicConfig")


@task
def logs_an_exception() -> None:
    try:
        {}["missing"]
    except KeyError:
        logging.getLogger("failing").exception("lookup failed")


@task
def interleaves(tc: TaskControl, count: int) -> None:
    logger = logging.getLogger("interleaved")
    for i in range(count):
        tc.log(f"tc {i}", "warning")
        logger.warning("logging %d", i)


@task
def logs_with_extra() -> None:
    logging.getLogger("extra").warning("with extra", extra={"user": "bob", "obj": object.__name__, "items": [1, 2]})


@task
def logs_from_a_thread() -> None:
    thread = threading.Thread(target=logging.getLogger("threaded").warning, args=("from a thread",))
    thread.start()
    thread.join()


@task
def root_logger_state() -> Dict[str, Any]:
    """What the root logger looks like during the body, and the worker's pid."""
    root = logging.getLogger()
    return {
        "pid": os.getpid(),
        "handlers": [type(h).__name__ for h in root.handlers],
        "level": root.level,
        "basicConfig": getattr(logging.basicConfig, "__wrapped__", None) is not None,
    }


@task
def quiet() -> int:
    """Logs nothing: on a reused worker it must report nothing either."""
    return os.getpid()


@task
def prints(lines: List[str], partial: str) -> int:
    for line in lines:
        print(line)
    sys.stderr.write("to stderr\n")
    sys.stdout.write(partial)  # no newline: sent when the body ends
    return os.getpid()


@task(capture_output=True)
def prints_captured(lines: List[str], partial: str) -> Dict[str, Any]:
    for line in lines:
        print(line)
    sys.stderr.write("to stderr\n")
    sys.stdout.write("progress 10%\rprogress 50%\rprogress 100%\n")
    sys.stdout.write(partial)  # no newline: sent when the body ends
    return {"pid": os.getpid(), "stdout": type(sys.stdout).__name__}


@task
def stdout_type() -> Dict[str, Any]:
    return {"pid": os.getpid(), "stdout": type(sys.stdout).__name__}


@task
def logs_as(tc: TaskControl, records: List[Tuple[str, int, str]]) -> None:
    """Log each (logger name, level, message) in order, then one ``tc.log`` record."""
    for name, level, message in records:
        logging.getLogger(name or None).log(level, message)
    tc.log("from tc.log", "warning")
