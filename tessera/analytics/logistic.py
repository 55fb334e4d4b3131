"""``logistic_regression``: a fraud-style classifier trained on secret-shared rows.

Rows are secret-shared (horizontally: each party its rows; vertically: each party its columns
of the aligned rows, or the rows come out of a secret-shared join, PSI ``aligned`` mode), features are scaled to [-1, 1] by their declared bounds, and Newton's
method runs inside MPC: per iteration one matrix-vector product, n secure sigmoids, the
gradient and the Hessian ``X' diag(s(1-s)) X``, solved by Newton–Schulz. Only the final
coefficients are revealed. Each party can then score its own holdout rows in plaintext.
"""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from pydantic import Field

from tessera.analytics.base import Analysis, Local, Params, Plan, Release, SharedRows
from tessera.analytics.common import (
    DEFAULT_MAX_ROWS,
    check_magnitude,
    first_holders,
    numeric_columns,
    scaling_for,
    share_columns,
    vertical_local,
)
from tessera.analytics.registry import register
from tessera.analytics.results import LogitResult
from tessera.data.local import LocalTable
from tessera.data.schema import ColumnType, Schema
from tessera.errors import GuardFailed, PlanError
from tessera.mpc import approx
from tessera.mpc.linalg import inv_spd, newton_schulz_steps, refine_inverse
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, concatenate

__all__ = ["LogisticRegression", "NewtonLogistic", "LogRegParams", "LogisticParams", "holdout_split", "auc"]


class LogRegParams(Params):
    features: list[str] = Field(min_length=1)
    target: str
    iterations: int = Field(8, ge=1, le=50)
    C: float | None = Field(None, gt=0, description="inverse L2 strength as scikit-learn's C; None: unpenalised")
    holdout_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="share of each party's rows kept for its own evaluation")
    max_inverse: float = Field(1e4, gt=1, description="bound on 1/λ_min of the scaled Hessian / n")
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0)


class LogisticParams(LogRegParams):
    """``logistic_regression``'s parameters: those of every Newton fit, and whether to release
    standard errors (its DP variant never does: they would carry no noise)."""

    inference: bool = Field(True, description="also release standard errors (the diagonal of the inverse of the "
                                              "final Newton Hessian, in original units), for z, p-values and CIs")


def _inference(params: LogRegParams) -> bool:
    return bool(getattr(params, "inference", False))


def _vertical_products(session: Session, x: SecretTensor, local: Local, params: LogRegParams,
                       holders: dict[str, list[str]]) -> SecretTensor:
    """The training rows' ``x_j x_l`` (``j <= l``, :func:`numpy.triu_indices` order), vertically:
    a pair of columns one party shares is multiplied by that party and shared (one input per
    party, of all its pairs); the other pairs are formed in one batched secure product.
    Reveals nothing beyond the public shapes."""
    feats = params.features
    jj, ll = np.triu_indices(len(feats))
    owner = first_holders(feats, holders)
    n = x.shape[0]
    got: dict[int, SecretTensor] = {}
    for p, name in enumerate(session.parties):
        mine = [i for i in range(len(jj)) if owner[feats[jj[i]]] == owner[feats[ll[i]]] == name]
        if not mine:
            continue
        block = None
        if p == session.me:
            train = ~local["holdout"]  # the positions _training_rows keeps (the same split of the same n)
            block = np.column_stack([local[feats[jj[i]]][train] * local[feats[ll[i]]][train] for i in mine])
        t = session.input(p, block, shape=(n, len(mine)), bound=None)
        for k, i in enumerate(mine):
            got[i] = t[:, k]
    cross = np.array([i for i in range(len(jj)) if i not in got], dtype=np.int64)
    if cross.size:
        formed = x[:, jj[cross]] * x[:, ll[cross]]
        for k, i in enumerate(cross):
            got[int(i)] = formed[:, k]
    return concatenate([got[i].reshape(n, 1) for i in range(len(jj))], axis=1)


def holdout_split(n: int, fraction: float, seed: int = 0) -> npt.NDArray[np.bool_]:
    """Boolean mask of a party's holdout rows (deterministic, local to the party)."""
    if fraction <= 0:
        return np.zeros(n, dtype=bool)
    return np.random.default_rng(seed).random(n) < fraction


def auc(y: npt.NDArray[np.float64], score: npt.NDArray[np.float64]) -> float:
    """Area under the ROC curve (rank statistic, ties averaged)."""
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    i = 0
    while i < len(score):
        j = i
        while j + 1 < len(score) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


#: The convergence guard: the last Newton step's largest entry (scaled units) must be below this. The
#: fixed-point noise floor of a converged fit at 20 bits reaches about 0.1 on badly conditioned
#: rare-event data (2^-4 failed such fits at random); a diverging fit takes steps of order 1.
STEP_TOLERANCE = 2.0**-2
#: The inverse guard: every entry of ``I - H X`` of the last step must be below this.
INVERSE_TOLERANCE = 2.0**-6

#: Parameters of a logistic regression (its DP variant's extend them).
LP = TypeVar("LP", bound=LogRegParams)


class NewtonLogistic(Analysis[LP]):
    """Logistic regression by Newton's method on secret-shared rows, for any parameter model
    extending :class:`LogRegParams`; the hooks ``_bounded``, ``_penalty``, ``_before_release``
    and ``_release_info`` let a variant (``dp_logistic_regression``) change what it needs."""

    partitions = ("horizontal", "vertical")
    #: whether the declared convergence guard runs (a DP variant must not reveal its bit)
    guarded = True
    #: whether a party shares the products ``x_j x_l`` of the features it holds in one row
    #: (every pair of its rows, horizontally; the pairs of its own columns, vertically) instead
    #: of the MPC forming them: only where ``_bounded`` leaves the shared rows as they are
    owner_products = True

    def plan(self, schema: Schema, params: LP, partition: str, parties: list[str]) -> Plan:
        cols = numeric_columns(schema, params.features)
        if schema.column(params.target).type is not ColumnType.BOOL:
            raise PlanError(f"the target {params.target!r} must be a boolean column")
        frac = 20
        k = len(cols) + 1
        check_magnitude("a sum over rows of scaled products", params.max_rows, frac, "declare a smaller row-count bound")
        check_magnitude("an entry of a Newton-Schulz iterate (2 * max_inverse)", 2 * params.max_inverse, 2 * frac,
                        "lower max_inverse or rescale the features")
        steps = newton_schulz_steps(k * 0.25 * params.max_inverse)
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[*cols, params.target],
            local=["scale the features to [-1, 1] by their declared bounds; hold out a share of rows if asked",
                   "secret-share the party's rows (horizontal) or columns (vertical; PSI aligned mode: "
                   "its whole list, then the secret-shared join keeps the common rows)",
                   *(["secret-share the products x_j x_l of the scaled features it holds in one row (all pairs of "
                      "its rows, horizontal; the pairs of its own columns, vertical), for the Hessians"]
                     if self.owner_products and params.iterations > 1 else [])],
            secure=[f"{params.iterations} Newton iterations: z = X b, s = sigmoid(z), g = X'(s - y) / n, "
                    f"H = X' diag(s(1-s)) X / n (+ L2), b -= H^-1 g with {steps} Newton-Schulz steps "
                    f"({(steps + 1) // 2} in the middle iterations, from the first Hessian's inverse)",
                    "map the coefficients back to the original units (public)"],
            release=[*([Release("guard", "2 bits to every party before the coefficients: Newton converged (the last "
                                         f"step below {STEP_TOLERANCE:g} in scaled units; it does not when the classes "
                                         "are separable) and the last Hessian inverse converged")] if self.guarded else []),
                     Release("coefficients", f"{k} coefficients (intercept first)" + (
                         f"; accuracy: each within the last Newton step of the maximum-likelihood estimate, at most "
                         f"{STEP_TOLERANCE:g} / half-range of its feature (the guard checks it)" if self.guarded
                         else "; accuracy: see the noise the release adds")),
                     *([Release("std_errors", f"{k} standard errors (diag of the inverse Hessian of the last Newton "
                                              "step, in original units; with C, of the penalised objective): z, "
                                              "p-values and intervals are public functions of them; accuracy: "
                                              f"relative {INVERSE_TOLERANCE:g} (the guarded inverse)")]
                       if _inference(params) else []),
                     Release("n", "total training rows (to every party)")],
            frac_bits=frac, scaling=scaling_for(schema, cols),
            notes=["accuracy and AUC on a party's own holdout rows are computed by that party alone"],
        )

    def local(self, columns: LocalTable, params: LP, plan: Plan) -> Local:
        n = len(next(iter(columns.values()))) if columns else 0
        # features scaled, the 0/1 target as it is (plan.scaling has the features only)
        return {"holdout": holdout_split(n, params.holdout_fraction), **vertical_local(columns, plan)}

    def secure(self, session: Session, local: Local, params: LP, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        own = self.owner_products and params.iterations > 1
        if plan.partition == "vertical":
            x, y = self._training_rows(share_columns(session, local, plan, holders), params)
            products = _vertical_products(session, x, local, params, holders) if own else None
        else:
            x, y, products = self._share_rows(session, local, params, plan, holders, own)
        return self._fit(session, x, y, params, plan, local, products)

    def secure_rows(self, session: Session, rows: SharedRows, params: LP, plan: Plan) -> dict[str, Any]:
        return self._fit(session, *self._training_rows(rows, params), params, plan, None, None)

    @staticmethod
    def _training_rows(rows: SharedRows, params: LogRegParams) -> tuple[SecretTensor, SecretTensor]:
        """Features and target of the shared aligned rows, without the holdout positions (a
        public function of the public row count, the same at every party)."""
        n_all = len(rows[params.target])
        train = np.flatnonzero(~holdout_split(n_all, params.holdout_fraction))
        x = concatenate([rows[c].reshape(-1, 1) for c in params.features], axis=1)
        return x[train], rows[params.target][train]

    def _fit(self, session: Session, x: SecretTensor, y: SecretTensor, params: LP, plan: Plan,
             local: Local | None, products: SecretTensor | None) -> dict[str, Any]:
        """Newton's method on the shared training rows; releases the coefficients. ``products``:
        the shared ``x_j x_l`` (``j <= l``, :func:`numpy.triu_indices` order) if the parties
        shared them, else the MPC forms them."""
        feats = params.features
        k = len(feats) + 1
        x, y = self._bounded(x, y)
        n = x.shape[0]
        ones = (y * 0) + 1  # a secret column of ones (exact)
        xi = concatenate([ones.reshape(n, 1), x], axis=1)  # n x k with the intercept column
        h = np.array([plan.scaling[c][1] for c in feats])
        penalty = self._penalty(params, h, n)
        beta = (xi[0] * 0)  # secret zero vector of length k
        steps = newton_schulz_steps(k * 0.25 * params.max_inverse)
        xt = xi.T
        eig_upper = 0.25 * k + float(penalty.sum())
        start: SecretTensor | None = None
        if params.iterations > 1:
            # H = X' diag(w) X needs, per row, the products x_j x_l (j <= l) of the features, which do
            # not change between iterations: formed once (one batched product), each iteration's Hessian
            # is then one matrix product with w instead of an n x k product and a matrix product
            jj, ll = np.triu_indices(k - 1)
            cols = concatenate([xi, x[:, jj] * x[:, ll] if products is None else products], axis=1)  # n x (k + P)
            colst = cols.T
            hidx = np.zeros((k, k), dtype=np.int64)  # entry (j, l) of H in [X'w, (x_j x_l)'w]
            hidx[0, :] = hidx[:, 0] = np.arange(k)
            hidx[jj + 1, ll + 1] = hidx[ll + 1, jj + 1] = k + np.arange(len(jj))
        for it in range(params.iterations):
            session.progress(it / params.iterations, f"Newton iteration {it + 1} of {params.iterations}")
            # the gradient and the Hessian in one matrix product: X' [s - y, diag(w) X] / n
            if it == 0:
                # beta = 0, so s = 1/2 and w = s(1 - s) = 1/4 exactly (public): no secure sigmoid
                both = (xt @ concatenate([(2 - 4 * y).reshape(n, 1), xi], axis=1)).scale(0.25 / n, bound=2.0 * n)
            else:
                s = approx.sigmoid(xi @ beta)
                w = s * (1 - s)
                sums = (colst @ concatenate([(s - y).reshape(n, 1), w.reshape(n, 1)], axis=1)).scale(
                    1 / n, bound=float(n))
                both = concatenate([sums[:k, 0].reshape(k, 1), sums[:, 1][hidx]], axis=1)
            grad = both[:, 0] + beta * penalty if penalty.any() else both[:, 0]
            hess = both[:, 1:] + np.diag(penalty)
            if start is None:
                inv = start = inv_spd(hess, eig_upper, steps)
            else:
                # H_it <= H_0 (w <= 1/4 = w_0), so H_0^-1 is a convergent start at least as good as
                # I / eig_upper; the middle iterations take half the steps, the last all of them
                inv = refine_inverse(hess, start, steps if it == params.iterations - 1 else (steps + 1) // 2)
            step = inv @ grad
            beta = beta - step
        if self.guarded:
            self._guard(session, params, hess, inv, step)
        cen = np.array([plan.scaling[c][0] for c in feats])
        released = [self._before_release(session, beta, params, n)]
        if _inference(params):
            released.append(self._variances(inv, cen, h))
        got = session.reveal(*released, to=plan.recipients)
        b = got[0]
        out: dict[str, Any] = {"n": n, **self._release_info(session, params, n)}
        if b is None:
            return out
        coef = np.concatenate([[b[0] - float(np.sum(b[1:] * cen / h))], b[1:] / h])
        out["coefficients"] = coef
        if len(got) > 1:  # Var = diag(T H^-1 T') / n, T the public map from scaled to original units
            var = np.asarray(got[1], dtype=np.float64).reshape(-1)
            out["std_errors"] = np.sqrt(np.maximum(var, 0.0) / n) / np.concatenate([[1.0], h])
        if local:  # a compute party that owns no data has no holdout rows
            out.update(self._evaluate_holdout(local, params, coef, plan))
        return out

    @staticmethod
    def _variances(inv: SecretTensor, cen: npt.NDArray[np.float64], h: npt.NDArray[np.float64]) -> SecretTensor:
        """The diagonal of ``T inv T'`` up to the public factors ``1 / h_j^2`` of the slopes:
        ``a' inv a`` for the intercept (``a = [1, -c_j / h_j]``, its row of ``T``) and ``inv_jj``
        for the slopes (scaled units). Nothing is opened here."""
        k = inv.shape[0]
        a = np.concatenate([[1.0], -cen / h])
        idx = np.arange(k)
        intercept = ((inv * a.reshape(1, k)).sum(axis=1) * a).sum()
        return concatenate([intercept.reshape(1), inv[idx[1:], idx[1:]]])

    @staticmethod
    def _guard(session: Session, params: LogRegParams, hess: SecretTensor, inv: SecretTensor,
               step: SecretTensor) -> None:
        """The declared guard: two bits opened to every party (see the plan)."""
        k = hess.shape[0]
        resid = np.eye(k) - hess @ inv
        bits = hess._sign_bits(INVERSE_TOLERANCE - resid, resid + INVERSE_TOLERANCE, STEP_TOLERANCE - step,
                               step + STEP_TOLERANCE)
        bad_inverse, bad_step = bits[0].sum() + bits[1].sum(), bits[2].sum() + bits[3].sum()
        no_inverse, no_step = hess._sign_bits(0.5 - bad_inverse, 0.5 - bad_step)
        inv_v, step_v = session.reveal(no_inverse, no_step)
        if int(np.asarray(inv_v)):
            raise GuardFailed("conditioning", "logistic_regression stopped by its guard: the Hessian could not be "
                              f"inverted to the stated precision (1/λ_min above max_inverse = {params.max_inverse:g}): the "
                              "features are nearly collinear or without variance, or the classes are (nearly) separable "
                              "and the fit saturates; drop a redundant or separating feature, ask for L2 (C), or raise "
                              "max_inverse. Only the guard's bits were revealed.")
        if int(np.asarray(step_v)):
            raise GuardFailed("convergence", f"logistic_regression did not converge in {params.iterations} Newton "
                              "iterations: the classes may be (nearly) separable by the features, so no finite "
                              "maximum-likelihood estimate exists, or more iterations are needed; ask for L2 (C), "
                              "drop the separating feature, or raise iterations. Only the guard's bits were revealed.")

    def _penalty(self, params: LP, h: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
        """L2 penalty per scaled coefficient: sklearn's C in original units, intercept free."""
        penalty = np.zeros(len(h) + 1)
        if params.C is not None:
            penalty[1:] = 1.0 / (params.C * h * h * n)
        return penalty

    def _bounded(self, x: SecretTensor, y: SecretTensor) -> tuple[SecretTensor, SecretTensor]:
        """Hook: the shared rows as used for training (DP variants clip them inside MPC)."""
        return x, y

    def _before_release(self, session: Session, beta: SecretTensor, params: LP, n: int) -> SecretTensor:
        return beta

    def _release_info(self, session: Session, params: LP, n: int) -> dict[str, Any]:
        return {}

    def _share_rows(self, session: Session, local: Local, params: LP, plan: Plan, holders: dict[str, list[str]],
                    products: bool) -> tuple[SecretTensor, SecretTensor, SecretTensor | None]:
        """Horizontal: each party shares its own training rows (and, if ``products``, their
        pair products ``x_j x_l``, ``j <= l``)."""
        p = len(params.features)
        train = ~local["holdout"] if session.owns else None
        block = (np.column_stack([local[c][train] for c in [*params.features, params.target]])
                 if session.owns else None)
        rows = concatenate(session.owner_inputs(block), axis=0)
        shared = None
        if products:
            jj, ll = np.triu_indices(p)
            pairs = block[:, jj] * block[:, ll] if block is not None else None
            shared = concatenate(session.owner_inputs(pairs), axis=0)
        return rows[:, :p], rows[:, p], shared

    @staticmethod
    def _evaluate_holdout(local: Local, params: LogRegParams, coef: npt.NDArray[np.float64],
                          plan: Plan) -> dict[str, Any]:
        hold = local["holdout"]
        if not hold.any() or params.target not in local or any(c not in local for c in params.features):
            return {}
        raw = np.column_stack([local[c][hold] * plan.scaling[c][1] + plan.scaling[c][0] for c in params.features])
        score = coef[0] + raw @ coef[1:]
        y = local[params.target][hold]
        return {"holdout_rows": int(hold.sum()), "holdout_accuracy": float(np.mean((score > 0) == (y > 0.5))),
                "holdout_auc": auc(y, score)}


@register
class LogisticRegression(NewtonLogistic[LogisticParams]):
    """Binary logistic regression with an intercept, as scikit-learn's ``LogisticRegression``
    (``penalty=None`` or L2 with the same ``C``)."""

    name = "logistic_regression"
    version = "1.0"
    params_model = LogisticParams
    description = ("logistic regression by Newton's method on secret-shared rows: coefficients and (inference=true) "
                   "standard errors, z, p-values")
    result_type = LogitResult
