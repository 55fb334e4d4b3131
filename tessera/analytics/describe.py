"""``describe``: count, sum, mean, variance, standard deviation, min and max per column."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tessera.analytics.base import Analysis, Local, Params, Plan, Release, SharedRows
from tessera.analytics.common import (
    DEFAULT_MAX_ROWS,
    check_magnitude,
    numeric_columns,
    received,
    scaling_for,
    secure_sum,
    share_columns,
    vertical_local,
)
from tessera.analytics.registry import register
from tessera.data.local import LocalTable
from tessera.data.schema import Schema
from tessera.mpc import approx
from tessera.mpc import functions as fn
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, concatenate, stack

__all__ = ["Describe"]


class DescribeParams(Params):
    columns: list[str] = Field(min_length=1)
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0, description="declared bound on the total row count")


@register
class Describe(Analysis[DescribeParams]):
    """Per-column summary statistics (as pandas ``describe``, with the sample variance,
    ``ddof=1``) over horizontally partitioned rows, or vertically over the aligned rows (the
    columns secret-shared row-wise, or the rows of a secret-shared join in PSI ``aligned`` mode)."""

    name = "describe"
    version = "1.0"
    params_model = DescribeParams
    partitions = ("horizontal", "vertical")
    description = "count, sum, mean, variance, standard deviation, min and max per column"

    def plan(self, schema: Schema, params: DescribeParams, partition: str, parties: list[str]) -> Plan:
        cols = numeric_columns(schema, params.columns)
        frac = 28
        check_magnitude("the sum of scaled squares (at most one per row)", params.max_rows, frac,
                        "declare a smaller row-count bound")
        vertical = partition == "vertical"
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=cols,
            local=[
                "scale each column to [-1, 1] by its declared bounds (public affine map)",
                "secret-share the party's scaled columns row-wise (PSI aligned mode: its whole list, then the "
                "secret-shared join keeps the common rows)" if vertical else
                "count rows; sum and sum of squares of each scaled column; local min and max",
            ],
            secure=[
                "sums and sums of squares over the shared rows (one product per value); the row count is public"
                if vertical else "add the parties' counts, sums and sums of squares",
                "mean = sum / count; variance = (sum of squares / count - mean^2) * count / (count - 1)",
                "standard deviation = sqrt(variance)",
                "min and max by a tournament of exact comparisons over the "
                + ("shared rows" if vertical else "parties' local extremes"),
            ],
            release=[Release("count", "number of aligned rows (public)" if vertical else
                             "total number of rows (to every party: it finishes the computation)")]
            + [Release(f"{stat}[{c}]", f"{stat} of column {c}") for c in cols
               for stat in ("sum", "mean", "var", "std", "min", "max")],
            frac_bits=frac,
            scaling=scaling_for(schema, cols),
        )

    def local(self, columns: LocalTable, params: DescribeParams, plan: Plan) -> Local:
        if plan.partition == "vertical":
            return vertical_local(columns, plan)
        p = len(plan.columns)
        # one scan in the local engine; the rows never leave DuckDB
        t = columns.sums(plan.columns, scaling=plan.scaling)
        sums = np.concatenate([[t.count], t.sum, t.sum_sq])
        lo, hi = (t.min, t.max) if t.count else (np.ones(p), -np.ones(p))
        return {"sums": sums, "extremes": np.concatenate([lo, hi])}

    def secure(self, session: Session, local: Local, params: DescribeParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        if plan.partition == "vertical":
            return self.secure_rows(session, share_columns(session, local, plan, holders), params, plan)
        p = len(plan.columns)
        totals = secure_sum(session, local["sums"], (1 + 2 * p,))
        count = round(float(session.reveal(totals[0])[0]))
        ext = [session.input(i, local["extremes"] if i == session.me else None, shape=(2 * p,))
               for i in range(session.n_parties)]
        allext = stack(ext)
        lo = fn.min(allext[:, :p], axis=0)
        hi = fn.max(allext[:, p:], axis=0)
        return self._finish(session, plan, count, totals[1 : 1 + p], totals[1 + p :], lo, hi)

    def secure_rows(self, session: Session, rows: SharedRows, params: DescribeParams, plan: Plan) -> dict[str, Any]:
        count = len(rows[plan.columns[0]])
        x = concatenate([rows[c].reshape(count, 1) for c in plan.columns], axis=1)  # scaled, |x| <= 1
        if count == 0:  # as horizontally: empty sums, min 1 and max -1 in scaled units
            zero = x.sum(axis=0)
            return self._finish(session, plan, 0, zero, zero, zero + 1.0, zero - 1.0)
        lo, hi = fn.min(x, axis=0), fn.max(x, axis=0)
        return self._finish(session, plan, count, x.sum(axis=0), (x * x).sum(axis=0), lo, hi)

    def _finish(self, session: Session, plan: Plan, count: int, s: SecretTensor, q: SecretTensor,
                lo: SecretTensor, hi: SecretTensor) -> dict[str, Any]:
        """Mean, variance and std from the scaled sums ``s`` and sums of squares ``q``; release."""
        n = max(count, 1)
        mean = s.scale(1 / n, bound=n)  # scaled values lie in [-1, 1], so |sums| <= n
        var = (q.scale(1 / n, bound=n) - mean * mean).scale(n / max(count - 1, 1), bound=1.0)
        std = approx.sqrt(fn.relu(var))
        opened = received(session.reveal(s, mean, var, std, lo, hi, to=plan.recipients))
        out: dict[str, Any] = {"count": count}
        if opened is None:
            return out
        s_, mean_, var_, std_, lo_, hi_ = opened
        for j, c in enumerate(plan.columns):
            m, h = plan.scaling[c]
            out[c] = {
                "sum": float(h * s_[j] + m * count),
                "mean": float(h * mean_[j] + m),
                "var": float(h * h * var_[j]),
                "std": float(h * std_[j]),
                "min": float(h * lo_[j] + m),
                "max": float(h * hi_[j] + m),
            }
        return out
