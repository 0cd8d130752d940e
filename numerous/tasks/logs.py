"""Log formats that may name the task fields without breaking any other log line.

Records that come from tasks carry ``task_name`` and ``instance_id`` (and, when a task
sent them through ``logging``, ``logger_name``); the application's own records do not,
and a plain ``logging.Formatter`` given ``"%(task_name)s ..."`` fails on every one of
them ("Formatting field not found in record: 'task_name'"). Both helpers here fill in
what a record lacks:

* :class:`TaskFormatter` — a ``logging.Formatter`` that formats a record lacking a field
  as if it had the default, and leaves the record itself as it was;
* :class:`TaskFieldsFilter` — a ``logging.Filter`` for a handler that sets the missing
  fields on the record itself, for formatters that are not ours (JSON formatters,
  ``rich``'s handler).

    import logging
    from numerous.tasks.logs import TaskFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(TaskFormatter("%(levelname)s [%(task_name)s] %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("myapp").info("ready")  # INFO [-] myapp: ready
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Dict, Literal, Mapping, Optional

__all__ = ["TASK_FIELD_DEFAULTS", "TaskFieldsFilter", "TaskFormatter"]

#: What a record that did not come from a task shows for each task field. ``logger_name``
#: is filled with the record's own ``name`` instead (what it is for a task's record too).
TASK_FIELD_DEFAULTS: Mapping[str, str] = {"task_name": "-", "instance_id": "-"}


def _missing(record: logging.LogRecord, defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """The task fields ``record`` lacks, with the values to fill them with."""
    fields = record.__dict__
    missing = {key: value for key, value in defaults.items() if key not in fields}
    if "logger_name" not in fields:
        missing["logger_name"] = record.name
    return missing


class TaskFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose format may use ``task_name``, ``instance_id`` and
    ``logger_name`` on every record: the ones that lack them show ``-`` (``logger_name``:
    the record's ``name``).

    Args:
        fmt, datefmt, style, validate: as for ``logging.Formatter``.
        defaults: values for fields a record lacks, over :data:`TASK_FIELD_DEFAULTS`
            (any other field of your format may be given one too, as with
            ``logging.Formatter(defaults=...)`` on Python 3.10+).
    """

    def __init__(
        self,
        fmt: Optional[str] = None,
        datefmt: Optional[str] = None,
        style: Literal["%", "{", "$"] = "%",
        validate: bool = True,
        *,
        defaults: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(fmt, datefmt, style, validate)
        self.task_defaults: Dict[str, Any] = {**TASK_FIELD_DEFAULTS, **(defaults or {})}

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Format ``record`` as if it had the fields it lacks (a copy gets them)."""
        missing = _missing(record, self.task_defaults)
        if missing:
            record = copy.copy(record)
            record.__dict__.update(missing)
        return super().formatMessage(record)


class TaskFieldsFilter(logging.Filter):
    """A filter that lets every record through, after setting the task fields it lacks
    (``-``; ``logger_name``: its ``name``). Put it on a handler (``handler.addFilter``):
    the records that handler formats then always have them.

    Args:
        defaults: values for fields a record lacks, over :data:`TASK_FIELD_DEFAULTS`.
    """

    def __init__(self, defaults: Optional[Mapping[str, Any]] = None) -> None:
        super().__init__()
        self.task_defaults: Dict[str, Any] = {**TASK_FIELD_DEFAULTS, **(defaults or {})}

    def filter(self, record: logging.LogRecord) -> bool:
        """Set the fields ``record`` lacks; always True."""
        record.__dict__.update(_missing(record, self.task_defaults))
        return True
