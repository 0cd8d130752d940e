"""cloudpickle, keeping source file names in code sent by value.

cloudpickle replaces the file name of every code object it pickles by value with
``"<dynamic-code>"`` (for deterministic payloads). Tracebacks from a worker would then
point at ``<dynamic-code>`` instead of the user's script. Our pickler keeps the real
name, so a failing task defined in ``__main__`` shows its own file and source lines.
"""

from __future__ import annotations

import collections
import io
import pickle
import types
from typing import Any, Callable, Tuple

import cloudpickle

__all__ = ["dumps"]

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
