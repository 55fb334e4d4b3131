"""``covariance`` and ``correlation``: Pearson matrices over horizontally or vertically
partitioned rows (vertically also over secret-shared aligned rows, PSI ``aligned`` mode)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tessera.analytics.base import Analysis, Local, Params, Plan, Release, SharedRows
from tessera.analytics.common import (
    DEFAULT_MAX_ROWS,
    check_magnitude,
    local_gram,
    normalized_gram,
    numeric_columns,
    scaling_for,
    shared_gram,
)
from tessera.analytics.registry import register
from tessera.data.local import LocalTable
from tessera.data.schema import Schema
from tessera.mpc import approx
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor

__all__ = ["Covariance", "Correlation", "moments", "covariance_from_gram"]


class MatrixParams(Params):
    columns: list[str] = Field(min_length=2)
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0)


def moments(session: Session, local: Local, plan: Plan,
            holders: dict[str, list[str]]) -> tuple[int, SecretTensor]:
    """Total count (revealed: it is an output) and the secret scaled covariance matrix."""
    return covariance_from_gram(plan, *normalized_gram(session, local, plan, holders))


def covariance_from_gram(plan: Plan, count: int, m: SecretTensor) -> tuple[int, SecretTensor]:
    """``(count, scaled covariance)`` from ``Z'Z / n`` for ``Z = [1, scaled columns]``."""
    p = len(plan.columns)
    if count < 2:
        return count, m[1:, 1:] * 0
    mean = m[0, 1:]
    cov = (m[1:, 1:] - mean.reshape(p, 1) * mean.reshape(1, p)).scale(count / (count - 1), bound=1.0)
    return count, cov


def _plan(a: Analysis[MatrixParams], schema: Schema, params: MatrixParams, partition: str, what: list[Release], extra: list[str]) -> Plan:
    cols = numeric_columns(schema, params.columns)
    frac = 28
    check_magnitude("a sum of scaled cross products (at most one per row)", params.max_rows, frac,
                    "declare a smaller row-count bound")
    return Plan(
        analysis=a.name, version=a.version, partition=partition, columns=cols,
        local=["scale each column to [-1, 1] by its declared bounds",
               "horizontal: count rows, column sums and cross products of the party's rows; "
               "vertical: secret-share the party's columns row-wise (PSI aligned mode: its whole "
               "list, then the secret-shared join keeps the common rows)"],
        secure=["horizontal: add the parties' counts, sums and cross products; "
                "vertical: the same moments by a secure matrix product",
                "covariance = (X'X / n - mean mean') * n / (n - 1)", *extra],
        release=[Release("count", "total number of rows (to every party)"), *what],
        frac_bits=frac, scaling=scaling_for(schema, cols),
    )


class _MomentAnalysis(Analysis[MatrixParams]):
    """Analyses of the covariance matrix: the local stage is the moment matrix (or the shared
    columns, vertically)."""

    params_model = MatrixParams
    partitions = ("horizontal", "vertical")

    def local(self, columns: LocalTable, params: MatrixParams, plan: Plan) -> Local:
        return local_gram(columns, plan)

    def secure(self, session: Session, local: Local, params: MatrixParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        return self._release(session, plan, *moments(session, local, plan, holders))

    def secure_rows(self, session: Session, rows: SharedRows, params: MatrixParams, plan: Plan) -> dict[str, Any]:
        return self._release(session, plan, *covariance_from_gram(plan, *shared_gram(rows, plan)))

    def _release(self, session: Session, plan: Plan, count: int, cov: SecretTensor) -> dict[str, Any]:
        raise NotImplementedError


@register
class Covariance(_MomentAnalysis):
    """Sample covariance matrix (``numpy.cov``, ``ddof=1``)."""

    name = "covariance"
    version = "1.0"
    description = "sample covariance matrix of the chosen columns"

    def plan(self, schema: Schema, params: MatrixParams, partition: str, parties: list[str]) -> Plan:
        return _plan(self, schema, params, partition, [Release("covariance", "p x p sample covariance matrix")], [])

    def _release(self, session: Session, plan: Plan, count: int, cov: SecretTensor) -> dict[str, Any]:
        (c,) = session.reveal(cov, to=plan.recipients)
        if c is None:
            return {"count": count}
        h = np.array([plan.scaling[k][1] for k in plan.columns])
        return {"count": count, "columns": plan.columns, "covariance": c * np.outer(h, h)}


@register
class Correlation(_MomentAnalysis):
    """Pearson correlation matrix (``numpy.corrcoef``)."""

    name = "correlation"
    version = "1.0"
    description = "Pearson correlation matrix of the chosen columns"

    def plan(self, schema: Schema, params: MatrixParams, partition: str, parties: list[str]) -> Plan:
        return _plan(self, schema, params, partition, [Release("correlation", "p x p Pearson correlation matrix")],
                     ["r_ij = cov_ij / sqrt(cov_ii cov_jj) with a secure inverse square root"])

    def _release(self, session: Session, plan: Plan, count: int, cov: SecretTensor) -> dict[str, Any]:
        p = len(plan.columns)
        inv_sd = approx.rsqrt(cov[np.arange(p), np.arange(p)])
        corr = cov * inv_sd.reshape(p, 1) * inv_sd.reshape(1, p)
        (r,) = session.reveal(corr, to=plan.recipients)
        if r is None:
            return {"count": count}
        return {"count": count, "columns": plan.columns, "correlation": r}
