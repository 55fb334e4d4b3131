"""``linear_regression``: OLS and ridge over horizontally or vertically partitioned rows
(vertically also over secret-shared aligned rows, PSI ``aligned`` mode).

**Precision that follows the data** (issue #14). The parties' locally centred moments of the
scaled ``[features, target]`` are pooled at 58 fractional bits (:mod:`tessera.analytics.moments`;
vertically the moment matrix of the shared rows). Each variable is then normalised by a secret
power of two ``G_j = 2^t_j`` and a secure inverse square root to unit variance, so the normal
equations are solved in *standardised* units: the features' correlation matrix ``R`` (whose
conditioning does not depend on the declared bounds) and the feature-target correlations ``r``.
A slope in scaled units is ``2^(t_j - t_y) m_j`` with a bounded mantissa ``m_j``; it is released
as a floating-point pair (:func:`~tessera.analytics.moments.float_parts`), which reveals the
value and nothing else. The intercept and its standard error are formed the same way.

**Declared guard** (one bit, revealed to every party before any output): the Newton-Schulz
inverse ``X`` of ``R`` converged (every entry of ``I - R X`` within the tolerance) and
``|X_ij| <= max_inverse``. It fails exactly when the features are (nearly) collinear or one has no
variance, and the job then stops with :class:`~tessera.errors.GuardFailed` naming the remedy. A
second bit says whether the target has any variance.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field, model_validator

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
    WIDE,
    check_parties,
    float_parts,
    float_value,
    local_moments,
    moment_error,
    normaliser,
    pool,
    pooled_counts,
    rsqrt_unit,
    times_power_of_two,
)
from tessera.analytics.registry import register
from tessera.analytics.results import RegressionResult
from tessera.data.local import LocalTable
from tessera.data.schema import Schema
from tessera.errors import GuardFailed, PlanError
from tessera.mpc import approx
from tessera.mpc.linalg import inv_spd, newton_schulz_steps
from tessera.mpc.session import Opened, Session
from tessera.mpc.tensor import SecretTensor, concatenate

__all__ = ["LinearRegression", "guard_tolerance", "coefficient_accuracy", "shared_rows_error", "r2_moment_term"]

#: Fractional bits of the standardised solve (Newton-Schulz products need |X| < 2^(62-2f-1)).
FRAC = 24
#: How far a feature's declared bounds may lie from 0, in half-widths (the intercept is the
#: prediction at 0 and is extrapolated from there).
MAX_OFFSET = 64.0


class LinRegParams(Params):
    features: list[str] = Field(min_length=1)
    target: str
    ridge: float = Field(0.0, ge=0.0, description="L2 penalty on the (unscaled) coefficients, as sklearn's alpha")
    max_inverse: float = Field(
        100.0, gt=1, le=4096.0,
        description="bound on 1/λ_min of the features' correlation matrix (their collinearity; checked by a guard)",
    )
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0)

    @model_validator(mode="after")
    def _target_not_feature(self) -> LinRegParams:
        if self.target in self.features:
            raise ValueError(f"the target {self.target!r} is also a feature")
        return self


def guard_tolerance(p: int, max_inverse: float, frac: int = FRAC) -> float:
    """The conditioning guard's tolerance on each entry of ``I - R X`` (a few rounding units of
    a converged Newton-Schulz inverse)."""
    return min(2.0**-4, max(2.0**-14, 16 * p * max_inverse * 2.0**-frac))


def coefficient_accuracy(p: int, max_inverse: float, frac: int = FRAC) -> float:
    """First-order bound on the error of each standardised coefficient once the guard passed:
    ``|error of beta_j| <= eps * sd(y) / sd(x_j)``."""
    tol = guard_tolerance(p, max_inverse, frac)
    return 4 * p * p * max_inverse * 2.0**-frac + (p * tol) ** 2 * math.sqrt(max_inverse)


def r2_moment_term(p: int, max_inverse: float, moment: float) -> float:
    """R^2's error per unit of ``1 / v_min`` from the pooled moments' absolute error ``moment``.

    In standardised units ``R^2 = r' R^-1 r``; a moment error ``e`` moves a correlation by at most
    ``2 e / v_min``, so (first order) ``|dR^2| <= 2 |b| |dr| + |b|^2 |dR|`` with ``b = R^-1 r``,
    ``|b|^2 <= lambda_max(R^-1) <= p max_inverse`` (the guard bounds every entry of the inverse),
    ``|dr| <= 2 sqrt(p) e / v_min`` and ``|dR| <= 2 p e / v_min``: at most
    ``6 p^2 max_inverse e / v_min``."""
    return 6.0 * p * p * max_inverse * moment


def shared_rows_error(n: int, frac: int = FRAC) -> float:
    """Absolute error (scaled units) of an entry of ``Z'Z / n`` from ``n`` shared rows."""
    return (2 * math.sqrt(max(n, 1)) + 4) * 2.0**-frac


def _halve(x: SecretTensor, shift: int) -> SecretTensor:
    """``x / 2^shift`` (one truncation)."""
    return approx.at_scale(x._relabel(x.frac_bits + shift), x.frac_bits)


def _outer(a: SecretTensor, b: SecretTensor) -> SecretTensor:
    p, q = a.shape[0], b.shape[0]
    return concatenate([a.reshape(p, 1)] * q, axis=1) * concatenate([b.reshape(1, q)] * p, axis=0)


def _common_scale(w: SecretTensor) -> tuple[SecretTensor, SecretTensor, SecretTensor, SecretTensor]:
    """A vector ``w`` (``sum |w_j| < 2^(61-f)``) as ``2^E wn`` with ``sum |wn_j|`` in [0.5, 1):
    returns ``(2^(-2E'), 2^(2(E - E')), wn, E')`` for ``E' = max(E, 0)``, so that
    ``1 + |w|^2_M = 2^(2E') (2^(-2E') + 2^(2(E-E')) |wn|^2_M)`` keeps its relative precision
    whatever the size of ``w``. ``w = 0`` gives ``(1, 0, 0, 0)``. Reveals nothing."""
    f = w.frac_bits
    sign = 1 - 2 * (w < 0)
    total = (w * sign).sum().reshape(1)
    _, onehot = approx.normalize(total)
    pos = np.arange(onehot.shape[-1], dtype=np.int64)
    v = (onehot * (np.int64(1) << (60 - pos))).sum(axis=-1)  # 2^(60-k)
    n = w.shape[0]
    wn = SecretTensor(w.session, w.session.protocol.mul(w.shares, concatenate([v] * n).shares, 61 - f), f)
    e = pos + 1 - f
    ep = np.maximum(e, 0)
    big = (onehot * np.round(2.0 ** (f - 2 * ep)).astype(np.int64)).sum(axis=-1) + (1 - onehot.sum(axis=-1)) * (1 << f)
    small = (onehot * np.round(2.0 ** (f + 2 * np.minimum(e, 0))).astype(np.int64)).sum(axis=-1)
    return big._relabel(f), small._relabel(f), wn, (onehot * ep).sum(axis=-1)


@register
class LinearRegression(Analysis[LinRegParams]):
    """Least squares with an intercept; OLS results match statsmodels' ``OLS(y, add_constant(X))``."""

    name = "linear_regression"
    version = "1.0"
    params_model = LinRegParams
    partitions = ("horizontal", "vertical")
    owner_contributions = "rows"  # pooled moments need the revealed total count first
    description = "OLS or ridge regression: coefficients, standard errors, t, p-values, R^2"
    result_type = RegressionResult

    def plan(self, schema: Schema, params: LinRegParams, partition: str, parties: list[str]) -> Plan:
        cols = numeric_columns(schema, [*params.features, params.target])
        check_parties(parties, partition)
        frac = FRAC
        p = len(params.features)
        check_magnitude("a sum of scaled cross products (at most one per row)", params.max_rows, 28,
                        "declare a smaller row-count bound")
        check_magnitude("an entry of a Newton-Schulz iterate (2 * max_inverse)", 2 * params.max_inverse, 2 * frac + 1,
                        "lower max_inverse")
        scaling = scaling_for(schema, cols)
        for c in params.features:
            centre, half = scaling[c]
            if abs(centre) > MAX_OFFSET * half:
                lo, hi = schema.column(c).bounds
                raise PlanError(f"feature {c!r} has declared bounds [{lo:g}, {hi:g}], whose centre lies more than "
                                f"{MAX_OFFSET:g} half-widths from 0: the intercept (the prediction at {c} = 0) would be "
                                f"extrapolated too far to state its accuracy; shift the column (e.g. subtract {lo:g}) "
                                "or declare bounds that reach closer to 0")
        reach = sum(1 + abs(scaling[c][0]) / scaling[c][1] for c in params.features) * 2.0**27
        if reach >= 2.0 ** (61 - frac):  # the intercept's standard error normalises sum_j G_j |x_j| below 2^(61-f)
            raise PlanError(f"{p} features whose declared bounds lie this far from 0 are more than the intercept's "
                            "standard error can be computed for; shift the columns towards 0 or use fewer features")
        k = p + 1
        eps = coefficient_accuracy(p, params.max_inverse, frac)
        # absolute error of one pooled (co)moment in scaled units
        moments = shared_rows_error(params.max_rows, frac) if partition == "vertical" else moment_error(len(parties))
        tol = guard_tolerance(p, params.max_inverse, frac)
        acc: dict[str, dict[str, float]] = {"coefficients": {"per_sd_ratio": eps}, "std_errors": {"rel": 4 * eps, "rel_per_unexplained": 2.0**-(frac - 4)},
               "t": {"abs_per_t": 4 * eps},
               "r2": {"abs": 2.0**-(frac - 4), "per_min_variance": r2_moment_term(p, params.max_inverse, moments)}}
        if partition == "vertical":  # shared rows: the moments' absolute error over the smallest scaled variance
            acc["coefficients"]["per_relative_variance"] = 4 * shared_rows_error(params.max_rows, frac)
        release = [Release("guard", "2 bits to every party before any output: the features are well conditioned "
                                    f"(Newton-Schulz converged within {tol:.2g}, |inverse| <= max_inverse); the target varies"),
                   Release("n", "total number of rows (to every party)"),
                   Release("coefficients", f"{k} coefficients (intercept first); accuracy: |error of beta_j| <= "
                                           f"{eps:.2g} x sd(y) / sd(x_j) (first order, given the guard)")]
        if params.ridge == 0:
            release += [Release("std_errors", f"standard errors; accuracy: relative {4 * eps:.2g} + "
                                              f"{2.0**-(frac - 4):.2g} / (1 - R^2)"),
                        Release("t", f"t statistics; accuracy: relative {4 * eps:.2g} + the coefficient's error "
                                     "over its standard error"),
                        Release("p_values", "two-sided p-values (computed from t and n, public)"),
                        Release("r2", f"coefficient of determination; accuracy: |error| <= {2.0**-(frac - 4):.2g} + "
                                      f"{r2_moment_term(p, params.max_inverse, moments):.2g} / v_min, v_min the "
                                      "smallest variance of a feature or the target in scaled units (variance / "
                                      "half-range^2; the pooled moments' resolution over it)")]
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=cols,
            local=["scale features and target to [-1, 1] by their declared bounds",
                   "horizontal: count; the mean and the centred cross products (x - m_i)'(x - m_i) of the party's "
                   "rows (float64); vertical: secret-share the party's scaled columns row-wise"],
            secure=["horizontal: add the counts (revealed: an output); pool the locally centred moments at 58 "
                    "fractional bits (Chan et al. 1979); vertical: the moment matrix by one secure matrix product",
                    "secure normalisation: every variable's variance times a secret power of two G_j^2 lands in "
                    "[0.5, 2), then a secure inverse square root to unit variance (standardised units)",
                    f"invert the features' correlation matrix (+ ridge) by "
                    f"{newton_schulz_steps(p * params.max_inverse)} Newton-Schulz steps at {frac} bits, one step "
                    "of iterative refinement for the coefficients",
                    "guard (revealed to every party): the inverse converged and is bounded by max_inverse; "
                    "otherwise the job stops with the cause (collinear or constant features) and nothing else is revealed",
                    *(["vertical (shared rows): the moment matrix is known to (2 sqrt(n) + 4) 2^-24 absolute in scaled "
                       "units, so a variance below 256 times that counts as none (the guard stops the job), and each "
                       "coefficient's accuracy below is loosened by that error over the smallest scaled variance"]
                      if partition == "vertical" else []),
                    "coefficients, standard errors, t and R^2 in standardised units; released as floating-point "
                    "pairs (mantissa, exponent), which reveal each value and nothing more",
                    f"fewer than {p + 2} rows: only n is released; the rest is NaN (no residual degrees of freedom)"],
            release=release, frac_bits=frac, scaling=scaling, meta={"accuracy": acc},
        )

    def local(self, columns: LocalTable, params: LinRegParams, plan: Plan) -> Local:
        if plan.partition == "vertical":
            return local_gram(columns, plan)
        x = scale_columns(columns.arrays(plan.columns), plan.scaling).reshape(-1, len(plan.columns))
        return local_moments(x, full=True)

    def secure(self, session: Session, local: Local, params: LinRegParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        k1 = len(plan.columns)
        if plan.partition == "vertical":
            return self._solve(session, params, plan, *self._from_gram(
                plan, *normalized_gram(session, local, plan, holders)))
        n = int(pooled_counts(session, local)[0])
        if n < k1 + 1:
            return self._solve(session, params, plan, n, None, None)
        mean, m2 = pool(session, local, np.full(k1, n, dtype=np.int64), full=True)
        return self._solve(session, params, plan, n, mean, m2)

    def secure_rows(self, session: Session, rows: SharedRows, params: LinRegParams, plan: Plan) -> dict[str, Any]:
        return self._solve(session, params, plan, *self._from_gram(plan, *shared_gram(rows, plan)))

    @staticmethod
    def _from_gram(plan: Plan, n: int, m: SecretTensor) -> tuple[int, SecretTensor | None, SecretTensor | None, float]:
        """``(n, mean, population co-moments, floor)`` at :data:`WIDE` from ``Z'Z / n``,
        ``Z = [1, scaled columns]`` of shared rows. Its entries carry an absolute error up to
        :func:`shared_rows_error` (the rows are scaled by ``1/sqrt(n)`` at the plan's bits); a
        variance below 256 times that is treated as no variance (the guard then stops the job)."""
        k1 = len(plan.columns)
        floor = 256 * shared_rows_error(n, plan.frac_bits)
        if n < k1 + 1:
            return n, None, None, floor
        mean = m[0, 1:]
        cov = m[1:, 1:] - mean.reshape(k1, 1) * mean.reshape(1, k1)
        return n, approx.at_scale(mean, WIDE), approx.at_scale(cov, WIDE), floor

    def _undefined(self, session: Session, params: LinRegParams, plan: Plan, n: int) -> dict[str, Any]:
        """Too few rows for residual degrees of freedom: n and NaN estimates, nothing computed."""
        if plan.recipients is not None and session.party not in plan.recipients:
            return {"n": n}
        return self.finish(params, plan, {"n": n}, None)

    def finish(self, params: LinRegParams, plan: Plan, public: dict[str, Any],
               opened: list[Opened] | None) -> dict[str, Any]:
        """From the opened floating-point pairs (mantissas, exponents; and R^2 without ridge): the
        coefficients in original units, their standard errors, t, p-values and R^2; with nothing
        opened (too few rows), n and NaN estimates."""
        n, p = int(public["n"]), len(params.features)
        if opened is None:
            nan = np.full(p + 1, np.nan)
            return {"n": n, "coefficients": nan, "std_errors": nan.copy(), "t": nan.copy(), "p_values": nan.copy(),
                    "r2": math.nan}
        h = np.array([plan.scaling[c][1] for c in params.features])
        cen = np.array([plan.scaling[c][0] for c in params.features])
        cy, hy = plan.scaling[params.target]
        vals = float_value(opened[0], opened[1])
        slopes = hy / h * vals[:p]
        icpt = cy + hy * vals[p] - float(cen @ slopes)
        coef = np.concatenate([[icpt], slopes])
        if params.ridge:
            return {"n": n, "coefficients": coef}
        dof = n - p - 1
        se = np.concatenate([[hy * vals[2 * p + 1]], hy / h * vals[p + 1:2 * p + 1]]) / math.sqrt(dof)
        with np.errstate(divide="ignore", invalid="ignore"):  # a perfect fit: SE 0, |t| infinite
            tstat = coef / se
        from scipy import stats  # imported where used: ~1 s per process, and only released p-values need it
        return {"n": n, "coefficients": coef, "std_errors": se, "t": tstat,
                "p_values": 2 * stats.t.sf(np.abs(tstat), dof), "r2": float(np.asarray(opened[2]).reshape(-1)[0])}

    @staticmethod
    def _guard(session: Session, params: LinRegParams, corr: SecretTensor, inv: SecretTensor,
               cyt: SecretTensor) -> None:
        """The declared guard: two bits opened to every party (see the module docstring)."""
        p = corr.shape[0]
        tol = guard_tolerance(p, params.max_inverse, corr.frac_bits)
        resid = np.eye(p) - corr @ inv
        bits = corr._sign_bits(tol - resid, resid + tol, params.max_inverse - inv, inv + params.max_inverse, cyt - 0.25)
        bad = bits[0].sum() + bits[1].sum() + bits[2].sum() + bits[3].sum()
        (ill,) = corr._sign_bits(0.5 - bad)
        ill_v, flat_v = session.reveal(ill, bits[4].reshape(1))
        if int(np.asarray(ill_v)) :
            raise GuardFailed("conditioning", "linear_regression stopped by its conditioning guard: the features are "
                              "(nearly) collinear, or one of them has no variance or a spread below what its declared "
                              "bounds resolve (1/λ_min of their correlation matrix exceeds max_inverse = "
                              f"{params.max_inverse:g}); drop a redundant or constant feature, declare tighter bounds, "
                              "ask for ridge, or raise max_inverse. Only this guard's bit was revealed.")
        if int(np.asarray(flat_v)[0]):
            raise GuardFailed("target_variance", "linear_regression stopped by its guard: the target has no variance "
                              "(below the resolution of its declared bounds), so there is nothing to regress. "
                              "Only this guard's bit was revealed.")

    def _solve(self, session: Session, params: LinRegParams, plan: Plan, n: int,
               mean: SecretTensor | None, m2: SecretTensor | None, floor: float | None = None) -> dict[str, Any]:
        """The regression from the pooled means and population co-moments of the scaled
        ``[features, target]`` (both at :data:`WIDE`; None below ``p + 2`` rows). ``floor``: the
        smallest variance known to a useful relative precision (the shared-rows paths)."""
        p = len(params.features)
        if mean is None or m2 is None:
            return self._undefined(session, params, plan, n)
        f = plan.frac_bits
        h = np.array([plan.scaling[c][1] for c in params.features])
        cen = np.array([plan.scaling[c][0] for c in params.features])
        diag = np.arange(p)
        # ridge: lambda |beta|^2 in original units is pen_j |slope_j|^2 in scaled, per-row units;
        # the x block is divided by a public power of two kappa so every entry stays below 1
        pen = params.ridge / (h * h) / n
        shift = max(0, math.ceil(math.log2(1 + float(pen.max())))) if params.ridge else 0
        axx, cxy, cyy = m2[:p, :p], m2[:p, p], m2[p, p].reshape(1)
        if shift:
            axx, cxy = _halve(axx, shift), _halve(cxy, shift)
        if params.ridge:
            axx = axx + np.diag(pen / 2.0**shift)
        # secure normalisation by secret powers of two, then unit diagonals (standardised units)
        g, t = normaliser(concatenate([axx[diag, diag], cyy]), floor)
        gx, gy = g[:p], g[p:]
        at = approx.at_scale(axx * _outer(gx, gx), f)
        ct = approx.at_scale(cxy * (gx * gy), f)
        cyt = approx.at_scale(cyy * (gy * gy), f)
        s = rsqrt_unit(concatenate([at[diag, diag], cyt]))
        sx, sy = s[:p], s[p:]
        corr = at * _outer(sx, sx)  # unit diagonal: the features' correlation matrix (+ ridge)
        r = ct * sx * sy
        inv = inv_spd(corr, float(p), newton_schulz_steps(p * params.max_inverse))
        b = inv @ r
        b = b + inv @ (r - corr @ b)  # one step of iterative refinement
        self._guard(session, params, corr, inv, cyt)
        root_y = cyt * sy  # sqrt(cyt) = 1 / s_y
        ratio = sx * root_y  # s_j / s_y in [0.5, 2]
        m = ratio * b  # slope_j (scaled units) = 2^(t_j - t_y) m_j
        # intercept at the bounds' centres, times G_y: G_y mu_y - sum_j (G_j mu_j) m_j (exact products)
        gm = times_power_of_two(mean, g, f)
        whole = approx.at_scale(gm[:p], 0)
        frac_part = approx.at_scale(gm[:p] - whole, f - 2)
        a0 = gm[p] - (whole * m).sum() - approx.mul_to(frac_part, approx.at_scale(m, f - 2), f).sum()
        ty = concatenate([t[p:]] * p)
        if params.ridge:
            mant, expo = float_parts(concatenate([m, a0.reshape(1)]), concatenate([t[:p] - ty, -t[p:]]))
            got = received(session.reveal(mant, expo, to=plan.recipients))
            return {"n": n} if got is None else self.finish(params, plan, {"n": n}, got)
        e2 = cyt * sy * sy - (b * r).sum()  # 1 - R^2 (times cyt sy^2, which is 1 to 2^-20)
        r2 = (1 - e2 * (2 - root_y * sy)).reshape(1)  # 1 / q = 2 - q to (1 - q)^2 for q = cyt sy^2 within 2^-20 of 1
        e2 = e2 + (e2 < 0) * (0 - e2)  # rounding can take a perfect fit below 0
        v = e2 * inv[diag, diag]
        se_m = ratio * approx.sqrt(v)  # times 2^(t_j - t_y) / sqrt(dof)
        # intercept's standard error: sqrt(e2 (1 + w' inv w) / dof) / (G_y s_y), w_j = G_j s_j (mu_j + c_j / h_j)
        offset = (gx * np.round(cen / h * 2.0**f).astype(np.int64))._relabel(f)  # G_j c_j / h_j, exact
        big, small, wn, e_pos = _common_scale(gm[:p] + offset)
        wn = wn * sx
        v0 = big + small * (wn * (inv @ wn)).sum()  # (1 + w' inv w) / 2^(2E')
        se0 = approx.sqrt(e2 * v0) * root_y  # times 2^(E' - t_y) / sqrt(dof)
        mant, expo = float_parts(concatenate([m, a0.reshape(1), se_m, se0]),
                                 concatenate([t[:p] - ty, -t[p:], t[:p] - ty, e_pos - t[p:]]))
        opened = received(session.reveal(mant, expo, r2, to=plan.recipients))
        return {"n": n} if opened is None else self.finish(params, plan, {"n": n}, opened)
