"""Small helpers to write DuckDB SQL safely: quoted identifiers, string and number literals."""

from __future__ import annotations

import math

__all__ = ["ident", "text", "number"]


def ident(name: str) -> str:
    """A double-quoted SQL identifier (embedded quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def text(value: str) -> str:
    """A single-quoted SQL string literal (embedded quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def number(value: float) -> str:
    """A finite float as an exact DOUBLE literal.

    A bare ``0.1`` is a DECIMAL in DuckDB; casting the shortest round-trip string to DOUBLE
    gives back exactly the Python float.
    """
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"not a finite number: {value!r}")
    return f"CAST('{v!r}' AS DOUBLE)"
