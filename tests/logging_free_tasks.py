"""A task module that does not import ``logging``: its task imports it in the body.

Kept apart from logging_tasks (which imports logging at top level) so that a worker
running only this module's tasks has not imported ``logging`` when the body starts.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict

from numerous.tasks import task


@task(fresh_process=True)  # a worker of its own: no earlier task imported logging in it
def logging_imported_in_body() -> Dict[str, Any]:
    was_imported = "logging" in sys.modules
    import logging

    logging.getLogger("late.import").warning("imported in the body")
    return {"pid": os.getpid(), "was_imported": was_imported}


@task(fresh_process=True)
def logging_never_imported() -> bool:
    return "logging" in sys.modules
