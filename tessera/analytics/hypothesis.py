"""Hypothesis tests: Welch's two-sample ``ttest`` and the ``chi2`` test of independence."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field

from tessera.analytics.base import Analysis, Local, Params, Plan, Release
from tessera.analytics.common import (
    DEFAULT_MAX_ROWS,
    check_magnitude,
    numeric_columns,
    received,
    scaling_for,
    secure_sum,
)
from tessera.analytics.registry import register
from tessera.data.local import LocalTable
from tessera.data.schema import ColumnType, Schema
from tessera.errors import PlanError
from tessera.mpc import approx
from tessera.mpc.session import Session
from tessera.mpc.tensor import concatenate

__all__ = ["WelchTTest", "Chi2Independence"]


class TTestParams(Params):
    value: str
    group: str = Field(description="a boolean column: the test compares rows where it is true with the others")
    min_group_rows: int = Field(2, ge=2)
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0)


@register
class WelchTTest(Analysis[TTestParams]):
    """Welch's unequal-variance t-test of ``value`` between the two groups of ``group``
    (``scipy.stats.ttest_ind(x[group], x[~group], equal_var=False)``)."""

    name = "ttest"
    version = "1.0"
    params_model = TTestParams
    description = "Welch two-sample t-test: t statistic, degrees of freedom, p-value"

    def plan(self, schema: Schema, params: TTestParams, partition: str, parties: list[str]) -> Plan:
        numeric_columns(schema, [params.value])
        if schema.column(params.group).type is not ColumnType.BOOL:
            raise PlanError(f"the group column {params.group!r} must be boolean")
        frac = 24
        check_magnitude("a sum of scaled squares (at most one per row)", params.max_rows, frac,
                        "declare a smaller row-count bound")
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.value, params.group],
            local=["scale the value column to [-1, 1] by its declared bounds",
                   "per group: row count, sum and sum of squares"],
            secure=["add the parties' group statistics", "group means and sample variances",
                    "t = (mean_1 - mean_0) / sqrt(v_0/n_0 + v_1/n_1) with a secure inverse square root",
                    "Welch-Satterthwaite degrees of freedom with a secure reciprocal"],
            release=[Release("n_true, n_false", "group sizes (to every party; checked against the minimum)"),
                     Release("t", "t statistic"), Release("df", "Welch degrees of freedom"),
                     Release("p_value", "two-sided p-value (public function of t and df)")],
            frac_bits=frac, scaling=scaling_for(schema, [params.value]),
        )

    def local(self, columns: LocalTable, params: TTestParams, plan: Plan) -> Local:
        c, h = plan.scaling[params.value]
        x = (columns[params.value] - c) / h
        g = columns[params.group] > 0.5
        out = []
        for sel in (g, ~g):
            out += [sel.sum(), x[sel].sum(), (x[sel] ** 2).sum()]
        return {"groups": np.array(out, dtype=np.float64)}

    def secure(self, session: Session, local: Local, params: TTestParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        tot = secure_sum(session, local["groups"], (6,))
        n1, n0 = (round(float(v)) for v in session.reveal(tot[0], tot[3]))
        if min(n0, n1) < params.min_group_rows:
            raise PlanError(f"a group has fewer than {params.min_group_rows} rows; the test is not run")
        n = n0 + n1
        m1, m0 = tot[1].scale(1 / n1, bound=n1), tot[4].scale(1 / n0, bound=n0)
        v1 = (tot[2].scale(1 / n1, bound=n1) - m1 * m1).scale(n1 / (n1 - 1), bound=1.0)
        v0 = (tot[5].scale(1 / n0, bound=n0) - m0 * m0).scale(n0 / (n0 - 1), bound=1.0)
        b0, b1 = v0.scale(n1 / n, bound=1.0), v1.scale(n0 / n, bound=1.0)  # n0 n1 / n * se^2 = b0 + b1
        s = b0 + b1
        t = (m1 - m0) * approx.rsqrt(s) * math.sqrt(n0 * n1 / n)
        inv_s = approx.reciprocal(s)
        u0, u1 = b0 * inv_s, b1 * inv_s
        den = (u0 * u0).scale(n / (n0 - 1), bound=1.0) + (u1 * u1).scale(n / (n1 - 1), bound=1.0)
        got = received(session.reveal(t, den, to=plan.recipients))
        out: dict[str, Any] = {"n_true": n1, "n_false": n0}
        if got is None:
            return out
        t_, den_ = got
        from scipy import stats  # imported where used: ~1 s per process, and only released p-values need it
        df = n / float(den_)
        return {**out, "t": float(t_), "df": df, "p_value": float(2 * stats.t.sf(abs(float(t_)), df))}


class Chi2Params(Params):
    row: str
    column: str
    max_rows: int = Field(500_000, gt=0)


@register
class Chi2Independence(Analysis[Chi2Params]):
    """Pearson's chi-square test of independence of two categorical (or boolean) columns, over
    their contingency table with public levels (``scipy.stats.chi2_contingency(table,
    correction=False)``). The table itself is never revealed.

    Precision: ``n (O - E) = n O - R C`` is computed exactly in integers and the margins'
    reciprocals from 28-bit proportions, so the statistic's relative error is about 2e-7
    (measured <= 3e-5 absolute at chi2 = 143, n = 30,000). Rows are limited to 500,000
    (``n * O`` is encoded with 24 fractional bits).
    """

    name = "chi2"
    version = "1.0"
    params_model = Chi2Params
    description = "chi-square test of independence: statistic, degrees of freedom, p-value"

    @staticmethod
    def _levels(schema: Schema, name: str) -> int:
        col = schema.column(name)
        if col.type is ColumnType.BOOL:
            return 2
        if col.type is ColumnType.CATEGORY:
            assert col.levels is not None
            return len(col.levels)
        raise PlanError(f"column {name!r} must be categorical or boolean for a chi-square test")

    def plan(self, schema: Schema, params: Chi2Params, partition: str, parties: list[str]) -> Plan:
        r, c = self._levels(schema, params.row), self._levels(schema, params.column)
        check_magnitude("n times a cell count", float(params.max_rows) ** 2, 24,
                        "declare a smaller row-count bound (at most 500,000 rows)")
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.row, params.column],
            local=[f"count the {r} x {c} contingency table of the party's rows"],
            secure=["add the parties' tables", "expected counts from the margins",
                    "chi2 = sum (O - E)^2 / E with secure reciprocals of the margin proportions"],
            release=[Release("n", "total rows (to every party)"), Release("chi2", "the statistic"),
                     Release("dof", "(rows - 1)(columns - 1), public"),
                     Release("p_value", "public function of chi2 and dof")],
            frac_bits=24, meta={"levels": (r, c)},
        )

    def local(self, columns: LocalTable, params: Chi2Params, plan: Plan) -> Local:
        a = columns[params.row].astype(np.int64)
        b = columns[params.column].astype(np.int64)
        r, c = plan.meta["levels"]
        table = np.zeros((r, c), dtype=np.int64)
        np.add.at(table, (a, b), 1)
        return {"table": table}

    def secure(self, session: Session, local: Local, params: Chi2Params, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        table = local["table"]
        r, c = table.shape
        obs = None
        for p in range(session.n_parties):
            part = session.input(p, table if p == session.me else None, shape=(r, c), frac_bits=0)
            obs = part if obs is None else obs + part
        assert obs is not None
        rows, cols = obs.sum(axis=1), obs.sum(axis=0)
        (n_,) = session.reveal(rows.sum())
        n = int(n_)
        f = plan.frac_bits
        # n (O - E) = n O - R C is an exact integer: no rounding of the expected counts at all
        exact = obs * n - rows.reshape(r, 1) * cols.reshape(1, c)
        d = approx.at_scale(exact, f).scale(1 / n**1.5, bound=float(n) ** 2)  # (O - E) / sqrt(n)
        # 1 / (row and column proportions), each from 28-bit proportions so that small margins keep
        # their relative precision; their outer product is 1 / (r_i c_j) at the working scale
        fine = f + 4
        props = approx.at_scale(concatenate([rows, cols]), fine).scale(1 / n, bound=float(n))
        inv_props = approx.at_scale(approx.reciprocal(props), f)
        inv = inv_props[:r].reshape(r, 1) * inv_props[r:].reshape(1, c)
        chi2 = ((d * inv) * d).sum()  # d * inv first: keeps the ULP of d^2 from being amplified by 1/E
        (chi2_,) = session.reveal(chi2, to=plan.recipients)
        dof = (r - 1) * (c - 1)
        out: dict[str, Any] = {"n": n, "dof": dof}
        if chi2_ is None:
            return out
        from scipy import stats  # imported where used: ~1 s per process, and only released p-values need it
        return {**out, "chi2": float(chi2_), "p_value": float(stats.chi2.sf(float(chi2_), dof))}


