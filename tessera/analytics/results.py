"""Result objects: a job's released outputs, named and laid out as statsmodels, scipy and pandas
users expect.

Every analysis turns the outputs a recipient received into a :class:`Result`
(:meth:`tessera.analytics.base.Analysis.result`): a class of its own where one fits
(:class:`RegressionResult`, :class:`LogitResult`, :class:`TTestResult`, :class:`Chi2Result`,
:class:`MatrixResult`, :class:`DescribeResult`, :class:`MetaResult`, :class:`HistogramResult`,
:class:`QuantilesResult`), the generic :class:`Result` otherwise. Every result has

* named estimates: pandas Series/DataFrames indexed by feature or column; a regression's
  intercept is named ``"const"`` (:data:`INTERCEPT`, as statsmodels' ``add_constant``);
* ``summary()``: a statsmodels-like text table (a :class:`Summary`; it also renders as HTML);
* ``to_frame()`` (pandas) and ``to_dict()`` (plain JSON-able lists and numbers; NaN and
  infinities become ``None``);
* ``revealed`` (what the job revealed, to whom) and ``plan`` (the plan's text), and the raw
  ``outputs`` (``result["coefficients"]`` still works);
* a short ``repr`` and ``_repr_html_`` for notebooks, and ``plot()`` (:mod:`tessera.plots`).

Nothing here computes on secret data: every value is a public function of the released outputs
(p-values, intervals, adjusted R^2, the expected table from released margins). pandas and scipy
are imported when a result is first asked for a frame or a p-value (a party process never is).
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import numpy as np

from tessera import plots

if TYPE_CHECKING:
    import pandas as pd

    from tessera.analytics.base import Plan
    from tessera.data.schema import Schema

__all__ = ["INTERCEPT", "Result", "Summary", "Table", "RegressionResult", "LogitResult", "TTestResult",
           "ConfidenceInterval", "Chi2Result", "MatrixResult", "DescribeResult", "MetaResult", "HistogramResult",
           "QuantilesResult", "plain", "format_value"]

#: The name of a regression's intercept in every result (as statsmodels' ``add_constant``).
INTERCEPT = "const"

#: Width of a text summary (statsmodels': 78).
WIDTH = 78


def plain(obj: Any) -> Any:
    """A JSON-able copy of ``obj``: arrays and tuples as (nested) lists, numpy scalars as Python
    numbers, NaN and infinities as ``None``."""
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, Mapping):
        return {str(k): plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    return obj


def format_value(v: Any) -> str:
    """One cell of a text table (statsmodels-like: 4 significant decimals, scientific when tiny or large)."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        x = float(v)
        if not math.isfinite(x):
            return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
        if x == 0:
            return "0.0000"
        if abs(x) >= 1e6 or abs(x) < 1e-4:
            return f"{x:.3e}"
        return f"{x:.4f}"
    return str(v)


_fmt = format_value


@dataclass(frozen=True)
class Table:
    """One table of a summary: a header, row labels and cells (raw values; formatted when shown)."""

    columns: list[str]
    index: list[str]
    rows: list[list[Any]]
    title: str = ""


@dataclass(frozen=True)
class Summary:
    """A statsmodels-like summary: a title, a block of facts (two per line) and tables. ``str()``
    is the text, ``_repr_html_`` the same as HTML; ``info`` and ``tables`` hold the values."""

    title: str
    info: list[tuple[str, Any]]
    tables: list[Table]
    notes: list[str] = field(default_factory=list)

    def as_text(self) -> str:
        rule, thin = "=" * WIDTH, "-" * WIDTH
        lines = [self.title.center(WIDTH).rstrip(), rule]
        half = WIDTH // 2
        cells = [f"{k + ':':<{half - 1 - len(_fmt(v))}}{_fmt(v)}" if len(k) + len(_fmt(v)) < half - 2
                 else f"{k}: {_fmt(v)}" for k, v in self.info]
        for i in range(0, len(cells), 2):
            pair = cells[i:i + 2]
            lines.append((pair[0].ljust(half) + (pair[1] if len(pair) > 1 else "")).rstrip())
        for t in self.tables:
            lines.append(rule)
            if t.title:
                lines += [t.title.center(WIDTH).rstrip(), thin]
            body = [[_fmt(v) for v in row] for row in t.rows]
            first = max([len(s) for s in t.index] + [8])
            widths = [max([len(c) + 1, 10] + [len(r[j]) + 1 for r in body]) for j, c in enumerate(t.columns)]
            lines.append(" " * first + "".join(c.rjust(w) for c, w in zip(t.columns, widths)))
            lines.append(thin)
            lines += [label.ljust(first) + "".join(s.rjust(w) for s, w in zip(r, widths))
                      for label, r in zip(t.index, body)]
        lines.append(rule)
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        esc = html.escape
        out = [f"<table class='tessera-summary'><caption>{esc(self.title)}</caption>"]
        out += [f"<tr><th style='text-align:left'>{esc(k)}</th><td>{esc(_fmt(v))}</td></tr>" for k, v in self.info]
        out.append("</table>")
        for t in self.tables:
            out.append("<table class='tessera-summary'>" + (f"<caption>{esc(t.title)}</caption>" if t.title else ""))
            out.append("<tr><th></th>" + "".join(f"<th>{esc(c)}</th>" for c in t.columns) + "</tr>")
            out += ["<tr><th style='text-align:left'>" + esc(label) + "</th>" +
                    "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>" for label, row in zip(t.index, t.rows)]
            out.append("</table>")
        out += [f"<p>Note: {esc(n)}</p>" for n in self.notes]
        return "".join(out)


def _pd() -> Any:
    import pandas  # imported where used: a party process never builds a result

    return pandas


def _stats() -> Any:
    from scipy import stats  # imported where used (about 1 s)

    return stats


class Result:
    """The released outputs of one job of ``analysis``, as a recipient received them.

    ``outputs`` are the raw outputs (``result[name]`` reads one), ``job_params`` the job's
    validated parameters, ``revealed`` what it revealed to whom, ``plan`` the plan's text (``plan_object``
    the :class:`~tessera.analytics.base.Plan` where it is known). Subclasses name the estimates.
    """

    #: the title of :meth:`summary`
    title: ClassVar[str] = "Results"

    def __init__(self, analysis: str, version: str, outputs: Mapping[str, Any], params: Mapping[str, Any], *,
                 revealed: Sequence[str] = (), plan: str = "", plan_object: Plan | None = None,
                 schema: Schema | None = None) -> None:
        self.analysis = analysis
        self.version = version
        self.outputs = dict(outputs)
        self.job_params = dict(params)
        self.revealed = list(revealed)
        self.plan = plan
        self.plan_object = plan_object
        self.schema = schema

    def __getitem__(self, key: str) -> Any:
        return self.outputs[key]

    def __contains__(self, key: object) -> bool:
        return key in self.outputs

    # -- what subclasses describe -----------------------------------------------------------

    def info(self) -> list[tuple[str, Any]]:
        """The facts block of :meth:`summary` (label, value)."""
        return [("Analysis", f"{self.analysis} v{self.version}")]

    def tables(self) -> list[Table]:
        """The tables of :meth:`summary`. The generic result: one row per output."""
        flat = _flatten(self.outputs)
        return [Table(["value"], list(flat), [[_cell(v)] for v in flat.values()])] if flat else []

    def notes(self) -> list[str]:
        return []

    def headline(self) -> str:
        """The few words of the ``repr``."""
        return ", ".join(f"{k}={_fmt(v)}" for k, v in list(_flatten(self.outputs).items())[:4]
                         if not isinstance(v, (list, dict)))

    # -- the common surface -----------------------------------------------------------------

    def summary(self) -> Summary:
        """A statsmodels-like summary of the result (``print(result.summary())``)."""
        return Summary(self.title, self.info(), self.tables(), self.notes())

    def to_frame(self) -> pd.DataFrame:
        """The main table of the result as a pandas DataFrame."""
        tables = self.tables()
        if not tables:
            return _pd().DataFrame()
        t = tables[0]
        return _pd().DataFrame(t.rows, index=t.index, columns=t.columns)

    def to_dict(self) -> dict[str, Any]:
        """Analysis, version, the outputs and what was revealed, as plain JSON-able values (no
        ``__ndarray__`` wrappers: arrays are lists, NaN is ``None``)."""
        return {"analysis": self.analysis, "version": self.version, "outputs": plain(self.outputs),
                "revealed": list(self.revealed)}

    def plot(self, ax: Any = None) -> Any:
        """A plot of the result on ``ax`` (a new figure if None); returns the axes. Needs
        matplotlib (``pip install tessera[plots]``)."""
        raise plots.PlotError(f"{self.analysis} results have no plot")

    def __repr__(self) -> str:
        head = self.headline()
        return f"<{type(self).__name__} {self.analysis} v{self.version}" + (f": {head}>" if head else ">")

    def _repr_html_(self) -> str:
        return self.summary()._repr_html_()


def _flatten(outputs: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in outputs.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _cell(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return ", ".join(_fmt(x) for x in v.reshape(-1)) if v.size <= 8 else f"array of shape {v.shape}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v) if len(v) <= 8 else f"{len(v)} values"
    return v


def _vector(v: Any) -> np.ndarray:
    return np.asarray(v, dtype=np.float64).reshape(-1)


class RegressionResult(Result):
    """A linear regression (``linear_regression``, ``dp_linear_regression``) as statsmodels'
    ``OLS(y, add_constant(X)).fit()``: ``params``, ``bse``, ``tvalues``, ``pvalues``,
    ``conf_int()``, ``nobs``, ``df_resid``, ``rsquared``, ``rsquared_adj``, ``fvalue``.
    Quantities the job did not release (e.g. standard errors of a ridge fit) are None.
    The log-likelihood is not released (it needs the residual sum of squares)."""

    title = "OLS Regression Results"
    #: the test statistic's name in the summary (``t`` for OLS, ``z`` for Logit)
    stat = "t"

    @property
    def feature_names(self) -> list[str]:
        return [INTERCEPT, *self.job_params.get("features", [])]

    def _series(self, key: str, name: str) -> pd.Series | None:
        if key not in self.outputs:
            return None
        return _pd().Series(_vector(self.outputs[key]), index=self.feature_names, name=name)

    @property
    def params(self) -> pd.Series:
        """The coefficients, indexed ``const``, then the features (statsmodels' ``params``)."""
        s = self._series("coefficients", "coef")
        assert s is not None
        return s

    @property
    def coef(self) -> pd.Series:
        return self.params

    @property
    def bse(self) -> pd.Series | None:
        return self._series("std_errors", "std err")

    @property
    def tvalues(self) -> pd.Series | None:
        if "t" in self.outputs:
            return self._series("t", self.stat)
        bse = self.bse
        return None if bse is None else (self.params / bse).rename(self.stat)

    @property
    def pvalues(self) -> pd.Series | None:
        if "p_values" in self.outputs:
            return self._series("p_values", f"P>|{self.stat}|")
        t = self.tvalues
        if t is None:
            return None
        return _pd().Series(2 * self._dist().sf(np.abs(t.to_numpy())), index=t.index, name=f"P>|{self.stat}|")

    def _dist(self) -> Any:
        return _stats().t(self.df_resid)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame | None:
        """The ``1 - alpha`` confidence intervals, columns 0 (lower) and 1 (upper), as statsmodels."""
        bse = self.bse
        if bse is None:
            return None
        q = float(self._dist().ppf(1 - alpha / 2))
        b = self.params
        return _pd().DataFrame({0: b - q * bse, 1: b + q * bse})

    @property
    def nobs(self) -> int | None:
        n = self.outputs.get("n")
        return None if n is None else int(n)

    @property
    def df_model(self) -> int:
        return len(self.job_params.get("features", []))

    @property
    def df_resid(self) -> float:
        n = self.nobs
        return float("nan") if n is None else float(n - self.df_model - 1)

    @property
    def rsquared(self) -> float | None:
        r2 = self.outputs.get("r2")
        return None if r2 is None else float(r2)

    @property
    def rsquared_adj(self) -> float | None:
        r2, n = self.rsquared, self.nobs
        if r2 is None or n is None:
            return None
        return 1 - (1 - r2) * (n - 1) / self.df_resid

    @property
    def fvalue(self) -> float | None:
        r2 = self.rsquared
        if r2 is None:
            return None
        return (r2 / self.df_model) / ((1 - r2) / self.df_resid) if r2 < 1 else float("inf")

    @property
    def f_pvalue(self) -> float | None:
        f = self.fvalue
        return None if f is None else float(_stats().f.sf(f, self.df_model, self.df_resid))

    def info(self) -> list[tuple[str, Any]]:
        ridge = float(self.job_params.get("ridge", 0.0) or 0.0)
        out: list[tuple[str, Any]] = [
            ("Dep. Variable", self.job_params.get("target", "y")),
            ("Model", "Ridge" if ridge else ("DP OLS" if self.analysis.startswith("dp_") else "OLS")),
            ("No. Observations", self.nobs if self.nobs is not None else self.outputs.get("noisy_n")),
            ("Df Residuals", None if self.nobs is None else int(self.df_resid)),
            ("Df Model", self.df_model),
        ]
        if ridge:
            out.append(("Ridge alpha", ridge))
        if self.rsquared is not None:
            out += [("R-squared", self.rsquared), ("Adj. R-squared", self.rsquared_adj),
                    ("F-statistic", self.fvalue), ("Prob (F-statistic)", self.f_pvalue)]
        out += _guarantee(self.outputs)
        return out

    def coefficient_table(self, alpha: float = 0.05) -> Table:
        """coef, std err, t (or z), P>|t|, [0.025, 0.975] per coefficient (statsmodels' labels)."""
        b = self.params
        lo, hi = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
        bse, t, p, ci = self.bse, self.tvalues, self.pvalues, self.conf_int(alpha)
        if bse is None or t is None or p is None or ci is None:
            return Table(["coef"], list(b.index), [[float(v)] for v in b])
        rows = [[float(b.iloc[i]), float(bse.iloc[i]), float(t.iloc[i]), float(p.iloc[i]), float(ci[0].iloc[i]),
                 float(ci[1].iloc[i])] for i in range(len(b))]
        return Table(["coef", "std err", self.stat, f"P>|{self.stat}|", lo, hi], list(b.index), rows)

    def tables(self) -> list[Table]:
        return [self.coefficient_table()] if "coefficients" in self.outputs else []

    def notes(self) -> list[str]:
        out = [] if self.bse is not None else ["standard errors were not released by this job"]
        return [*out, "the log-likelihood is not released"] if self.analysis == "linear_regression" else out

    def headline(self) -> str:
        if "coefficients" not in self.outputs:
            return f"n={self.nobs}, no estimates"
        extra = f", R^2={_fmt(self.rsquared)}" if self.rsquared is not None else ""
        return f"{self.job_params.get('target')} ~ {len(self.feature_names) - 1} features, n={self.nobs}{extra}"

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient (``const`` first): coef, std err, t/z, p, interval."""
        t = self.coefficient_table()
        return _pd().DataFrame(t.rows, index=t.index, columns=t.columns)

    def plot(self, ax: Any = None) -> Any:
        """Coefficients with their 95% intervals (intercept left out: its scale differs)."""
        b, ci = self.params.iloc[1:], self.conf_int()
        lo = None if ci is None else ci[0].iloc[1:].to_numpy()
        hi = None if ci is None else ci[1].iloc[1:].to_numpy()
        return plots.coefficients(list(b.index), b.to_numpy(), lo, hi, ax=ax,
                                  title=f"{self.job_params.get('target')}: coefficients" + (" (95% CI)" if ci is not None else ""))


class LogitResult(RegressionResult):
    """A logistic regression as statsmodels' ``Logit(y, add_constant(X)).fit()``: ``params``,
    ``bse`` (when the job released standard errors), ``tvalues`` (z), ``pvalues`` (Wald),
    ``conf_int()`` (normal). The log-likelihood and pseudo-R^2 are not released."""

    title = "Logit Regression Results"
    stat = "z"

    def _dist(self) -> Any:
        return _stats().norm()

    @property
    def classes_(self) -> np.ndarray:
        return np.array([False, True])

    @property
    def df_resid(self) -> float:
        n = self.nobs
        return float("nan") if n is None else float(n - self.df_model - 1)

    def info(self) -> list[tuple[str, Any]]:
        c = self.job_params.get("C")
        out: list[tuple[str, Any]] = [
            ("Dep. Variable", self.job_params.get("target", "y")),
            ("Model", "DP Logit" if self.analysis.startswith("dp_") else "Logit"),
            ("Method", "Newton (MPC)"),
            ("No. Observations", self.nobs),
            ("Df Residuals", None if self.nobs is None else int(self.df_resid)),
            ("Df Model", self.df_model),
            ("Iterations", self.job_params.get("iterations")),
            ("Penalty (C)", "none" if c is None else c),
        ]
        for k in ("holdout_rows", "holdout_accuracy", "holdout_auc"):
            if k in self.outputs:
                out.append((k.replace("_", " ").capitalize() + " (own)", self.outputs[k]))
        return out + _guarantee(self.outputs)

    def notes(self) -> list[str]:
        out = [] if self.bse is not None else ["standard errors were not released by this job (inference=false)"]
        return [*out, "the log-likelihood and pseudo-R^2 are not released"]

    def headline(self) -> str:
        if "coefficients" not in self.outputs:
            return f"n={self.nobs}, no estimates"
        return f"{self.job_params.get('target')} ~ {len(self.feature_names) - 1} features, n={self.nobs}"


def _guarantee(outputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    g = outputs.get("guarantee")
    if not isinstance(g, Mapping):
        return []
    return [("DP epsilon", g.get("epsilon")), ("DP delta", g.get("delta"))]


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
        q = float(_stats().t.ppf(0.5 + confidence_level / 2, self.df))
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
        return _pd().DataFrame([{"statistic": self.statistic, "df": self.df, "pvalue": self.pvalue,
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
        frame = _pd().DataFrame(e, index=self._levels(row, e.shape[0]), columns=self._levels(col, e.shape[1]))
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
        return _pd().DataFrame([{"statistic": self.statistic, "pvalue": self.pvalue, "dof": self.dof,
                                 "n": self.outputs.get("n")}], index=["chi2"])

    def headline(self) -> str:
        return f"statistic={_fmt(self.statistic)}, dof={self.dof}, pvalue={_fmt(self.pvalue)}"


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
        return _pd().DataFrame(np.asarray(self.outputs[self.key], dtype=np.float64), index=cols, columns=cols)

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
        frame = _pd().DataFrame(data)
        order = [r for r in self._ORDER if r in frame.index] + [r for r in frame.index if r not in self._ORDER]
        return frame.loc[order]

    def tables(self) -> list[Table]:
        f = self.to_frame()
        return [Table([str(c) for c in f.columns], [str(i) for i in f.index], f.to_numpy().tolist())]

    def info(self) -> list[tuple[str, Any]]:
        n = self.outputs.get("count", self.outputs.get("noisy_count"))
        return [("Analysis", f"{self.analysis} v{self.version}"), ("No. Observations", n), *_guarantee(self.outputs)]

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
            return _pd().DataFrame()
        return _pd().DataFrame(t.rows, index=t.index, columns=t.columns)

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
        return out + _guarantee(self.outputs)

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
        return _pd().Series([float(v) for v in self.outputs.get("quantiles", [])],
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
