"""numerous.tasks.logs: a format naming the task fields formats every record, the app's
own included; and the README's logging recipe prints what it says."""

from __future__ import annotations

import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest

from numerous.tasks.logs import TaskFieldsFilter, TaskFormatter

README = Path(__file__).resolve().parent.parent / "README.md"


def _record(name: str = "myapp", message: str = "ready", **fields: object) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, "/x/app.py", 3, message, (), None)
    record.__dict__.update(fields)
    return record


def test_an_app_record_shows_dashes_and_a_task_record_its_fields() -> None:
    formatter = TaskFormatter("%(levelname)s [%(task_name)s %(instance_id)s] %(logger_name)s: %(message)s")
    app = _record()
    assert formatter.format(app) == "INFO [- -] myapp: ready"
    assert "task_name" not in app.__dict__ and "logger_name" not in app.__dict__  # left as it was
    task = _record("myapp.sub", "fetched", task_name="fetch", instance_id="ab12", logger_name="myapp.sub")
    assert formatter.format(task) == "INFO [fetch ab12] myapp.sub: fetched"


def test_a_plain_formatter_is_what_fails_on_app_records() -> None:
    # Why the formatter exists: the stdlib's own raises on a record without the field.
    with pytest.raises(ValueError, match="Formatting field not found in record: 'task_name'"):
        logging.Formatter("%(task_name)s %(message)s").format(_record())


def test_other_styles_and_defaults_of_ones_own() -> None:
    brace = TaskFormatter("{task_name}|{user}|{message}", style="{", defaults={"task_name": "app", "user": "?"})
    assert brace.format(_record()) == "app|?|ready"
    assert brace.format(_record(task_name="t", user="bob")) == "t|bob|ready"
    dollar = TaskFormatter("$task_name $message", style="$")
    assert dollar.format(_record()) == "- ready"


def test_exceptions_still_print_below_the_line() -> None:
    try:
        raise KeyError("missing")
    except KeyError:
        record = logging.LogRecord("myapp", logging.ERROR, "/x/app.py", 3, "failed", (), sys.exc_info())
    text = TaskFormatter("[%(task_name)s] %(message)s").format(record)
    assert text.startswith("[-] failed\nTraceback (most recent call last):")
    assert text.endswith("KeyError: 'missing'")


DICT_CONFIG_SCRIPT = """
import logging.config

logging.config.dictConfig({
    "version": 1,
    "formatters": {
        "tasks": {"class": "numerous.tasks.logs.TaskFormatter", "format": "%(task_name)s %(message)s"},
        "plain": {"format": "%(task_name)s|%(message)s"},  # a plain logging.Formatter
    },
    "filters": {"task_fields": {"()": "numerous.tasks.logs.TaskFieldsFilter"}},
    "handlers": {
        "formatted": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "tasks"},
        "filtered": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "plain",
            "filters": ["task_fields"],
        },
    },
    "root": {"handlers": ["formatted"], "level": "INFO"},
    "loggers": {"app.filtered": {"handlers": ["filtered"], "propagate": False}},
})
logging.getLogger("app").info("configured")
logging.getLogger("app").info("from a task", extra={"task_name": "fetch"})
logging.getLogger("app.filtered").info("filtered")
"""


@pytest.mark.timeout(60)
def test_dict_config_takes_the_formatter_and_the_filter(tmp_path: Path) -> None:
    # In a process of its own: dictConfig closes every handler of the process (pytest's too).
    (tmp_path / "configure.py").write_text(DICT_CONFIG_SCRIPT)
    done = subprocess.run([sys.executable, "configure.py"], capture_output=True, text=True, timeout=50, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["- configured", "fetch from a task", "-|filtered"]


def test_the_filter_sets_the_missing_fields_on_the_record_and_lets_it_through() -> None:
    app, task = _record(), _record(task_name="fetch", instance_id="ab12", logger_name="myapp")
    keep = TaskFieldsFilter()
    assert keep.filter(app) and keep.filter(task)
    assert (app.task_name, app.instance_id, app.logger_name) == ("-", "-", "myapp")  # type: ignore[attr-defined]
    assert (task.task_name, task.instance_id) == ("fetch", "ab12")  # type: ignore[attr-defined]


def _readme_logging_recipe() -> str:
    section = README.read_text(encoding="utf-8").split("\n## Logging\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.mark.timeout(60)
def test_the_readme_logging_recipe_prints_the_lines_it_shows(tmp_path: Path) -> None:
    code = _readme_logging_recipe()
    assert "TaskFormatter" in code
    promised = [line[2:] for line in code.splitlines() if line.startswith("# ")]
    (tmp_path / "recipe.py").write_text(code)
    done = subprocess.run([sys.executable, "recipe.py"], capture_output=True, text=True, timeout=50, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == promised
    assert len(promised) == 2  # the app's own line and the task's, one format for both
