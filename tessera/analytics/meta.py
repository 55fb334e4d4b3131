"""``meta_analysis``: each party is a study; pooled treatment effects without revealing any
single study's estimate.

Each study computes, on its own rows, the difference in mean outcome between treated and
control patients and its variance; the inverse-variance fixed-effect and DerSimonian–Laird
random-effects estimates, their confidence intervals, Cochran's Q, I^2 and tau^2 are computed
over secret shares (as ``statsmodels.stats.meta_analysis.combine_effects(method_re="dl")``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from tessera.analytics.base import Analysis, Local, Params, Plan, Release
from tessera.analytics.common import received
from tessera.analytics.registry import register
from tessera.data.local import LocalTable
from tessera.data.schema import ColumnType, Schema
from tessera.errors import PlanError
from tessera.mpc import approx
from tessera.mpc import functions as fn
from tessera.mpc.session import Session
from tessera.mpc.tensor import concatenate

__all__ = ["MetaAnalysis"]


class MetaParams(Params):
    outcome: str
    treatment: str
    min_arm_rows: int = Field(10, ge=2, description="each study needs this many treated and control rows")
    confidence: float = Field(0.95, gt=0, lt=1)


@register
class MetaAnalysis(Analysis[MetaParams]):
    """Inverse-variance fixed-effect and DerSimonian–Laird random-effects meta-analysis."""

    name = "meta_analysis"
    version = "1.0"
    params_model = MetaParams
    description = "pooled effect (fixed and random), confidence intervals, Q, I^2, tau^2"

    def plan(self, schema: Schema, params: MetaParams, partition: str, parties: list[str]) -> Plan:
        if schema.column(params.treatment).type is not ColumnType.BOOL:
            raise PlanError(f"the treatment column {params.treatment!r} must be boolean")
        if len(parties) < 2:
            raise PlanError("a meta-analysis needs at least two studies")
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.outcome, params.treatment],
            local=["the study's effect: mean outcome of treated minus control rows, and its variance "
                   "(var_t / n_t + var_c / n_c); weight w = 1 / variance"],
            secure=["sums of w, w*effect, w*effect^2, w^2 over the studies",
                    "fixed effect = sum(w effect) / sum(w); Q; I^2 = max(0, (Q - df) / Q)",
                    "tau^2 = max(0, (Q - df) / (sum w - sum w^2 / sum w)); random-effects weights 1 / (v_i + tau^2)"],
            release=[Release(r, d) for r, d in [
                ("fixed_effect, fixed_se", "pooled fixed-effect estimate and standard error"),
                ("random_effect, random_se", "DerSimonian-Laird estimate and standard error"),
                ("q, i2, tau2", "heterogeneity statistics"),
                ("confidence intervals, p-values", "public functions of the above")]],
            frac_bits=20,
        )

    def local(self, columns: LocalTable, params: MetaParams, plan: Plan) -> Local:
        y, t = columns[params.outcome], columns[params.treatment] > 0.5
        if min(t.sum(), (~t).sum()) < params.min_arm_rows:
            raise PlanError(f"a study has fewer than {params.min_arm_rows} rows in an arm")
        effect = y[t].mean() - y[~t].mean()
        var = y[t].var(ddof=1) / t.sum() + y[~t].var(ddof=1) / (~t).sum()
        w = 1.0 / var
        return {"study": np.array([w, w * effect, w * effect**2, w * w, var, effect])}

    def secure(self, session: Session, local: Local, params: MetaParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        k = session.n_parties
        studies = concatenate([session.input(p, local["study"].reshape(1, 6) if p == session.me else None, shape=(1, 6))
                               for p in range(k)])
        tot = studies.sum(axis=0)
        w_sum, wt, wt2, w2 = tot[0], tot[1], tot[2], tot[3]
        inv_w = approx.reciprocal(w_sum)
        fixed = wt * inv_w
        q = wt2 - fixed * wt
        excess = fn.relu(q - (k - 1))
        i2 = excess * approx.reciprocal(q)
        c = w_sum - w2 * inv_w
        tau2 = excess * approx.reciprocal(c)
        w_re = approx.reciprocal(studies[:, 4] + tau2)
        w_re_sum = w_re.sum()
        random = (w_re * studies[:, 5]).sum() * approx.reciprocal(w_re_sum)
        ses = approx.rsqrt(concatenate([w_sum.reshape(1), w_re_sum.reshape(1)]))
        vals = received(session.reveal(fixed, random, ses, q, i2, tau2, to=plan.recipients))
        if vals is None:
            return {"studies": k}
        fe, re, se, q_, i2_, tau2_ = (np.asarray(v, dtype=float) for v in vals)
        from scipy import stats  # imported where used: ~1 s per process, and only released p-values need it
        z = stats.norm.ppf(0.5 + params.confidence / 2)
        out: dict[str, Any] = {"studies": k, "q": float(q_), "i2": float(i2_), "tau2": float(tau2_),
                               "q_p_value": float(stats.chi2.sf(float(q_), k - 1))}
        for label, est, s in (("fixed", fe, se[0]), ("random", re, se[1])):
            out[f"{label}_effect"] = float(est)
            out[f"{label}_se"] = float(s)
            out[f"{label}_ci"] = (float(est - z * s), float(est + z * s))
            out[f"{label}_p_value"] = float(2 * stats.norm.sf(abs(float(est) / float(s))))
        return out
