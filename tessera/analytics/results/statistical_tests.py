"""Test results as scipy's: Welch's t-test and the chi-square test of independence."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tessera.analytics.results._core import (
    Result,
    Table,
    format_value,
    pandas,
    scipy_stats,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ['TTestResult', 'ConfidenceInterval', 'Chi2Result']

_fmt = format_value

class ConfidenceInterval(NamedTuple):
    """An interval, as scipy's ``ConfidenceInterval(low, high)``."""

    low: float
    high: float


class TTestResult(Result):
    """Welch's t-test as scipy's ``ttest_ind(a, b, equal_var=False)`` (``a``: rows where the
    group is true): ``statistic``, ``pvalue``, ``df``, ``confidence_interval()``, and the group
    sizes and means (``mean_true``, ``mean_false``; when the job released them)."""

    title = "Welch Two-Sample t-test"

    @property
    def statistic(self) -> float:
        return float(self.outputs.get("t", math.nan))

    @property
    def pvalue(self) -> float:
        return float(self.outputs.get("p_value", math.nan))

    @property
    def df(self) -> float:
        return float(self.outputs.get("df", math.nan))

    @property
    def mean_true(self) -> float | None:
        return self.outputs.get("mean_true")

    @property
    def mean_false(self) -> float | None:
        return self.outputs.get("mean_false")

    @property
    def mean_difference(self) -> float | None:
        a, b = self.mean_true, self.mean_false
        return None if a is None or b is None else a - b

    @property
    def stderr(self) -> float | None:
        """The standard error of the difference (the difference over t)."""
        d = self.mean_difference
        if d is None or not self.statistic or not math.isfinite(self.statistic):
            return None
        return abs(d / self.statistic)

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """The interval of ``mean_true - mean_false`` (scipy's, Welch's df); NaN without the means."""
        d, se = self.mean_difference, self.stderr
        if d is None or se is None:
            return ConfidenceInterval(math.nan, math.nan)
        q = float(scipy_stats().t.ppf(0.5 + confidence_level / 2, self.df))
        return ConfidenceInterval(d - q * se, d + q * se)

    def info(self) -> list[tuple[str, Any]]:
        return [("Value", self.job_params.get("value")), ("Group", self.job_params.get("group")),
                ("t statistic", self.statistic), ("df (Welch)", self.df), ("p-value (two-sided)", self.pvalue)]

    def tables(self) -> list[Table]:
        groups = Table(["n", "mean"], [f"{self.job_params.get('group')} = True", f"{self.job_params.get('group')} = False"],
                       [[self.outputs.get("n_true"), self.mean_true], [self.outputs.get("n_false"), self.mean_false]])
        ci = self.confidence_interval()
        diff = Table(["estimate", "std err", "t", "P>|t|", "[0.025", "0.975]"], ["difference (True - False)"],
                     [[self.mean_difference, self.stderr, self.statistic, self.pvalue, ci.low, ci.high]])
        return [groups, diff]

    def to_frame(self) -> pd.DataFrame:
        ci = self.confidence_interval()
        return pandas().DataFrame([{"statistic": self.statistic, "df": self.df, "pvalue": self.pvalue,
                                 "n_true": self.outputs.get("n_true"), "n_false": self.outputs.get("n_false"),
                                 "mean_true": self.mean_true, "mean_false": self.mean_false,
                                 "ci_low": ci.low, "ci_high": ci.high}], index=["ttest"])

    def headline(self) -> str:
        return f"statistic={_fmt(self.statistic)}, df={_fmt(self.df)}, pvalue={_fmt(self.pvalue)}"


class Chi2Result(Result):
    """Pearson's chi-square test as scipy's ``chi2_contingency(table, correction=False)``:
    ``statistic``, ``pvalue``, ``dof`` and ``expected_freq`` (over the levels that occur, as
    scipy; when the job released the margins). :meth:`expected` labels it by level."""

    title = "Chi-square Test of Independence"

    @property
    def statistic(self) -> float:
        return float(self.outputs.get("chi2", math.nan))

    @property
    def pvalue(self) -> float:
        return float(self.outputs.get("p_value", math.nan))

    @property
    def dof(self) -> int:
        return int(self.outputs.get("dof", 0))

    def _levels(self, name: str, count: int) -> list[str]:
        if self.schema is not None:
            try:
                col = self.schema.column(name)
            except Exception:  # a result rebuilt without its schema's column
                col = None
            if col is not None and col.levels is not None:
                return [str(x) for x in col.levels]
            if col is not None and col.type.value == "bool":
                return ["False", "True"]
        return [str(i) for i in range(count)]

    def expected(self) -> pd.DataFrame | None:
        """Expected counts under independence, indexed by the row and column levels (every
        declared level; those that never occur have 0)."""
        e = self.outputs.get("expected")
        if e is None:
            return None
        e = np.asarray(e, dtype=np.float64)
        row, col = self.job_params.get("row", "row"), self.job_params.get("column", "column")
        frame = pandas().DataFrame(e, index=self._levels(row, e.shape[0]), columns=self._levels(col, e.shape[1]))
        frame.index.name, frame.columns.name = row, col
        return frame

    @property
    def expected_freq(self) -> np.ndarray | None:
        """The expected table over the levels that occur (scipy's ``expected_freq``)."""
        rows, cols = self.outputs.get("row_totals"), self.outputs.get("column_totals")
        e = self.outputs.get("expected")
        if e is None or rows is None or cols is None:
            return None
        e = np.asarray(e, dtype=np.float64)
        return e[np.asarray(rows) > 0][:, np.asarray(cols) > 0]

    def info(self) -> list[tuple[str, Any]]:
        return [("Row variable", self.job_params.get("row")), ("Column variable", self.job_params.get("column")),
                ("No. Observations", self.outputs.get("n")), ("Chi-square", self.statistic), ("dof", self.dof),
                ("p-value", self.pvalue)]

    def tables(self) -> list[Table]:
        e = self.expected()
        if e is None:
            return []
        return [Table([str(c) for c in e.columns], [str(i) for i in e.index], e.to_numpy().tolist(),
                      title="Expected counts under independence")]

    def notes(self) -> list[str]:
        return [] if "expected" in self.outputs else ["the margins (hence the expected table) were not released"]

    def to_frame(self) -> pd.DataFrame:
        return pandas().DataFrame([{"statistic": self.statistic, "pvalue": self.pvalue, "dof": self.dof,
                                 "n": self.outputs.get("n")}], index=["chi2"])

    def headline(self) -> str:
        return f"statistic={_fmt(self.statistic)}, dof={self.dof}, pvalue={_fmt(self.pvalue)}"
