"""Which frames of a traceback are the library's own: the one definition of it."""

from __future__ import annotations

import os

__all__ = ["PACKAGE_DIR", "is_library_file"]

#: The directory of the ``numerous.tasks`` package, with a trailing separator.
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
#: Files inside the package that are user-level code all the same: the demo's tasks.
_USER_CODE_IN_THE_PACKAGE = frozenset({"_demo.py"})


def is_library_file(filename: str) -> bool:
    """Whether a frame's file is numerous.tasks' own machinery (the demo's tasks are not)."""
    path = os.path.abspath(filename)
    return path.startswith(PACKAGE_DIR) and os.path.basename(path) not in _USER_CODE_IN_THE_PACKAGE
