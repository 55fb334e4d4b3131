"""``linear_regression``: OLS and ridge over horizontally or vertically partitioned rows
(vertically also over secret-shared aligned rows, PSI ``aligned`` mode).

The normal equations are formed from the parties' local cross products and solved inside MPC
(Newton–Schulz inverse); only the declared outputs are revealed. Everything is computed on
columns scaled to [-1, 1] by their declared bounds and mapped back with public matrices.
"""

from __future__ import annotations

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
    scaling_for,
    shared_gram,
)
from tessera.analytics.registry import register
from tessera.data.local import LocalTable
from tessera.data.schema import Schema
from tessera.mpc import approx
from tessera.mpc.linalg import inv_spd, newton_schulz_steps
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, concatenate

__all__ = ["LinearRegression"]


class LinRegParams(Params):
    features: list[str] = Field(min_length=1)
    target: str
    ridge: float = Field(0.0, ge=0.0, description="L2 penalty on the (unscaled) coefficients, as sklearn's alpha")
    max_inverse: float = Field(
        1e3, gt=1, description="bound on 1/λ_min of the scaled, centred feature covariance (its conditioning)"
    )
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0)

    @model_validator(mode="after")
    def _target_not_feature(self) -> LinRegParams:
        if self.target in self.features:
            raise ValueError(f"the target {self.target!r} is also a feature")
        return self


@register
class LinearRegression(Analysis[LinRegParams]):
    """Least squares with an intercept; OLS results match statsmodels' ``OLS(y, add_constant(X))``."""

    name = "linear_regression"
    version = "1.0"
    params_model = LinRegParams
    partitions = ("horizontal", "vertical")
    description = "OLS or ridge regression: coefficients, standard errors, t, p-values, R^2"

    def plan(self, schema: Schema, params: LinRegParams, partition: str, parties: list[str]) -> Plan:
        cols = numeric_columns(schema, [*params.features, params.target])
        frac = 24
        check_magnitude("a sum of scaled cross products (at most one per row)", params.max_rows, frac,
                        "declare a smaller row-count bound")
        # Newton-Schulz iterates are polynomials in the matrix: |X_k (2I - A X_k)| <= 2 |A^-1|
        check_magnitude("an entry of a Newton-Schulz iterate (2 * max_inverse)",
                        2 * params.max_inverse, 2 * frac,
                        "lower max_inverse (better conditioned features) or rescale the features")
        k = len(params.features) + 1
        release = [Release("n", "total number of rows (to every party)"), Release("coefficients", f"{k} coefficients (intercept first)")]
        if params.ridge == 0:
            release += [Release("std_errors", "standard errors"), Release("t", "t statistics"),
                        Release("p_values", "two-sided p-values (computed from t and n, public)"),
                        Release("r2", "coefficient of determination")]
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=cols,
            local=["scale features and target to [-1, 1] by their declared bounds",
                   "horizontal: count; cross products [1 X y]'[1 X y] of the scaled columns; "
                   "vertical: secret-share the party's scaled columns row-wise"],
            secure=["add the parties' cross products (vertical: one secure matrix product); divide by n",
                    f"invert the centred covariance (+ ridge) by "
                    f"{newton_schulz_steps(len(params.features) * params.max_inverse)} Newton-Schulz steps",
                    "coefficients = (X'X)^-1 X'y; residual variance; standard errors via sqrt",
                    "map back to the original units with public matrices"],
            release=release, frac_bits=frac, scaling=scaling_for(schema, cols),
        )

    def local(self, columns: LocalTable, params: LinRegParams, plan: Plan) -> Local:
        return local_gram(columns, plan)  # Z = [1, X', y']

    def secure(self, session: Session, local: Local, params: LinRegParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        return self._solve(session, params, plan, *normalized_gram(session, local, plan, holders))

    def secure_rows(self, session: Session, rows: SharedRows, params: LinRegParams, plan: Plan) -> dict[str, Any]:
        return self._solve(session, params, plan, *shared_gram(rows, plan))

    def _solve(self, session: Session, params: LinRegParams, plan: Plan, n: int, m: SecretTensor) -> dict[str, Any]:
        """The regression from ``Z'Z / n`` for ``Z = [1, scaled features, scaled target]``."""
        p = len(params.features)
        k = p + 1
        mu, mu_y = m[0, 1:k], m[0, k]
        # centred second moments: well conditioned whatever the declared bounds' centre
        sxx = m[1:k, 1:k] - mu.reshape(p, 1) * mu.reshape(1, p)
        sxy = m[1:k, k] - mu * mu_y
        syy = m[k, k] - mu_y * mu_y
        h = np.array([plan.scaling[c][1] for c in params.features])
        cen = np.array([plan.scaling[c][0] for c in params.features])
        cy, hy = plan.scaling[params.target]
        penalty = params.ridge / (h * h) / max(n, 1)  # lambda |beta|^2 in original units
        if params.ridge:
            sxx = sxx + np.diag(penalty)
        inv = inv_spd(sxx, float(p) + float(penalty.sum()), newton_schulz_steps(p * params.max_inverse))
        slopes = inv @ sxy
        g = cen / h
        # beta_0 = cy + hy * (mu_y - mu.slopes - g.slopes); beta_j = hy / h_j * slopes_j
        icpt = mu_y - ((mu + g) * slopes).sum()
        factors = np.concatenate([[hy], hy / h])
        if params.ridge:
            got = received(session.reveal(icpt, slopes, to=plan.recipients))
            if got is None:
                return {"n": n}
            i_, s_ = got
            return {"n": n, "coefficients": np.concatenate([[cy + hy * i_], hy / h * s_])}
        dof = max(n - k, 1)
        rss = syy - (slopes * sxy).sum()  # residual sum of squares / n, scaled units
        sigma2 = rss.scale(n / dof, bound=1.0)
        w = mu + g
        v0 = 1 + (w * (inv @ w)).sum()
        v = concatenate([v0.reshape(1), inv[np.arange(p), np.arange(p)]]) * sigma2  # n Var(beta') in scaled units
        inv_sd = approx.rsqrt(v)
        est = concatenate([(icpt + cy / hy).reshape(1), slopes])
        tstat = est * inv_sd * float(np.sqrt(n))
        sd = v * inv_sd
        r2 = 1 - approx.divide(rss, syy)
        opened = received(session.reveal(icpt, slopes, sd, tstat, r2, to=plan.recipients))
        if opened is None:
            return {"n": n}
        i_, s_, sd_, t_, r2_ = opened
        coef = np.concatenate([[cy + hy * i_], hy / h * s_])
        from scipy import stats  # imported where used: ~1 s per process, and only released p-values need it
        p_values = 2 * stats.t.sf(np.abs(t_), dof)
        return {"n": n, "coefficients": coef, "std_errors": factors * sd_ / np.sqrt(n), "t": t_,
                "p_values": p_values, "r2": float(r2_)}
