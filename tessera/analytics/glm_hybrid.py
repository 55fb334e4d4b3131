"""Hybrid GLMs for large horizontal data: ``logistic_regression_hybrid``, ``poisson_regression_hybrid``.

Row-level MPC (:mod:`tessera.analytics.logistic`) shares every row, so its cost grows with the row
count. Here the contract allows one more leakage — the Newton **iterates** ``beta_1..beta_k``
revealed to every data owner (leakage rule ``iterates = "owners"``, judged by policy) — and then
no row leaves its owner: at each iterate every owner computes its gradient ``g_i = sum r x`` and
Hessian ``H_i = sum w x x'`` over its own rows in its own engine (DuckDB, or a Spark cluster:
:meth:`tessera.data.local.LocalTable.glm_derivatives`), secret-shares ``g_i / N`` and
``H_i / N`` (each with a declared bound the owner checks, so nothing can wrap the ring), and the
MPC adds them, inverts the Hessian (Newton–Schulz) and forms the step. One bit per iteration
(to every party) says whether the step and the inverse have converged; until then the next
iterate is opened to the data owners only; the converged iterate is the model, opened to the
job's recipients as in ``logistic_regression``. The per-party ``g_i``, ``H_i`` and the pooled
``g``, ``H`` are never opened.

What the MPC costs no longer depends on the rows: per iteration one input of ``k + k^2`` values
per party, ``2 * steps`` small matrix products, one batched comparison and one opening.

Features are scaled to [-1, 1] by their declared bounds (public); a Poisson target by its
declared maximum, and every Poisson derivative by ``e^{-b_0}`` at the current intercept (public
to the owners), which leaves the Newton step unchanged and the shared values near 1.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from tessera.analytics.base import Analysis, Holders, Local, Params, Plan, Release
from tessera.analytics.common import DEFAULT_MAX_ROWS, check_magnitude, numeric_columns, scaling_for
from tessera.analytics.registry import register
from tessera.data.local import LocalTable
from tessera.data.reductions import Family, GlmDerivatives
from tessera.data.schema import ColumnType, Schema
from tessera.errors import DataError, GuardFailed, PlanError
from tessera.mpc.linalg import inv_spd, newton_schulz_steps
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor

__all__ = ["HybridLogistic", "HybridPoisson", "HybridLogParams", "HybridPoissonParams", "ITERATES_LEAKAGE",
           "HYBRID_ANALYSES"]

#: What these analyses reveal beyond their model, in the contract's terms: the leakage rule
#: ``iterates`` must be ``"owners"`` (:mod:`tessera.governance.policy`).
ITERATES_LEAKAGE = "owners"
#: The analyses that reveal their iterates to the data owners.
HYBRID_ANALYSES = ("logistic_regression_hybrid", "poisson_regression_hybrid")
#: The inverse guard: every entry of ``I - H X`` must be below this for a step to count as converged.
INVERSE_TOLERANCE = 2.0**-8
FRAC_BITS = 24


class HybridParams(Params):
    features: list[str] = Field(min_length=1)
    target: str
    max_iterations: int = Field(25, ge=1, le=50, description="Newton iterations at most (each reveals an iterate)")
    tol: float = Field(2.0**-12, ge=2.0**-16, le=0.5,
                       description="converged when every entry of the Newton step (scaled units) is below this")
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0)
    max_inverse: float = Field(1e3, gt=1, description="bound on 1/λ_min of the scaled Hessian / n")


class HybridLogParams(HybridParams):
    C: float | None = Field(None, gt=0, description="inverse L2 strength as scikit-learn's C; None: unpenalised")


class HybridPoissonParams(HybridParams):
    max_inverse: float = Field(100, gt=1, description="bound on 1/λ_min of the normalised Hessian / n")
    max_ratio: float = Field(4.0, ge=1, description="bound on every shared derivative (fitted means relative "
                                                      "to e^{b_0}, per row)")


HP = TypeVar("HP", bound=HybridParams)


def _untracked(t: SecretTensor) -> SecretTensor:
    """The same shares without a magnitude bound (Newton–Schulz iterates are bounded by the
    plan's check on ``max_inverse``, not by products of bounds)."""
    return SecretTensor(t.session, t.shares, t.frac_bits, None)


class HybridGLM(Analysis[HP]):
    """Newton's method with owner-computed derivatives at revealed iterates (module docstring)."""

    partitions = ("horizontal",)
    family: ClassVar[Family]
    #: whether the start needs the pooled mean of the target (revealed to the data owners)
    needs_start: ClassVar[bool] = False

    # -- hooks of a family --------------------------------------------------------------------
    def _check_target(self, schema: Schema, params: HP) -> None:
        raise NotImplementedError

    def _bound(self, params: HP) -> float:
        """Bound on every entry an owner shares (``|g_i / n|``, ``|H_i / n|``)."""
        return 1.0

    def _hessian_bound(self, params: HP) -> float:
        """Bound on a row's weight in the Hessian (so on its entries / n)."""
        return 0.25

    def _target_scale(self, schema: Schema, params: HP) -> float:
        return 1.0

    def _penalty(self, params: HP, h: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
        return np.zeros(len(h) + 1)

    def _start(self, mean_y: float, k: int) -> npt.NDArray[np.float64]:
        return np.zeros(k)

    def _offset(self, beta: npt.NDArray[np.float64]) -> float:
        return 0.0

    def _intercept_shift(self, schema: Schema, params: HP) -> float:
        return 0.0

    # -- stages -------------------------------------------------------------------------------
    def plan(self, schema: Schema, params: HP, partition: str, parties: list[str]) -> Plan:
        cols = numeric_columns(schema, params.features)
        if params.target in cols:
            raise PlanError(f"the target {params.target!r} is also a feature")
        self._check_target(schema, params)
        k = len(cols) + 1
        bound = self._bound(params)
        eig = k * self._hessian_bound(params)
        check_magnitude("a product of the Hessian and a Newton-Schulz iterate (k * weight bound * 2 * max_inverse)",
                        eig * 2 * params.max_inverse, 2 * FRAC_BITS,
                        "lower max_inverse (or max_ratio), or use fewer features")
        steps = newton_schulz_steps(eig * params.max_inverse)
        owners = tuple(parties)
        start = ([Release("start", "the pooled mean of the target, to every data owner (the start of the intercept)",
                          owners)] if self.needs_start else [])
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[*cols, params.target],
            local=["count the party's complete rows; at each revealed iterate compute the party's gradient and "
                   f"Hessian of the {self.family} log-likelihood over its own rows, in its own engine "
                   "(DuckDB or Spark), features scaled to [-1, 1] by their declared bounds"],
            secure=["add the parties' row counts and open them" + (" (and the target's sums, to the data owners: "
                    "the start)" if self.needs_start else ""),
                    f"up to {params.max_iterations} Newton iterations: each party secret-shares its g_i / n and H_i / n "
                    f"(declared bound {bound:g}, checked by the owner); the MPC adds them, inverts H with {steps} "
                    "Newton-Schulz steps and forms the step H^-1 g; one bit says whether every entry of the step is "
                    f"below tol = {params.tol:g} and of I - H H^-1 below {INVERSE_TOLERANCE:g}",
                    "map the coefficients back to the original units (public)"],
            release=[Release("n", "total training rows (to every party)"), *start,
                     Release("iterates", "the iterates beta_1..beta_k (scaled units), to every data owner: each "
                                         "owner's next gradient and Hessian are computed at them", owners),
                     Release("converged", "one bit per iteration to every party (so the number of iterations)"),
                     Release("coefficients", f"{k} coefficients (intercept first), the converged iterate")],
            frac_bits=FRAC_BITS, scaling=scaling_for(schema, cols),
            notes=["leakage (contract rule iterates = 'owners'): the Newton iterates beta_1..beta_k, to every data "
                   "owner; the parties' gradients and Hessians stay secret",
                   "the cost of the secure stage does not depend on the number of rows"],
            meta={"target_scale": self._target_scale(schema, params),
                  "intercept_shift": self._intercept_shift(schema, params), "steps": steps, "eig_upper": eig},
        )

    def local(self, columns: LocalTable, params: HP, plan: Plan) -> Local:
        """Not used: the secure stage reads the party's table at every iterate (:meth:`secure_table`)."""
        return {}

    def secure(self, session: Session, local: Local, params: HP, plan: Plan, holders: Holders) -> dict[str, Any]:
        raise PlanError(f"{self.name} reads each party's rows at every iterate; run it through a job")

    def secure_table(self, session: Session, table: LocalTable, params: HP, plan: Plan,
                     holders: Holders) -> dict[str, Any]:
        feats = params.features
        k = len(feats) + 1
        ts = float(plan.meta["target_scale"])
        first: GlmDerivatives | None = None
        if self.needs_start:  # the rows complete in every column used, and their target's sum
            n_mine, y_mine = table.glm_totals(feats, params.target, scaling=plan.scaling, target_scale=ts)
        else:  # the start does not depend on the rows: its derivatives count them (no scan of their own)
            first = self._derivatives(table, params, plan, self._start(0.0, k))
            n_mine, y_mine = first.n, 0.0
        counts = [session.input(p, np.array([n_mine]) if p == session.me else None, shape=(1,), frac_bits=0)
                  for p in range(session.n_parties)]
        n = round(float(session.reveal(sum(counts[1:], counts[0]))[0][0]))
        out: dict[str, Any] = {"n": n}
        if n == 0:
            return out
        owners = list(session.parties)
        mean_y = 0.0
        if self.needs_start:  # the pooled mean target (every party's sum / n, at most 1 in scaled units)
            ys = [session.input(p, np.array([y_mine / n]) if p == session.me else None, shape=(1,), bound=1.0)
                  for p in range(session.n_parties)]
            (opened_y,) = session.reveal(sum(ys[1:], ys[0]), to=owners)
            mean_y = float(np.asarray(opened_y)[0])
        beta = self._start(mean_y, k)
        h = np.array([plan.scaling[c][1] for c in feats])
        penalty = self._penalty(params, h, n)
        bound = self._bound(params)
        eig = float(plan.meta["eig_upper"]) + float(penalty.sum())
        steps = int(plan.meta["steps"])
        for it in range(1, params.max_iterations + 1):
            d = first if it == 1 and first is not None else self._derivatives(table, params, plan, beta)
            mine = np.concatenate([d.gradient, d.hessian.ravel()]) / n
            # per row at most `bound` on average, so the parties' sum stays within `bound` too
            if not np.all(np.abs(mine) <= bound * (n_mine / n) * (1 + 1e-12)):  # all(): NaN and infinity too
                raise DataError(f"{self.name}: at iterate {it - 1} the derivatives of {session.party!r}'s rows exceed "
                                f"their declared bound {bound:g} (the fitted means grew too large); raise max_ratio, "
                                "declare tighter bounds of the target, or check the features' bounds")
            parts = [session.input(p, mine if p == session.me else None, shape=(k + k * k,), bound=bound)
                     for p in range(session.n_parties)]
            total = _untracked(sum(parts[1:], parts[0]))
            grad = total[:k] + beta * penalty
            hess = total[k:].reshape(k, k) + np.diag(penalty)
            inv = inv_spd(hess, eig, steps)
            step = inv @ grad
            resid = np.eye(k) - hess @ inv
            bits = step._sign_bits(params.tol - step, step + params.tol, INVERSE_TOLERANCE - resid,
                                   resid + INVERSE_TOLERANCE)
            bad = bits[0].sum() + bits[1].sum() + bits[2].sum() + bits[3].sum()
            (open_bit,) = session.reveal(step._sign_bits(0.5 - bad)[0])
            nxt = (step * -1) + beta
            if not int(np.asarray(open_bit)):
                (b,) = session.reveal(nxt, to=plan.recipients)
                out["iterations"] = it
                if b is not None:
                    out["coefficients"] = self._coefficients(np.asarray(b, dtype=np.float64), plan, feats)
                return out
            if it == params.max_iterations:
                break
            (opened,) = session.reveal(nxt, to=owners)
            beta = np.asarray(opened, dtype=np.float64)
        raise GuardFailed("convergence", f"{self.name} did not converge in {params.max_iterations} Newton iterations "
                          f"(a step or the Hessian inverse above tolerance): the classes may be separable, features "
                          f"collinear, or max_inverse too small; ask for L2 (C), drop a feature, or raise "
                          f"max_iterations. Only the iterates (to the data owners) and the convergence bits were revealed.")

    def _derivatives(self, table: LocalTable, params: HP, plan: Plan,
                     beta: npt.NDArray[np.float64]) -> GlmDerivatives:
        """This party's gradient and Hessian at the (public) iterate ``beta``, in its engine."""
        return table.glm_derivatives(params.features, params.target, beta.tolist(), self.family,
                                     scaling=plan.scaling, target_scale=float(plan.meta["target_scale"]),
                                     offset=self._offset(beta))

    def _coefficients(self, b: npt.NDArray[np.float64], plan: Plan, feats: list[str]) -> npt.NDArray[np.float64]:
        cen = np.array([plan.scaling[c][0] for c in feats])
        h = np.array([plan.scaling[c][1] for c in feats])
        intercept = b[0] + float(plan.meta["intercept_shift"]) - float(np.sum(b[1:] * cen / h))
        return np.concatenate([[intercept], b[1:] / h])


@register
class HybridLogistic(HybridGLM[HybridLogParams]):
    """Binary logistic regression with an intercept, as scikit-learn's ``LogisticRegression``
    (``penalty=None`` or L2 with the same ``C``), with the iterates revealed to the data owners."""

    name = "logistic_regression_hybrid"
    version = "1.0"
    params_model = HybridLogParams
    description = ("logistic regression for large horizontal data: each owner computes its gradient and Hessian "
                   "locally at iterates revealed to the data owners (contract leakage rule iterates = 'owners'); "
                   "coefficients")
    family = "logistic"

    def _check_target(self, schema: Schema, params: HybridLogParams) -> None:
        if schema.column(params.target).type is not ColumnType.BOOL:
            raise PlanError(f"the target {params.target!r} must be a boolean column")

    def _penalty(self, params: HybridLogParams, h: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
        """L2 penalty per scaled coefficient: sklearn's C in original units, intercept free."""
        penalty = np.zeros(len(h) + 1)
        if params.C is not None:
            penalty[1:] = 1.0 / (params.C * h * h * n)
        return penalty


@register
class HybridPoisson(HybridGLM[HybridPoissonParams]):
    """Poisson regression with the log link and an intercept, as statsmodels'
    ``GLM(y, X, family=Poisson())``, with the iterates revealed to the data owners."""

    name = "poisson_regression_hybrid"
    version = "1.0"
    params_model = HybridPoissonParams
    description = ("Poisson regression (log link) for large horizontal data, as the hybrid logistic regression "
                   "(iterates revealed to the data owners); coefficients")
    family = "poisson"
    needs_start = True

    def _check_target(self, schema: Schema, params: HybridPoissonParams) -> None:
        col = schema.column(params.target)
        if col.type not in (ColumnType.INT, ColumnType.FLOAT) or col.bounds[0] < 0 or col.bounds[1] <= 0:
            raise PlanError(f"the target {params.target!r} must be a numeric count column with declared bounds "
                            "in [0, max], max > 0")

    def _bound(self, params: HybridPoissonParams) -> float:
        return float(params.max_ratio)

    def _hessian_bound(self, params: HybridPoissonParams) -> float:
        return float(params.max_ratio)

    def _target_scale(self, schema: Schema, params: HybridPoissonParams) -> float:
        return float(schema.column(params.target).bounds[1])

    def _intercept_shift(self, schema: Schema, params: HybridPoissonParams) -> float:
        return math.log(self._target_scale(schema, params))

    def _start(self, mean_y: float, k: int) -> npt.NDArray[np.float64]:
        if not mean_y > 0:
            raise DataError(f"{self.name}: the target is 0 in every row; a Poisson model has no finite intercept")
        return np.concatenate([[math.log(mean_y)], np.zeros(k - 1)])

    def _offset(self, beta: npt.NDArray[np.float64]) -> float:
        return float(beta[0])
