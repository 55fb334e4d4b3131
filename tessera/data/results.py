"""What the local engine's reductions return: small frozen records of numpy arrays.

Every record says how many rows it used (``count``) and how many it left out because a column
it used was NULL (``dropped``); ``count + dropped`` is the table's row count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tessera.data.checks import Violation, format_violations
from tessera.errors import DataError

__all__ = ["ValidationReport", "Sums", "CrossProducts", "GroupCounts", "Histogram"]


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of checking a source against a schema: its row count and every violation."""

    source: str
    n_rows: int
    violations: tuple[Violation, ...]

    @property
    def ok(self) -> bool:
        return not self.violations

    def message(self) -> str:
        """Every offending column with the kind of problem and its row count (never values)."""
        return format_violations(self.source, list(self.violations)) if self.violations else f"{self.source}: valid"

    def raise_for_violations(self) -> None:
        """Raise :class:`~tessera.errors.DataError` with :meth:`message` unless the source is valid."""
        if self.violations:
            raise DataError(self.message())


@dataclass(frozen=True)
class Sums:
    """Per column: sum, sum of squares, min and max over the rows complete in ``columns``
    (``min``/``max`` are NaN when no row is used)."""

    columns: tuple[str, ...]
    count: int
    sum: np.ndarray
    sum_sq: np.ndarray
    min: np.ndarray
    max: np.ndarray
    dropped: int


@dataclass(frozen=True)
class CrossProducts:
    """``count``, the column sums ``sum`` (``X'1``) and the cross products ``xtx`` (``X'X``) over
    the rows complete in ``columns``."""

    columns: tuple[str, ...]
    count: int
    sum: np.ndarray
    xtx: np.ndarray
    dropped: int

    def gram(self) -> np.ndarray:
        """``Z'Z`` for ``Z = [1, X]`` (an intercept column first): ``[[n, s'], [s, X'X]]``."""
        p = len(self.columns)
        z = np.empty((p + 1, p + 1), dtype=np.float64)
        z[0, 0] = self.count
        z[0, 1:] = z[1:, 0] = self.sum
        z[1:, 1:] = self.xtx
        return z


@dataclass(frozen=True)
class GroupCounts:
    """Row counts per level (one column) or per pair of levels (two columns: a contingency table
    of shape ``(len(levels[0]), len(levels[1]))``), every declared level present, zeros included."""

    columns: tuple[str, ...]
    levels: tuple[tuple[str, ...], ...]
    table: np.ndarray
    count: int
    dropped: int


@dataclass(frozen=True)
class Histogram:
    """Counts in public bins as :func:`numpy.histogram`: ``[e0, e1), [e1, e2), ..., [e_k-1, e_k]``;
    ``below`` and ``above`` count the used rows outside the edges."""

    column: str
    edges: np.ndarray
    counts: np.ndarray
    below: int
    above: int
    count: int
    dropped: int
