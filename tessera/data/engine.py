"""The seam between the checked table and the engine that holds a party's rows.

:class:`~tessera.data.local.LocalTable` (the checks' results, the reductions analyses call) runs
every reduction as SQL over one relation; an :class:`Engine` is what executes it: DuckDB
embedded in the party's process (the default, :mod:`tessera.data.local`) or a Spark cluster
(:mod:`tessera.data.spark`). An engine has three methods: rows of a query as tuples (aggregates),
columns of a query as numpy arrays (the few analyses that need row values), and ``close``.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Engine"]


class Engine(Protocol):
    """Runs the checked table's SQL. Errors are :class:`~tessera.errors.DataError` naming the
    table (``label``), never quoting data."""

    def fetch(self, sql: str, label: str) -> list[tuple[Any, ...]]:
        """The rows of ``sql`` (small: aggregates)."""

    def numpy(self, sql: str, label: str) -> dict[str, Any]:
        """The columns of ``sql`` as numpy arrays (NULLs as masked entries)."""

    def close(self) -> None:
        """Release what the engine keeps for this table (a shared cluster session stays up)."""
