"""``meta_analysis``: each party is a study; pooled treatment effects without revealing any
single study's estimate.

Each study computes, on its own rows, the difference in mean outcome between treated and
control patients and its variance; the inverse-variance fixed-effect and DerSimonian–Laird
random-effects estimates, their standard errors, Cochran's Q, I^2 and tau^2 are computed over
secret shares (as ``statsmodels.stats.meta_analysis.combine_effects(method_re="dl")``).

**Precision** (issue #14: ``1 / W`` at 20 bits lost precise studies, and above 2^20 the fixed
effect came out exactly 0). Effects and variances are scaled by the outcome's declared
half-range ``h``: ``e_i / (2h)`` lies in [-1, 1] and the variance ``v_i / h^2`` in (0, 2], so the
weights ``w_i = h^2 / v_i`` are at least 1/2. The weights are normalised by a secret power of
two of their sum (``W = u 2^E``, ``u`` in [0.5, 1)), so every weighted sum is a convex
combination at 58 fractional bits (:func:`~tessera.analytics.moments.wide_mul`), and reciprocals
are Newton iterations on [0.5, 1) at 58 bits. ``tau^2`` is at most 40 in scaled units (a bound
from the effects' range alone), which puts ``v_i + tau^2`` in a fixed range; random-effects
weights are formed relative to the smallest ``v_i + tau^2``. Values without a bound (``Q``,
``tau^2`` and the standard errors) are opened as floating-point pairs, which reveal the value
and nothing else.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
from pydantic import Field

from tessera.analytics.base import Analysis, Local, Params, Plan, Release
from tessera.analytics.common import received
from tessera.analytics.moments import WIDE, float_parts, float_value, rsqrt_unit, wide_mul
from tessera.analytics.registry import register
from tessera.analytics.results import MetaResult
from tessera.data.local import LocalTable
from tessera.data.schema import ColumnType, Schema
from tessera.errors import DataError, PlanError
from tessera.mpc import approx
from tessera.mpc import functions as fn
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, concatenate

__all__ = ["MetaAnalysis", "MAX_STUDIES", "MIN_VARIANCE"]

#: Studies one job may pool (the weights' sum stays below 2^45 at 16 bits).
MAX_STUDIES = 256
#: Smallest effect variance, relative to the outcome's squared half-range, a study may have.
MIN_VARIANCE = 2.0**-36
_WEIGHT_BITS = 16
_POS = np.arange(61, dtype=np.int64)


class MetaParams(Params):
    outcome: str
    treatment: str
    min_arm_rows: int = Field(10, ge=2, description="each study needs this many treated and control rows")
    confidence: float = Field(0.95, gt=0, lt=1)


def _reciprocal_unit(u: SecretTensor) -> SecretTensor:
    """``1 / u`` for ``u`` in [0.5, 1) at 58 bits: five Newton steps from ``2.9142 - 2u``
    (relative error 0.086, 7.4e-3, 5.5e-5, 3e-9, 9e-18, then rounding: about 2^-55)."""
    y = 2.9142 - 2 * u
    for _ in range(5):
        y = wide_mul(y, 2 - wide_mul(u, y))
    return y


def _table(onehot: SecretTensor, values: npt.NDArray[np.int64]) -> SecretTensor:
    """The secret integer ``values[k]`` for the one-hot position ``k``."""
    return (onehot * values.astype(np.int64)).sum(axis=-1)


@register
class MetaAnalysis(Analysis[MetaParams]):
    """Inverse-variance fixed-effect and DerSimonian–Laird random-effects meta-analysis."""

    name = "meta_analysis"
    version = "1.0"
    params_model = MetaParams
    description = "pooled effect (fixed and random), confidence intervals, Q, I^2, tau^2"
    result_type = MetaResult

    def plan(self, schema: Schema, params: MetaParams, partition: str, parties: list[str]) -> Plan:
        if schema.column(params.treatment).type is not ColumnType.BOOL:
            raise PlanError(f"the treatment column {params.treatment!r} must be boolean")
        col = schema.column(params.outcome)
        if col.type not in (ColumnType.FLOAT, ColumnType.INT):
            raise PlanError(f"the outcome column {params.outcome!r} must be numeric")
        if len(parties) < 2:
            raise PlanError("a meta-analysis needs at least two studies")
        if len(parties) > MAX_STUDIES:
            raise PlanError(f"a meta-analysis pools at most {MAX_STUDIES} studies, not {len(parties)}")
        lo, hi = col.bounds
        half = (hi - lo) / 2 or 1.0
        # the weights enter at 16 fractional bits and are at least 1/2: relative 2^-16 each
        acc = {"fixed_effect": {"abs": 2.0**-50 * 2 * half, "rel_spread": 2.0**-16},
               "random_effect": {"rel_spread": 2.0**-16},
               "se": {"rel": 2.0**-22}, "q": {"rel": 2.0**-40, "abs": len(parties) * 2.0**-20},
               "tau2": {"rel": 2.0**-20}}
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.outcome, params.treatment],
            local=["the study's effect: mean outcome of treated minus control rows, and its variance "
                   "(var_t / n_t + var_c / n_c), both scaled by the outcome's declared half-range; weight w = 1 / variance"],
            secure=["W = sum w normalised by a secret power of two; weighted sums as convex combinations at 58 bits",
                    "fixed effect = sum(w effect) / W; Q = sum w (effect - fixed)^2; C = W - sum w^2 / W",
                    "tau^2 = max(0, Q - df) / C (at most 40 in scaled units); random-effects weights 1 / (v_i + tau^2), "
                    "relative to the largest",
                    "standard errors 1 / sqrt(sum of weights); Q, tau^2 and the standard errors opened as "
                    "floating-point pairs (they reveal the value and nothing else)"],
            release=[Release(r, d) for r, d in [
                ("fixed_effect, fixed_se", f"pooled fixed-effect estimate (|error| <= {acc['fixed_effect']['abs']:.2g} + "
                                           "2^-16 x the largest distance of a study's effect from it) and standard "
                                           f"error (relative {acc['se']['rel']:.2g})"),
                ("random_effect, random_se", "DerSimonian-Laird estimate, tau^2 truncated at 0 (|error| <= 2^-16 x "
                                             "the largest distance of a study's effect from it) and standard error "
                                             "(relative 2^-16)"),
                ("q, i2, tau2", "heterogeneity statistics (Q relative 2^-40 + studies x 2^-20; tau^2 relative 2^-20); "
                                "I^2 = max(0, (Q - df) / Q) is public from Q"),
                ("confidence intervals, p-values", "public functions of the above")]],
            frac_bits=28, meta={"accuracy": acc, "half": half},
        )

    def local(self, columns: LocalTable, params: MetaParams, plan: Plan) -> Local:
        y, t = columns[params.outcome], columns[params.treatment] > 0.5
        if min(t.sum(), (~t).sum()) < params.min_arm_rows:
            raise PlanError(f"a study has fewer than {params.min_arm_rows} rows in an arm")
        half = float(plan.meta["half"])
        ys = np.asarray(y, dtype=np.float64) / half
        effect = ys[t].mean() - ys[~t].mean()  # in [-2, 2]
        var = ys[t].var(ddof=1) / t.sum() + ys[~t].var(ddof=1) / (~t).sum()  # in [0, 2]
        if not var >= MIN_VARIANCE:
            raise DataError(f"a study's treatment effect has a variance below the resolution of the declared bounds "
                            f"of {params.outcome!r} (its arms' outcomes barely vary); declare tighter bounds")
        raw = [round(2.0**_WEIGHT_BITS / var), round(effect / 2 * 2.0**WIDE), round(var * 2.0**WIDE)]
        return {"study": np.array(raw, dtype=np.int64)}

    def secure(self, session: Session, local: Local, params: MetaParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        k = len(session.owners)
        rows = concatenate(session.owner_inputs(local["study"].reshape(1, 3) if session.owns else None, shape=(1, 3),
                                                frac_bits=0))
        w, eps, var = rows[:, 0]._relabel(_WEIGHT_BITS), rows[:, 1]._relabel(WIDE), rows[:, 2]._relabel(WIDE)
        # W = u 2^E_W; w_hat = w / 2^E_W sums to u (raw: w 2^(60 - k_W), truncated to 58 bits)
        total = w.sum().reshape(1)
        _, oh_w = approx.normalize(total)
        shift_w = (oh_w * (np.int64(1) << (60 - _POS))).sum(axis=-1)
        w_hat = SecretTensor(session, session.protocol.mul(w.shares, concatenate([shift_w] * k).shares, 61 - WIDE), WIDE)
        e_w = _POS + 1 - _WEIGHT_BITS  # W = u 2^(k + 1 - 16)
        u = w_hat.sum().reshape(1)
        inv_u = _reciprocal_unit(u)
        fixed = wide_mul(wide_mul(w_hat, eps).sum().reshape(1), inv_u)  # in [-1, 1]
        d = eps - concatenate([fixed] * k)
        q_hat = wide_mul(wide_mul(w_hat, d), d).sum().reshape(1)  # Q = 4 * 2^E_W * q_hat
        c = u - wide_mul(wide_mul(w_hat, w_hat).sum().reshape(1), inv_u)  # C = 2^E_W c
        df = k - 1
        # tau^2 = relu(4 q_hat - df 2^-E_W) / c = 8 relu(q_hat / 2 - df 2^(-E_W - 3)) / c
        excess_t = np.minimum(df * 2.0 ** (-e_w - 3), 4.0)
        excess = fn.relu(approx.at_scale(q_hat._relabel(WIDE + 1), WIDE)
                         - _table(oh_w, np.round(excess_t * 2.0**WIDE).astype(np.int64))._relabel(WIDE))
        c_u, oh_c = _normalise_wide(c)
        y_tau = wide_mul(excess, _reciprocal_unit(c_u))  # tau^2 = y_tau 2^(3 - E_c), E_c = k_c + 1 - 58
        e_c = _POS + 1 - WIDE
        tau_16 = approx.times_power(y_tau, oh_c, (-1 - e_c).astype(np.int64), 1)  # tau^2 / 16 (at most 2.5); c < 1: E_c <= 0
        x = approx.at_scale(var._relabel(WIDE + 4), WIDE) + concatenate([tau_16] * k)  # (v_i + tau^2) / 16
        x_min = fn.min(x).reshape(1)
        x_u, oh_x = _normalise_wide(x)
        e_x = _POS + 1 - WIDE
        ratio = wide_mul(approx.times_power(concatenate([x_min] * k), oh_x, (-e_x).astype(np.int64), 2),  # x < 4.2: E_x <= 2
                         _reciprocal_unit(x_u))
        lead = max(1, math.ceil(math.log2(k)) + 1)
        r = approx.at_scale(ratio._relabel(WIDE + lead), WIDE)  # r_i / 2^L: in (0, 2^-L]
        den = r.sum().reshape(1)
        num = wide_mul(r, eps).sum().reshape(1)
        d_u, oh_d = _normalise_wide(den)
        e_d = _POS + 1 - WIDE
        random = wide_mul(approx.times_power(num, oh_d, (-e_d).astype(np.int64), 0), _reciprocal_unit(d_u))  # den <= 1/2
        # standard errors: fixed 1 / sqrt(W) = 2^(-E_W / 2) / sqrt(u); random sqrt(16 x_min / (den 2^L))
        m_u, oh_m = _normalise_wide(x_min)
        e_m = _POS + 1 - WIDE
        rs_u = rsqrt_unit(approx.at_scale(u, 28))
        half_w, odd_w = (-e_w) // 2, (-e_w) % 2
        se_fixed = rs_u * (1 + _table(oh_w, odd_w) * (math.sqrt(2) - 1))
        ratio_re = approx.at_scale(wide_mul(m_u, _reciprocal_unit(d_u)), 28)  # in (0.5, 2)
        sq = ratio_re * rsqrt_unit(ratio_re)
        # exponent (4 - L + E_m - E_d) / 2: parity and floor from the two one-hots' tables
        a_m, p_m = e_m // 2, e_m % 2
        a_d, p_d = e_d // 2, e_d % 2
        c0 = 4 - lead
        a0, p0 = c0 // 2, c0 % 2
        pm, pd = _table(oh_m, p_m), _table(oh_d, p_d)
        both = pm * pd
        if p0:
            carry, odd = pm - both, 1 - (pm + pd - 2 * both)
        else:
            carry, odd = -(pd - both), pm + pd - 2 * both
        expo_re = a0 + _table(oh_m, a_m) - _table(oh_d, a_d) + carry
        se_random = sq * (1 + odd * (math.sqrt(2) - 1))
        mant, expo = float_parts(concatenate([q_hat, y_tau, approx.at_scale(se_fixed, WIDE), approx.at_scale(se_random, WIDE)]),
                                 concatenate([_table(oh_w, e_w) + 2, 3 - _table(oh_c, e_c), _table(oh_w, half_w),
                                              expo_re]))
        vals = received(session.reveal(fixed, random, mant, expo, to=plan.recipients))
        return {"studies": k} if vals is None else self.finish(params, plan, {"studies": k}, vals)

    def finish(self, params: MetaParams, plan: Plan, public: dict[str, Any], opened: list[Any] | None) -> dict[str, Any]:
        """From the opened estimates (scaled) and floating-point pairs (Q, tau^2, standard errors):
        the pooled effects in original units, their intervals and p-values, Q, I^2 and tau^2."""
        k = int(public["studies"])
        if opened is None:
            return {"studies": k}
        vals, df = opened, k - 1
        h = float(plan.meta["half"])
        fe = 2 * h * float(np.asarray(vals[0]).reshape(-1)[0])
        re = 2 * h * float(np.asarray(vals[1]).reshape(-1)[0])
        q_, t_s, se_f, se_r = float_value(vals[2], vals[3])
        tau2 = float(t_s) * h * h
        ses = (float(se_f) * h, float(se_r) * h)
        from scipy import stats  # imported where used: ~1 s per process, and only released p-values need it
        z = stats.norm.ppf(0.5 + params.confidence / 2)
        q = float(q_)
        i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
        out: dict[str, Any] = {"studies": k, "q": q, "i2": i2, "tau2": tau2,
                               "q_p_value": float(stats.chi2.sf(q, df))}
        for label, est, s in (("fixed", fe, ses[0]), ("random", re, ses[1])):
            out[f"{label}_effect"] = est
            out[f"{label}_se"] = s
            out[f"{label}_ci"] = (est - z * s, est + z * s)
            out[f"{label}_p_value"] = float(2 * stats.norm.sf(abs(est) / s))
        return out


def _normalise_wide(x: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
    """``(u, onehot)`` with ``x = u 2^(k + 1 - 58)``, ``u`` in [0.5, 1) at 58 bits, for ``x`` at
    58 bits with ``0 < x < 8``."""
    u, onehot = approx.normalize(x)
    return u, onehot
