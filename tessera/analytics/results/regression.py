"""Regression results: linear (statsmodels' OLS) and logistic (statsmodels' Logit)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tessera import plots
from tessera.analytics.results._core import (
    INTERCEPT,
    Result,
    Table,
    format_value,
    guarantee,
    pandas,
    scipy_stats,
    vector,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ['RegressionResult', 'LogitResult']

_fmt = format_value

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
        return pandas().Series(vector(self.outputs[key]), index=self.feature_names, name=name)

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
        return pandas().Series(2 * self._dist().sf(np.abs(t.to_numpy())), index=t.index, name=f"P>|{self.stat}|")

    def _dist(self) -> Any:
        return scipy_stats().t(self.df_resid)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame | None:
        """The ``1 - alpha`` confidence intervals, columns 0 (lower) and 1 (upper), as statsmodels."""
        bse = self.bse
        if bse is None:
            return None
        q = float(self._dist().ppf(1 - alpha / 2))
        b = self.params
        return pandas().DataFrame({0: b - q * bse, 1: b + q * bse})

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
        return None if f is None else float(scipy_stats().f.sf(f, self.df_model, self.df_resid))

    def info(self) -> list[tuple[str, Any]]:
        dp = self.analysis.startswith("dp_")
        ridge = float(self.job_params.get("ridge", 0.0) or 0.0)
        out: list[tuple[str, Any]] = [
            ("Dep. Variable", self.job_params.get("target", "y")),
            ("Model", "DP OLS" if dp else ("Ridge" if ridge else "OLS")),
            ("No. Observations" + (" (noisy)" if self.nobs is None else ""),
             self.nobs if self.nobs is not None else self.outputs.get("noisy_n")),
            ("Df Residuals", None if self.nobs is None else int(self.df_resid)),
            ("Df Model", self.df_model),
        ]
        if ridge and not dp:
            out.append(("Ridge alpha", ridge))
        if self.rsquared is not None:
            out += [("R-squared", self.rsquared), ("Adj. R-squared", self.rsquared_adj),
                    ("F-statistic", self.fvalue), ("Prob (F-statistic)", self.f_pvalue)]
        out += guarantee(self.outputs)
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
        if self.nobs is None:
            return f"{self.job_params.get('target')} ~ {len(self.feature_names) - 1} features, noisy n={_fmt(self.outputs.get('noisy_n'))}"
        extra = f", R^2={_fmt(self.rsquared)}" if self.rsquared is not None else ""
        return f"{self.job_params.get('target')} ~ {len(self.feature_names) - 1} features, n={self.nobs}{extra}"

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient (``const`` first): coef, std err, t/z, p, interval."""
        t = self.coefficient_table()
        return pandas().DataFrame(t.rows, index=t.index, columns=t.columns)

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
        return scipy_stats().norm()

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
        return out + guarantee(self.outputs)

    def notes(self) -> list[str]:
        out = [] if self.bse is not None else [
            "standard errors are not released by the DP variant" if self.analysis.startswith("dp_")
            else "standard errors were not released by this job (inference=false)"]
        return [*out, "the log-likelihood and pseudo-R^2 are not released"]

    def headline(self) -> str:
        if "coefficients" not in self.outputs:
            return f"n={self.nobs}, no estimates"
        return f"{self.job_params.get('target')} ~ {len(self.feature_names) - 1} features, n={self.nobs}"

