"""Differentially private ``dp_describe`` (count, sum, mean) and ``dp_histogram``.

The job's (epsilon, delta) is turned into a zCDP budget rho (OpenDP), split evenly over the
released quantities; each gets discrete Gaussian noise drawn jointly inside MPC
(:mod:`tessera.dp.noise`). Each party's contribution is clipped inside MPC to what its row
count and the declared bounds allow, so an out-of-range input cannot break the sensitivity the
accounting assumes. Means are noisy sums over noisy counts (post-processing).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field, field_validator

from tessera.analytics.base import Analysis, Local, Params, Plan, Release
from tessera.analytics.common import numeric_columns, scaling_for
from tessera.analytics.distribution import bin_counts, check_edges
from tessera.analytics.logistic import LogRegParams, NewtonLogistic
from tessera.analytics.registry import register
from tessera.analytics.results import DescribeResult, HistogramResult, LogitResult, RegressionResult
from tessera.data.local import LocalTable
from tessera.data.schema import Schema
from tessera.dp.accounting import gaussian_rho, laplace_epsilon, rho_for, rho_to_epsilon
from tessera.dp.noise import joint_noise
from tessera.mpc import functions as fn
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, stack

__all__ = ["DPDescribe", "DPHistogram", "DPLinearRegression", "DPLogisticRegression"]

_Z95 = 1.959963984540054


class DPParams(Params):
    epsilon: float = Field(gt=0)
    delta: float = Field(1e-6, ge=0, lt=1, description="0 asks for pure epsilon-DP (discrete Laplace noise)")
    max_rows: int = Field(10**7, gt=0, description="bound on one party's row count (clipping)")


def _budget(params: DPParams, quantities: int, sensitivities: list[int]) -> tuple[str, list[float], dict[str, Any]]:
    """Mechanism, per-quantity noise scales and the accounted guarantee for a job's budget.

    delta > 0: discrete Gaussian noise, zCDP composition (rho split evenly), OpenDP's conversion.
    delta = 0: discrete Laplace noise, pure epsilon split evenly (basic composition).
    """
    if params.delta > 0:
        rho = rho_for(params.epsilon, params.delta) / quantities
        scales = [_scale(rho, s) for s in sensitivities]
        rhos = [gaussian_rho(s, sc) for s, sc in zip(sensitivities, scales)]
        return "gaussian", scales, {"epsilon": rho_to_epsilon(sum(rhos), params.delta), "delta": params.delta,
                                     "rho": sum(rhos)}
    eps = params.epsilon / quantities
    scales = [max(s, 1) / eps for s in sensitivities]
    spent = sum(laplace_epsilon(s, sc) for s, sc in zip(sensitivities, scales))
    return "laplace", scales, {"epsilon": spent, "delta": 0.0}


def _noise(params: DPParams) -> str:
    """The noise distribution the job's (epsilon, delta) selects (see :func:`_budget`)."""
    return "discrete Gaussian" if params.delta > 0 else "discrete Laplace"


def _how(params: DPParams) -> str:
    if params.delta > 0:
        return f"discrete Gaussian noise, zCDP rho = {rho_for(params.epsilon, params.delta):.4g}"
    return "discrete Laplace noise, pure epsilon"


def _std(mechanism: str, scale: float) -> float:
    """Standard deviation of one party's noise (approximately, for the discrete distributions)."""
    return scale * (math.sqrt(2) if mechanism == "laplace" else 1.0)


def _scale(rho: float, sensitivity: int) -> float:
    """Discrete Gaussian scale giving exactly ``rho`` at this sensitivity."""
    return max(sensitivity, 1) / math.sqrt(2 * rho)


def _guarantee(rhos: list[float], delta: float, scales: dict[str, float], parties: int) -> dict[str, Any]:
    rho = sum(rhos)
    return {"epsilon": rho_to_epsilon(rho, delta), "delta": delta, "rho": rho,
            "noise_scale_per_party": scales,
            "noise_std_released": {k: v * math.sqrt(parties) for k, v in scales.items()}}


def _clip_party(values: SecretTensor, lo: SecretTensor | float, hi: SecretTensor | float) -> SecretTensor:
    """``values`` clipped elementwise to secret or public bounds (exact comparisons)."""
    below, above = values._sign_bits(values - lo, -(values - hi))
    return values + below * (lo - values) + above * (hi - values)


class DPDescribeParams(DPParams):
    columns: list[str] = Field(min_length=1)


@register
class DPDescribe(Analysis[DPDescribeParams]):
    """Noisy count, per-column noisy sums and means, with (epsilon, delta)-DP (add/remove one row)."""

    name = "dp_describe"
    version = "1.0"
    params_model = DPDescribeParams
    description = "differentially private count, sum and mean per column"
    result_type = DescribeResult

    def plan(self, schema: Schema, params: DPDescribeParams, partition: str, parties: list[str]) -> Plan:
        cols = numeric_columns(schema, params.columns)
        q = 1 + len(cols)
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=cols,
            local=["count rows; sum each column (values already checked against the declared bounds)"],
            secure=["clip each party's count to [0, max_rows] and each sum to [count * min, count * max]",
                    "add the parties' clipped counts and sums",
                    f"add jointly drawn {_noise(params)} noise to each of the {q} quantities"],
            release=[Release("noisy_count", "count + noise"), Release("noisy_sum[...]", "sum + noise per column"),
                     Release("mean[...]", "noisy sum / noisy count (post-processing)")],
            frac_bits=0,
            notes=[f"guarantee: ({params.epsilon}, {params.delta})-DP for adding or removing one row, "
                   f"{_how(params)} split evenly over {q} quantities; holds if at least one party is honest",
                   "sums are discretised to 1/1000 of the column's unit before noise is added"],
            meta={"resolution": 1000, "bounds": {c: schema.column(c).bounds for c in cols}},
        )

    def local(self, columns: LocalTable, params: DPDescribeParams, plan: Plan) -> Local:
        res = plan.meta["resolution"]
        n = len(columns[plan.columns[0]]) if plan.columns else 0
        sums = [np.round(np.asarray(columns[c], dtype=np.float64) * res).sum() for c in plan.columns]
        return {"stats": np.array([n, *sums], dtype=np.int64)}

    def secure(self, session: Session, local: Local, params: DPDescribeParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        res = plan.meta["resolution"]
        p = len(plan.columns)
        bounds = [(math.floor(lo * res), math.ceil(hi * res)) for lo, hi in
                  (plan.meta["bounds"][c] for c in plan.columns)]
        parts = session.owner_inputs(local["stats"] if session.owns else None, shape=(1 + p,), frac_bits=0)
        count = None
        sums = None
        for part in parts:
            n_i = _clip_party(part[0], 0, params.max_rows)
            lo = stack([n_i * b[0] for b in bounds])
            hi = stack([n_i * b[1] for b in bounds])
            s_i = _clip_party(part[1:], lo, hi)
            count = n_i if count is None else count + n_i
            sums = s_i if sums is None else sums + s_i
        assert count is not None and sums is not None
        sens = [1] + [max(abs(b[0]), abs(b[1])) for b in bounds]
        mech, scales, g = _budget(params, 1 + p, sens)
        noise = stack([joint_noise(session, sc, (), 0, mech) for sc in scales])
        noisy = stack([count, *[sums[j] for j in range(p)]]) + noise
        (out,) = session.reveal(noisy, to=plan.recipients)
        if out is None:
            return {}
        n_std = math.sqrt(session.n_parties)
        stds = [_std(mech, sc) * n_std for sc in scales]
        g.update({"mechanism": mech, "noise_scale_per_party": {"count": scales[0],
                  **{c: scales[1 + j] / res for j, c in enumerate(plan.columns)}},
                  "noise_std_released": {"count": stds[0], **{c: stds[1 + j] / res for j, c in enumerate(plan.columns)}}})
        noisy_count = int(out[0])
        result: dict[str, Any] = {"noisy_count": noisy_count,
                                  "count_ci95": (noisy_count - _Z95 * stds[0], noisy_count + _Z95 * stds[0]),
                                  "guarantee": g}
        for j, c in enumerate(plan.columns):
            s = float(out[1 + j]) / res
            half = _Z95 * stds[1 + j] / res
            result[c] = {"noisy_sum": s, "sum_ci95": (s - half, s + half),
                         "mean": s / max(noisy_count, 1)}
        return result


class DPHistParams(DPParams):
    column: str
    edges: list[float] = Field(min_length=2)

    _edges = field_validator("edges")(check_edges)


@register
class DPHistogram(Analysis[DPHistParams]):
    """Noisy counts per public bin with (epsilon, delta)-DP (one row moves one count by one)."""

    name = "dp_histogram"
    version = "1.0"
    params_model = DPHistParams
    description = "differentially private histogram with public bin edges"
    result_type = HistogramResult

    def plan(self, schema: Schema, params: DPHistParams, partition: str, parties: list[str]) -> Plan:
        numeric_columns(schema, [params.column])
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.column],
            local=["count the party's rows per public bin"],
            secure=["clip each party's bin counts to [0, max_rows]; add them",
                    f"add jointly drawn {_noise(params)} noise to every bin (sensitivity 1)"],
            release=[Release("noisy_counts", "one noisy count per bin")],
            frac_bits=0,
            notes=[f"guarantee: ({params.epsilon}, {params.delta})-DP for adding or removing one row "
                   f"({_how(params)}); holds if at least one party is honest"],
        )

    def local(self, columns: LocalTable, params: DPHistParams, plan: Plan) -> Local:
        return bin_counts(columns, params.column, params.edges)  # as histogram's

    def secure(self, session: Session, local: Local, params: DPHistParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        bins = len(params.edges) - 1
        total = None
        for part in session.owner_inputs(local["counts"] if session.owns else None, shape=(bins,), frac_bits=0):
            part = fn.clip(part, 0, params.max_rows)
            total = part if total is None else total + part
        assert total is not None
        mech, (scale,), g = _budget(params, 1, [1])  # one row moves one count: L1 and L2 sensitivity 1
        (out,) = session.reveal(total + joint_noise(session, scale, (bins,), 0, mech), to=plan.recipients)
        if out is None:
            return {}
        std = _std(mech, scale) * math.sqrt(session.n_parties)
        g.update({"mechanism": mech, "noise_scale_per_party": {"count": scale}, "noise_std_released": {"count": std}})
        return {"edges": params.edges, "noisy_counts": out.tolist(), "ci95_half_width": _Z95 * std, "guarantee": g}


class DPLinRegParams(DPParams):
    delta: float = Field(1e-6, gt=0, lt=1, description="Gaussian noise only: delta must be positive")
    features: list[str] = Field(min_length=1)
    target: str
    ridge: float = Field(1e-6, ge=0, description="ridge added to the noisy X'X/n (scaled units) when solving")
    grid: int = Field(256, ge=2, description="scaled values are rounded to multiples of 1/grid")


@register
class DPLinearRegression(Analysis[DPLinRegParams]):
    """Linear regression from noisy sufficient statistics: the parties' ``Z'Z`` for
    ``Z = [1, X', y']`` (scaled to [-1, 1] and rounded to a grid) gets jointly drawn discrete
    Gaussian noise on its upper triangle, which is revealed; the coefficients are a public
    post-processing of it. One row changes the triangle by at most ``(p + 2) grid^2`` in L2."""

    name = "dp_linear_regression"
    version = "1.0"
    params_model = DPLinRegParams
    description = "differentially private linear regression (noisy sufficient statistics)"
    result_type = RegressionResult

    def plan(self, schema: Schema, params: DPLinRegParams, partition: str, parties: list[str]) -> Plan:
        cols = numeric_columns(schema, [*params.features, params.target])
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=cols,
            local=["scale to [-1, 1] by the declared bounds, round to the grid; Z'Z of [1, X', y']"],
            secure=["clip each party's Z'Z entries to its row count; add them",
                    "add jointly drawn discrete Gaussian noise to the upper triangle"],
            release=[Release("noisy_gram", "the noisy upper triangle of Z'Z"),
                     Release("coefficients", "ridge solution of the noisy normal equations (post-processing)")],
            frac_bits=0, scaling=scaling_for(schema, cols),
            notes=[f"guarantee: ({params.epsilon}, {params.delta})-DP for adding or removing one row; holds if at "
                   "least one party is honest"],
        )

    def local(self, columns: LocalTable, params: DPLinRegParams, plan: Plan) -> Local:
        g = params.grid
        z = np.column_stack([np.ones(len(columns[plan.columns[0]]))] +
                            [np.round((np.asarray(columns[c], dtype=np.float64) - m) / h * g) / g
                             for c, (m, h) in plan.scaling.items()])
        gram = np.round(z.T @ z * g * g).astype(np.int64)
        return {"triangle": gram[np.triu_indices(gram.shape[0])]}

    def secure(self, session: Session, local: Local, params: DPLinRegParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        k1 = len(plan.columns) + 1
        t = k1 * (k1 + 1) // 2
        total = None
        for part in session.owner_inputs(local["triangle"] if session.owns else None, shape=(t,), frac_bits=0):
            bound = _clip_party(part[0], 0, params.max_rows * params.grid**2)  # n_i * grid^2
            part = _clip_party(part, -bound, bound)
            total = part if total is None else total + part
        assert total is not None
        rho = rho_for(params.epsilon, params.delta)
        sens = (len(plan.columns) + 1) * params.grid**2
        scale = _scale(rho, sens)
        (noisy,) = session.reveal(total + joint_noise(session, scale, (t,), 0), to=plan.recipients)
        if noisy is None:
            return {}
        gram = np.zeros((k1, k1))
        gram[np.triu_indices(k1)] = noisy / params.grid**2
        gram = gram + np.triu(gram, 1).T
        n = max(gram[0, 0], 1.0)
        a = gram[:k1 - 1, :k1 - 1] / n + params.ridge * np.eye(k1 - 1)
        beta_s = np.linalg.solve(a, gram[:k1 - 1, k1 - 1] / n)
        feats = plan.columns[:-1]
        h = np.array([plan.scaling[c][1] for c in feats])
        cen = np.array([plan.scaling[c][0] for c in feats])
        cy, hy = plan.scaling[plan.columns[-1]]
        slopes = hy * beta_s[1:] / h
        intercept = cy + hy * beta_s[0] - float(np.sum(slopes * cen))
        return {"coefficients": np.concatenate([[intercept], slopes]), "noisy_n": float(gram[0, 0]),
                "guarantee": _guarantee([gaussian_rho(sens, scale)], params.delta, {"gram": scale / params.grid**2},
                                        session.n_parties)}


class DPLogRegParams(LogRegParams):
    C: float = Field(1.0, gt=0, description="inverse L2 strength (required: DP needs strong convexity)")
    epsilon: float = Field(gt=0)
    delta: float = Field(1e-6, gt=0, lt=1)


@register
class DPLogisticRegression(NewtonLogistic[DPLogRegParams]):
    """Logistic regression with output perturbation (Chaudhuri, Monteleoni & Sarwate 2011):
    Newton's method inside MPC minimises ``(1/n) sum loss + ||b||^2 / (2 C n)`` over the scaled
    coefficients (intercept included), whose minimiser moves by at most ``2 sqrt(p + 1) C``
    when one row is replaced; jointly drawn discrete Gaussian noise of that sensitivity is
    added to the coefficients before they are opened."""

    name = "dp_logistic_regression"
    version = "1.0"
    params_model = DPLogRegParams
    guarded = False  # a guard's bit would be released without noise (its DP cost is not accounted)
    owner_products = False  # the rows are clipped inside MPC: products of the unclipped rows would not match
    description = "differentially private logistic regression (output perturbation)"
    result_type = LogitResult

    def plan(self, schema: Schema, params: DPLogRegParams, partition: str, parties: list[str]) -> Plan:
        plan = super().plan(schema, params, partition, parties)
        plan.analysis, plan.version = self.name, self.version
        plan.secure.append("add jointly drawn discrete Gaussian noise to the scaled coefficients (output perturbation)")
        plan.notes.append(f"guarantee: ({params.epsilon}, {params.delta})-DP for replacing one row (n is public); "
                          "holds if at least one party is honest and Newton's method has converged")
        return plan

    def _bounded(self, x: SecretTensor, y: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
        # the sensitivity bound assumes |x'| <= 1 and y in {0, 1}: enforce it inside MPC, so an
        # out-of-range row from a party cannot break it
        return fn.clip(x, -1.0, 1.0), fn.clip(y, 0.0, 1.0)

    def _penalty(self, params: DPLogRegParams, h: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
        return np.full(len(h) + 1, 1.0 / (params.C * n))

    def _sensitivity(self, params: DPLogRegParams, frac: int) -> int:
        return math.ceil(2 * math.sqrt(len(params.features) + 1) * params.C * 2.0**frac)

    def _before_release(self, session: Session, beta: SecretTensor, params: DPLogRegParams, n: int) -> SecretTensor:
        scale = _scale(rho_for(params.epsilon, params.delta), self._sensitivity(params, beta.frac_bits))
        return beta + joint_noise(session, scale, beta.shape, beta.frac_bits)

    def _release_info(self, session: Session, params: DPLogRegParams, n: int) -> dict[str, Any]:
        f = session.frac_bits
        sens = self._sensitivity(params, f)
        scale = _scale(rho_for(params.epsilon, params.delta), sens)
        return {"guarantee": _guarantee([gaussian_rho(sens, scale)], params.delta,
                                        {"scaled_coefficient": scale / 2.0**f}, session.n_parties)}
