"""``covariance`` and ``correlation``: Pearson matrices over horizontally or vertically
partitioned rows (vertically also over secret-shared aligned rows, PSI ``aligned`` mode)."""

from __future__ import annotations

import math
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
    received,
    scale_columns,
    scaling_for,
    shared_gram,
)
from tessera.analytics.moments import (
    RELATIVE,
    WIDE,
    accuracy_text,
    check_parties,
    local_moments,
    moment_error,
    pool,
    pooled_counts,
    power_of_two_normaliser,
    rsqrt_unit,
)
from tessera.analytics.registry import register
from tessera.analytics.results import MatrixResult
from tessera.data.local import LocalTable
from tessera.data.schema import Schema
from tessera.mpc import approx
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, concatenate

__all__ = ["Covariance", "Correlation", "moments", "covariance_from_gram"]


class MatrixParams(Params):
    columns: list[str] = Field(min_length=2)
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0)


def moments(session: Session, local: Local, plan: Plan,
            holders: dict[str, list[str]]) -> tuple[int, SecretTensor | None]:
    """Total count (revealed: it is an output) and the secret pooled population covariance
    matrix ``M2 / N`` of the scaled columns, at 58 fractional bits (None below 2 rows).

    Horizontal: locally centred moments combined by :func:`tessera.analytics.moments.pool`.
    Vertical: the moment matrix of the shared rows at the session's scale (old precision).
    """
    if plan.partition == "vertical":
        return covariance_from_gram(plan, *normalized_gram(session, local, plan, holders))
    p = len(plan.columns)
    count = int(pooled_counts(session, local)[0])
    if count < 2:
        return count, None
    _, m2 = pool(session, local, np.full(p, count, dtype=np.int64), full=True)
    return count, m2


def covariance_from_gram(plan: Plan, count: int, m: SecretTensor) -> tuple[int, SecretTensor | None]:
    """``(count, population covariance at 58 bits)`` from ``Z'Z / n`` for ``Z = [1, scaled columns]``."""
    p = len(plan.columns)
    if count < 2:
        return count, None
    mean = m[0, 1:]
    cov = m[1:, 1:] - mean.reshape(p, 1) * mean.reshape(1, p)
    return count, approx.at_scale(cov, WIDE)


def _accuracy(name: str, schema: Schema, params: MatrixParams, partition: str, parties: list[str],
              scaling: dict[str, tuple[float, float]]) -> dict[str, float]:
    """The stated accuracy of the released matrix (see :mod:`tessera.analytics.moments`)."""
    h = max(hh for _, hh in scaling.values())
    if partition == "vertical":  # shared rows at 28 bits: error grows with sqrt(n) (issue #14 remains)
        e = 2 * (2 * math.sqrt(params.max_rows) + 4) * 2.0**-28
        return ({"abs": e * h * h, "rel_var": 0.0} if name == "covariance"
                else {"abs": 2.0**-20, "per_relative_variance": 3 * e, "per_relative_sd": 0.0})
    e = moment_error(len(parties))
    if name == "covariance":
        return {"abs": 2 * e * h * h, "rel_var": RELATIVE}
    return {"abs": 2.0**-20, "per_relative_variance": 2 * e,
            "per_relative_sd": 3 * math.sqrt(len(parties)) * 2.0**-49}


def _plan(a: Analysis[MatrixParams], schema: Schema, params: MatrixParams, partition: str, parties: list[str],
          what: str, extra: list[str]) -> Plan:
    cols = numeric_columns(schema, params.columns)
    check_parties(parties, partition)
    frac = 28
    check_magnitude("a sum of scaled cross products (at most one per row)", params.max_rows, frac,
                    "declare a smaller row-count bound")
    scaling = scaling_for(schema, cols)
    acc = _accuracy(a.name, schema, params, partition, parties, scaling)
    return Plan(
        analysis=a.name, version=a.version, partition=partition, columns=cols,
        local=["scale each column to [-1, 1] by its declared bounds",
               "horizontal: count rows; the mean and the centred cross products (x - m_i)'(x - m_i) of the "
               "party's rows (float64); vertical: secret-share the party's columns row-wise (PSI aligned "
               "mode: its whole list, then the secret-shared join keeps the common rows)"],
        secure=["horizontal: add the parties' counts (revealed: an output); pool the locally centred moments "
                "(Chan et al. 1979) at 58 fractional bits: M2 / N = sum M2_i / N + sum (n_i / N)(m_i - mean)"
                "(m_i - mean)'; vertical: the same moments by a secure matrix product",
                *extra, "below 2 rows: nothing but the count is computed; the matrix is NaN (as numpy)"],
        release=[Release("count", "total number of rows (to every party)"),
                 Release(a.name, f"{what}; accuracy: {accuracy_text(acc)}"
                         + (", v_min = the smallest column variance / its squared half-range" if "per_relative_variance" in acc
                            else ", var_j = column j's variance, h_j its declared half-range"))],
        frac_bits=frac, scaling=scaling, meta={"accuracy": {a.name: acc}},
    )


class _MomentAnalysis(Analysis[MatrixParams]):
    """Analyses of the covariance matrix: the local stage is the parties' centred moments (or
    the shared columns, vertically)."""

    params_model = MatrixParams
    partitions = ("horizontal", "vertical")
    owner_contributions = "rows"  # pooled moments need the revealed total count first

    def local(self, columns: LocalTable, params: MatrixParams, plan: Plan) -> Local:
        if plan.partition == "vertical":
            return local_gram(columns, plan)
        x = scale_columns(columns.arrays(plan.columns), plan.scaling).reshape(-1, len(plan.columns))
        return local_moments(x, full=True)

    def secure(self, session: Session, local: Local, params: MatrixParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        return self._release(session, plan, *moments(session, local, plan, holders))

    def secure_rows(self, session: Session, rows: SharedRows, params: MatrixParams, plan: Plan) -> dict[str, Any]:
        return self._release(session, plan, *covariance_from_gram(plan, *shared_gram(rows, plan)))

    def _release(self, session: Session, plan: Plan, count: int, cov: SecretTensor | None) -> dict[str, Any]:
        raise NotImplementedError

    def _undefined(self, session: Session, plan: Plan, count: int, name: str) -> dict[str, Any]:
        """Below 2 rows: the count and a NaN matrix (numpy's ddof=1 convention), nothing computed."""
        if plan.recipients is not None and session.party not in plan.recipients:
            return {"count": count}
        return self.finish(MatrixParams(columns=plan.columns), plan, {"count": count}, None)

    def _opened(self, plan: Plan, count: int, got: list[Any] | None) -> dict[str, Any]:
        """A recipient's result from its one reveal (non-recipients: the count)."""
        return {"count": count} if got is None else self.finish(MatrixParams(columns=plan.columns), plan,
                                                                  {"count": count}, got)


@register
class Covariance(_MomentAnalysis):
    """Sample covariance matrix (``numpy.cov``, ``ddof=1``)."""

    name = "covariance"
    version = "1.0"
    description = "sample covariance matrix of the chosen columns"
    result_type = MatrixResult

    def plan(self, schema: Schema, params: MatrixParams, partition: str, parties: list[str]) -> Plan:
        return _plan(self, schema, params, partition, parties, "p x p sample covariance matrix",
                     ["after opening (public): covariance = M2 / N * N / (N - 1), unscaled"])

    def _release(self, session: Session, plan: Plan, count: int, cov: SecretTensor | None) -> dict[str, Any]:
        if cov is None:
            return self._undefined(session, plan, count, "covariance")
        return self._opened(plan, count, received(session.reveal(cov, to=plan.recipients)))

    def finish(self, params: MatrixParams, plan: Plan, public: dict[str, Any], opened: list[Any] | None) -> dict[str, Any]:
        """From the opened population covariance of the scaled columns: the sample covariance in
        original units, symmetric with a non-negative diagonal (NaN below 2 rows)."""
        count, p = int(public["count"]), len(plan.columns)
        if opened is None:
            return {"count": count, "columns": plan.columns, "covariance": np.full((p, p), np.nan)}
        c = np.asarray(opened[0], dtype=np.float64)
        h = np.array([plan.scaling[k][1] for k in plan.columns])
        c = (c + c.T) / 2 * (count / (count - 1)) * np.outer(h, h)
        d = np.maximum(np.diag(c), 0.0)
        c[np.diag_indices_from(c)] = d
        return {"count": count, "columns": plan.columns, "covariance": c}


@register
class Correlation(_MomentAnalysis):
    """Pearson correlation matrix (``numpy.corrcoef``): symmetric, unit diagonal, entries in
    [-1, 1]; NaN rows and columns for a column without variance (as numpy)."""

    name = "correlation"
    version = "1.0"
    description = "Pearson correlation matrix of the chosen columns"
    result_type = MatrixResult

    def plan(self, schema: Schema, params: MatrixParams, partition: str, parties: list[str]) -> Plan:
        return _plan(self, schema, params, partition, parties, "p x p Pearson correlation matrix",
                     ["secure normalisation: each column's variance v_j times a secret power of two G_j^2 "
                      "lands in [0.5, 2) (G_j = 0 for a variance below 64 ULP: no variance)",
                      "r_ij = C'_ij / sqrt(C'_ii C'_jj) with C' = C G G' at 28 bits and a secure inverse square root",
                      "after opening (public): symmetrised, clipped to [-1, 1], unit diagonal; NaN for a "
                      "column without variance"])

    def _release(self, session: Session, plan: Plan, count: int, cov: SecretTensor | None) -> dict[str, Any]:
        if cov is None:
            return self._undefined(session, plan, count, "correlation")
        p = len(plan.columns)
        g = power_of_two_normaliser(cov[np.arange(p), np.arange(p)])
        gg = concatenate([g.reshape(p, 1)] * p, axis=1) * concatenate([g.reshape(1, p)] * p, axis=0)
        cn = approx.at_scale(cov * gg, 28)  # |C'_ij| <= sqrt(C'_ii C'_jj) < 2: exact product
        inv_sd = rsqrt_unit(cn[np.arange(p), np.arange(p)])
        corr = cn * concatenate([inv_sd.reshape(p, 1)] * p, axis=1) * concatenate([inv_sd.reshape(1, p)] * p, axis=0)
        return self._opened(plan, count, received(session.reveal(corr, to=plan.recipients)))

    def finish(self, params: MatrixParams, plan: Plan, public: dict[str, Any], opened: list[Any] | None) -> dict[str, Any]:
        """From the opened normalised matrix: symmetrised, clipped to [-1, 1], unit diagonal, NaN
        rows and columns for a column without variance (NaN below 2 rows)."""
        count, p = int(public["count"]), len(plan.columns)
        if opened is None:
            return {"count": count, "columns": plan.columns, "correlation": np.full((p, p), np.nan)}
        r = np.asarray(opened[0], dtype=np.float64)
        r = np.clip((r + r.T) / 2, -1.0, 1.0)
        dead = np.diag(r) < 0.5  # G = 0: no variance to divide by
        r[np.diag_indices_from(r)] = 1.0
        r[dead, :] = np.nan
        r[:, dead] = np.nan
        return {"count": count, "columns": plan.columns, "correlation": r}
