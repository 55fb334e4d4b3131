"""Tables of statistics: matrices, describe, meta-analysis, histograms, quantiles."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from tessera import plots
from tessera.analytics.results._core import (
    Result,
    Table,
    format_value,
    guarantee,
    pandas,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ['MatrixResult', 'DescribeResult', 'MetaResult', 'HistogramResult', 'QuantilesResult']

_fmt = format_value

class MatrixResult(Result):
    """A covariance or correlation matrix as a DataFrame indexed by column (``to_frame()``,
    ``matrix``), and the row count (``nobs``)."""

    @property
    def key(self) -> str:
        return "correlation" if "correlation" in self.outputs else "covariance"

    @property
    def title(self) -> str:  # type: ignore[override]
        return f"{self.key.capitalize()} Matrix"

    @property
    def nobs(self) -> int:
        return int(self.outputs.get("count", 0))

    @property
    def matrix(self) -> pd.DataFrame:
        cols = list(self.outputs.get("columns") or self.job_params.get("columns", []))
        return pandas().DataFrame(np.asarray(self.outputs[self.key], dtype=np.float64), index=cols, columns=cols)

    def info(self) -> list[tuple[str, Any]]:
        return [("No. Observations", self.nobs), ("Columns", len(self.matrix))]

    def tables(self) -> list[Table]:
        m = self.matrix
        return [Table(list(m.columns), list(m.index), m.to_numpy().tolist())]

    def to_frame(self) -> pd.DataFrame:
        return self.matrix

    def headline(self) -> str:
        return f"{len(self.matrix)} x {len(self.matrix)}, n={self.nobs}"


class DescribeResult(Result):
    """Per-column statistics as ``DataFrame.describe()`` lays them out: a frame with one column
    per data column and rows count, mean, std, var, sum (min, max where released)."""

    title = "Descriptive Statistics"
    _ORDER = ("count", "mean", "std", "var", "min", "max", "sum")

    @property
    def columns(self) -> list[str]:
        return [k for k, v in self.outputs.items() if isinstance(v, Mapping) and k != "guarantee"]

    def to_frame(self) -> pd.DataFrame:
        data: dict[str, dict[str, Any]] = {}
        for c in self.columns:
            stats = dict(self.outputs[c])
            if "count" in self.outputs:
                stats.setdefault("count", self.outputs["count"])
            data[c] = stats
        frame = pandas().DataFrame(data)
        order = [r for r in self._ORDER if r in frame.index] + [r for r in frame.index if r not in self._ORDER]
        return frame.loc[order]

    def tables(self) -> list[Table]:
        f = self.to_frame()
        return [Table([str(c) for c in f.columns], [str(i) for i in f.index], f.to_numpy().tolist())]

    def info(self) -> list[tuple[str, Any]]:
        n = self.outputs.get("count", self.outputs.get("noisy_count"))
        return [("Analysis", f"{self.analysis} v{self.version}"), ("No. Observations", n), *guarantee(self.outputs)]

    def headline(self) -> str:
        return f"{len(self.columns)} columns, n={self.outputs.get('count', self.outputs.get('noisy_count'))}"


class MetaResult(Result):
    """A fixed- and random-effects meta-analysis: one row per model (effect, std err, z, p,
    interval) and the heterogeneity (Q, its p-value, I^2, tau^2). Per-study estimates are not
    released (only the pooled ones), so a forest plot shows the pooled estimates alone."""

    title = "Meta-analysis (inverse variance)"

    @property
    def confidence(self) -> float:
        return float(self.job_params.get("confidence", 0.95))

    def to_frame(self) -> pd.DataFrame:
        t = self.tables()[0] if "fixed_effect" in self.outputs else None
        if t is None:
            return pandas().DataFrame()
        return pandas().DataFrame(t.rows, index=t.index, columns=t.columns)

    def tables(self) -> list[Table]:
        if "fixed_effect" not in self.outputs:
            return []
        a = 1 - self.confidence
        rows = []
        for label in ("fixed", "random"):
            est, se = float(self.outputs[f"{label}_effect"]), float(self.outputs[f"{label}_se"])
            lo, hi = self.outputs[f"{label}_ci"]
            rows.append([est, se, est / se if se else math.nan, float(self.outputs[f"{label}_p_value"]),
                         float(lo), float(hi)])
        return [Table(["effect", "std err", "z", "P>|z|", f"[{a / 2:g}", f"{1 - a / 2:g}]"],
                      ["fixed (inverse variance)", "random (DerSimonian-Laird)"], rows)]

    def info(self) -> list[tuple[str, Any]]:
        o = self.outputs
        return [("Outcome", self.job_params.get("outcome")), ("Treatment", self.job_params.get("treatment")),
                ("Studies", o.get("studies")), ("Q", o.get("q")), ("Prob (Q)", o.get("q_p_value")),
                ("I^2", o.get("i2")), ("tau^2", o.get("tau2"))]

    def notes(self) -> list[str]:
        return ["per-study estimates are not released: only the pooled estimates are shown"]

    def headline(self) -> str:
        if "fixed_effect" not in self.outputs:
            return f"{self.outputs.get('studies')} studies, no estimates"
        return (f"{self.outputs['studies']} studies, fixed={_fmt(self.outputs['fixed_effect'])}, "
                f"random={_fmt(self.outputs['random_effect'])}, I^2={_fmt(self.outputs['i2'])}")

    def plot(self, ax: Any = None) -> Any:
        """A forest plot of the pooled estimates (fixed and random) with their intervals."""
        t = self.tables()
        if not t:
            raise plots.PlotError("this meta-analysis released no estimates to plot")
        rows = t[0].rows
        return plots.forest(["Fixed effect", "Random effects"], [r[0] for r in rows], [r[4] for r in rows],
                            [r[5] for r in rows], ax=ax, pooled=[True, True],
                            title=f"{self.job_params.get('outcome')}: pooled effect of {self.job_params.get('treatment')} "
                                  f"({self.outputs.get('studies')} studies, {self.confidence:.0%} CI)")


class HistogramResult(Result):
    """A histogram (``histogram``, ``dp_histogram``): one row per bin (left, right edge, count;
    suppressed bins have no count; noisy counts for the DP variant)."""

    title = "Histogram"

    @property
    def edges(self) -> list[float]:
        return [float(x) for x in self.outputs.get("edges", self.job_params.get("edges", []))]

    @property
    def counts(self) -> list[Any]:
        return list(self.outputs.get("counts", self.outputs.get("noisy_counts", [])))

    def tables(self) -> list[Table]:
        e, c = self.edges, self.counts
        sup = self.outputs.get("suppressed") or [False] * len(c)
        cols = ["left", "right", "count"] + (["suppressed"] if "suppressed" in self.outputs else [])
        rows = [[e[i], e[i + 1], c[i]] + ([bool(sup[i])] if "suppressed" in self.outputs else []) for i in range(len(c))]
        return [Table(cols, [f"bin {i}" for i in range(len(c))], rows)]

    def info(self) -> list[tuple[str, Any]]:
        out: list[tuple[str, Any]] = [("Column", self.job_params.get("column")), ("Bins", len(self.counts))]
        if "ci95_half_width" in self.outputs:
            out.append(("95% CI half-width", self.outputs["ci95_half_width"]))
        return out + guarantee(self.outputs)

    def headline(self) -> str:
        return f"{self.job_params.get('column')}: {len(self.counts)} bins"

    def plot(self, ax: Any = None) -> Any:
        """The bars of the histogram (suppressed bins left empty and marked)."""
        return plots.bars(self.edges, [None if v is None else float(v) for v in self.counts], ax=ax,
                          title=f"{self.job_params.get('column')}")


class QuantilesResult(Result):
    """Quantiles as a Series indexed by level (``numpy.quantile(..., method="inverted_cdf")``)."""

    title = "Quantiles"

    @property
    def quantiles(self) -> pd.Series:
        return pandas().Series([float(v) for v in self.outputs.get("quantiles", [])],
                            index=[float(q) for q in self.outputs.get("q", [])], name=self.job_params.get("column"))

    def tables(self) -> list[Table]:
        s = self.quantiles
        return [Table(["value"], [f"q={q:g}" for q in s.index], [[float(v)] for v in s])]

    def to_frame(self) -> pd.DataFrame:
        return self.quantiles.to_frame()

    def info(self) -> list[tuple[str, Any]]:
        return [("Column", self.job_params.get("column")), ("No. Observations", self.outputs.get("n"))]

    def headline(self) -> str:
        return ", ".join(f"q{q:g}={_fmt(v)}" for q, v in self.quantiles.items())
