"""What the local engine returns besides rows: the report of a check and the record of a
reduction (small frozen records of numpy arrays).

:class:`Sums` says how many rows it used (``count``) and how many it left out because a column
it used was NULL (``dropped``); ``count + dropped`` is the table's row count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tessera.data.checks import Violation, format_violations
from tessera.errors import DataError

__all__ = ["ValidationReport", "Sums"]


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
    sum: npt.NDArray[np.float64]
    sum_sq: npt.NDArray[np.float64]
    min: npt.NDArray[np.float64]
    max: npt.NDArray[np.float64]
    dropped: int
