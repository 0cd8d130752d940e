"""Byte counts for people: the one formatting that errors and sizes share."""

from __future__ import annotations

from typing import Any

__all__ = ["describe_bytes"]


def describe_bytes(count: Any) -> str:
    """``1.5 GiB``, ``512.0 MiB``: a byte count for people."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
