"""Hypothesis tests: Welch's two-sample ``ttest`` and the ``chi2`` test of independence."""

from __future__ import annotations

import math
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
    share_columns,
    vertical_local,
)
from tessera.analytics.moments import (
    MEAN_ERROR,
    RELATIVE,
    WIDE,
    accuracy_text,
    check_parties,
    local_moments,
    moment_error,
    normaliser,
    pool,
    pooled_counts,
    power_of_two_normaliser,
    rsqrt_unit,
    stack_local,
)
from tessera.analytics.registry import register
from tessera.analytics.results import Chi2Result, TTestResult
from tessera.data.local import LocalTable
from tessera.data.schema import ColumnType, Schema
from tessera.errors import PlanError
from tessera.mpc import approx
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor, concatenate, stack

__all__ = ["WelchTTest", "Chi2Independence"]


class TTestParams(Params):
    value: str
    group: str = Field(description="a boolean column: the test compares rows where it is true with the others")
    min_group_rows: int = Field(2, ge=2)
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0)
    means: bool = Field(True, description="also release the two group means (for the difference and its "
                                          "confidence interval)")


@register
class WelchTTest(Analysis[TTestParams]):
    """Welch's unequal-variance t-test of ``value`` between the two groups of ``group``
    (``scipy.stats.ttest_ind(x[group], x[~group], equal_var=False)``).

    Horizontally the parties pool their groups' locally centred moments (58 bits); over shared
    rows (:meth:`secure_rows`: data owners that do not compute, vertical jobs, PSI aligned mode)
    the group moments are sums over the rows at 28 bits, with the accuracy the plan states for
    that path."""

    name = "ttest"
    version = "1.0"
    params_model = TTestParams
    partitions = ("horizontal", "vertical")
    owner_contributions = "rows"  # pooled moments need the revealed group counts first: owners share rows
    description = "Welch two-sample t-test: t statistic, degrees of freedom, p-value"
    result_type = TTestResult

    def plan(self, schema: Schema, params: TTestParams, partition: str, parties: list[str]) -> Plan:
        numeric_columns(schema, [params.value])
        if schema.column(params.group).type is not ColumnType.BOOL:
            raise PlanError(f"the group column {params.group!r} must be boolean")
        check_parties(parties, partition)
        frac = 28
        half = scaling_for(schema, [params.value])[params.value][1]
        if partition == "vertical":  # shared rows at 28 bits (one product per value and group)
            check_magnitude("the sum of scaled squares (at most one per row)", params.max_rows, frac,
                            "declare a smaller row-count bound")
            # each group's mean within 2^-26, its variance within 2^-24, so s within 2^-22: t's
            # error relative 2^-21 / s (half of s's, doubled) and 2^-25 sqrt(n0 n1 / n) / sqrt(s)
            acc = {"t": {"rel": 2.0**-20, "rel_per_s": 2.0**-20,
                         "abs_per_sqrt_s": 2.0**-25 * math.sqrt(params.max_rows) / 2},
                   "df": {"abs": 0.0, "rel": 2.0**-18, "rel_per_s": 2.0**-18},
                   "means": {"abs": half * 2.0**-25, "rel": 0.0}}
        else:
            e = moment_error(len(parties))
            # s = (v_1 n_0 + v_0 n_1) / n / h^2 (the groups' variances relative to the squared half-range);
            # t's error: relative 2^-22 + 2^-36 + 4 e / s, plus 2^-49 sqrt(n0 n1 / n) / sqrt(s) from the means
            acc = {"t": {"rel": 2.0**-22 + 2 * RELATIVE, "rel_per_s": 4 * e,
                         "abs_per_sqrt_s": 2.0**-49 * math.sqrt(params.max_rows) / 2},
                   "df": {"abs": 0.0, "rel": 2.0**-19 + 8 * RELATIVE, "rel_per_s": 16 * e},
                   "means": {"abs": MEAN_ERROR * half, "rel": 2.0**-52}}
        vertical = partition == "vertical"
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.value, params.group],
            local=["scale the value column to [-1, 1] by its declared bounds",
                   "secret-share the scaled value and the group row-wise (its holder; or the data owners' rows)"
                   if vertical else "per group: row count, mean and centred sum of squares (float64, locally centred)"],
            secure=[*(["over the shared rows at 28 bits: the group count n_true = sum g (revealed: an output), "
                       "each group's sum and sum of squares (x g, x^2 g: two products per row), its mean and "
                       "population variance; b_g = var_g (sample) * n_other / n (s = b_0 + b_1 below 2^-20 in "
                       "scaled units is not resolved at 28 bits: t and df are NaN)"] if vertical else
                      ["add the parties' group counts (revealed: outputs)",
                       "pool each group's locally centred moments at 58 fractional bits (Chan et al. 1979), with "
                       "the public factors n_g / (n_g - 1) * n_other / n folded in: b_g = n0 n1 / n * var_g / n_g"]),
                    "secure normalisation: s = b_0 + b_1 times a secret power of two G^2 lands in [0.5, 2) "
                    "(G = 0 below 64 ULP: no variance, t and df are NaN)",
                    "t = (mean_1 - mean_0) G / sqrt(s G^2) * sqrt(n0 n1 / n), opened as a mantissa and a "
                    "power of two (the same value), with a secure inverse square root",
                    "Welch-Satterthwaite degrees of freedom from u_g = b_g / s with a secure reciprocal"],
            release=[Release("n_true, n_false", "group sizes (to every party; checked against the minimum)"),
                     Release("t", f"t statistic; accuracy: {accuracy_text(acc['t'])}, "
                                  "s = (var_1 n_0 + var_0 n_1) / (n h^2)"),
                     Release("df", f"Welch degrees of freedom; accuracy: {accuracy_text(acc['df'])}"),
                     Release("p_value", "two-sided p-value (public function of t and df)"),
                     *([Release("mean_true, mean_false", "the two group means (their difference over t is its "
                                                         "standard error, for a confidence interval); accuracy: "
                                                         f"{accuracy_text(acc['means'])}")]
                       if params.means else [])],
            frac_bits=frac, scaling=scaling_for(schema, [params.value]), meta={"accuracy": acc},
        )

    def local(self, columns: LocalTable, params: TTestParams, plan: Plan) -> Local:
        if plan.partition == "vertical":  # the holder's rows, secret-shared in the secure stage
            return vertical_local(columns, plan)
        c, h = plan.scaling[params.value]
        data = columns.arrays([params.value, params.group])
        x = (np.asarray(data[params.value], dtype=np.float64) - c) / h
        g = data[params.group] > 0.5
        return stack_local([local_moments(x[sel].reshape(-1, 1), full=False) for sel in (g, ~g)])

    def secure(self, session: Session, local: Local, params: TTestParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        if plan.partition == "vertical":
            return self.secure_rows(session, share_columns(session, local, plan, holders), params, plan)
        n1, n0 = (int(v) for v in pooled_counts(session, local))
        self._check_groups(params, n1, n0)
        n = n0 + n1
        # b_g = var_g (sample) * n_other / n = (M2_g / n_g) * n_g / (n_g - 1) * n_other / n
        weights = np.array([n1 / (n1 - 1) * n0 / n, n0 / (n0 - 1) * n1 / n])
        mean, b = pool(session, local, np.array([n1, n0], dtype=np.int64), full=False, weights=weights)
        return self._test(session, params, plan, n1, n0, mean, b, power_of_two_normaliser(b[0] + b[1]))

    def secure_rows(self, session: Session, rows: SharedRows, params: TTestParams, plan: Plan) -> dict[str, Any]:
        """The test over shared rows (``rows[value]`` scaled, ``rows[group]`` 0/1, at 28 bits):
        reveals the group counts (outputs), then as :meth:`secure` from the groups' means and
        ``b_g`` computed over the rows; a combined variance below 2^-20 (scaled units, where the
        28-bit sums no longer resolve it) counts as none (t and df NaN)."""
        x, grp = rows[params.value], rows[params.group]
        n = len(x)
        n1 = round(float(grp.sum().reveal())) if n else 0
        n0 = n - n1
        self._check_groups(params, n1, n0)
        xg = x * grp
        sq = stack([xg, x]) * stack([x, x])  # x^2 g and x^2
        sums = stack([xg.sum(), x.sum(), sq[0].sum(), sq[1].sum()])  # |.| <= n
        s1, s_all, q1, q_all = sums[0], sums[1], sums[2], sums[3]
        mean1, mean0 = s1.scale(1 / n1, bound=n1), (s_all - s1).scale(1 / n0, bound=n0)
        means = stack([mean1, mean0])
        second = stack([q1.scale(1 / n1, bound=n1), (q_all - q1).scale(1 / n0, bound=n0)])
        var = second - means * means  # the groups' population variances, |.| <= 1
        b = stack([var[0].scale(n1 / (n1 - 1) * n0 / n, bound=1.0), var[1].scale(n0 / (n0 - 1) * n1 / n, bound=1.0)])
        b = approx.at_scale(b, WIDE)
        return self._test(session, params, plan, n1, n0, approx.at_scale(means, WIDE), b,
                          normaliser(b[0] + b[1], floor=2.0**-20)[0])

    @staticmethod
    def _check_groups(params: TTestParams, n1: int, n0: int) -> None:
        if min(n0, n1) < params.min_group_rows:
            raise PlanError(f"a group has fewer than {params.min_group_rows} rows; the test is not run")

    def _test(self, session: Session, params: TTestParams, plan: Plan, n1: int, n0: int, mean: SecretTensor,
              b: SecretTensor, g: SecretTensor) -> dict[str, Any]:
        """t and the Welch degrees of freedom from the groups' means and ``b_g`` (at 58 bits)
        and the secret normaliser ``g`` of ``s = b_0 + b_1`` (0: no variance)."""
        n = n0 + n1
        gb = stack([g, g])
        bn = (b * gb) * gb  # exact: |b G^2| <= s G^2 < 2
        sn = approx.at_scale(bn[0] + bn[1], 28)
        d = mean[0] - mean[1]
        dh = approx.at_scale(d, 28)
        dl = d - dh  # |raw| < 2^31 at 58 bits
        dg = dh * g + approx.mul_to(dl, g, 28)  # d G at 28 bits: |d G| <= 2^27
        sign = 1 - 2 * (dg < 0)
        mant, onehot = approx.normalize(dg * sign)  # |d G| = mant * 2^(k + 1 - 28)
        k = (onehot * np.arange(onehot.shape[-1], dtype=np.int64)).sum(axis=-1)
        tm = mant * rsqrt_unit(sn) * sign
        u = approx.at_scale(bn, 28) * stack([approx.reciprocal(sn)] * 2)
        den = (u[0] * u[0]).scale(n / (n1 - 1), bound=1.0) + (u[1] * u[1]).scale(n / (n0 - 1), bound=1.0)
        got = received(session.reveal(tm, k, den, *([mean] if params.means else []), to=plan.recipients))
        out: dict[str, Any] = {"n_true": n1, "n_false": n0}
        if got is None:
            return out
        tm_, k_, den_ = got[:3]
        if params.means:
            centre, half = plan.scaling[params.value]
            out["mean_true"], out["mean_false"] = (float(centre + half * m) for m in np.asarray(got[3]).reshape(-1))
        if float(den_) < 0.25:  # G = 0: both groups without (resolvable) variance
            nan = float("nan")
            return {**out, "t": nan, "df": nan, "p_value": nan}
        from scipy import stats  # imported where used: ~1 s per process, and only released p-values need it
        t = float(tm_) * 2.0 ** (int(k_) + 1 - 28) * math.sqrt(n0 * n1 / n)
        df = n / float(den_)
        return {**out, "t": t, "df": df, "p_value": float(2 * stats.t.sf(abs(t), df))}


class Chi2Params(Params):
    row: str
    column: str
    max_rows: int = Field(10**9, gt=0)
    expected: bool = Field(True, description="also release the margins (row and column totals), from which the "
                                             "expected table under independence follows")


def chi2_accuracy(n: int, r: int, c: int) -> dict[str, float]:
    """Stated accuracy of the released statistic, ``|error| <= abs + rel * chi2``."""
    return {"abs": n * r * c * 2.0**-26, "rel": 2.0**-20}


@register
class Chi2Independence(Analysis[Chi2Params]):
    """Pearson's chi-square test of independence of two categorical (or boolean) columns, over
    their contingency table with public levels (``scipy.stats.chi2_contingency(table,
    correction=False)`` on the levels that occur). The table itself is never revealed.

    The statistic is ``n * phi^2`` with ``phi^2 = sum a_ij^2``, ``a_ij = (p_ij - r_i c_j) /
    sqrt(r_i c_j)`` over the cell and margin proportions: ``p_ij - r_i c_j = (n O - R C) / n^2`` is
    exact in integers before one scaling, and every ``|a_ij| <= sqrt(min(r, c) - 1)``, so no
    product can leave the ring however strong the association (a product of ``(O - E)^2`` and
    ``1 / E`` overflowed at 24 bits for strong associations in 10^5 rows). ``phi^2`` is revealed
    and multiplied by the public ``n``. Levels that never occur are left out, as scipy requires:
    the numbers of levels that occur are revealed (they set the degrees of freedom).
    """

    name = "chi2"
    version = "1.0"
    params_model = Chi2Params
    description = "chi-square test of independence: statistic, degrees of freedom, p-value"
    result_type = Chi2Result

    @staticmethod
    def _levels(schema: Schema, name: str) -> int:
        col = schema.column(name)
        if col.type is ColumnType.BOOL:
            return 2
        if col.type is ColumnType.CATEGORY:
            assert col.levels is not None
            return len(col.levels)
        raise PlanError(f"column {name!r} must be categorical or boolean for a chi-square test")

    def plan(self, schema: Schema, params: Chi2Params, partition: str, parties: list[str]) -> Plan:
        r, c = self._levels(schema, params.row), self._levels(schema, params.column)
        if min(r, c) > 64:
            raise PlanError(f"a chi-square test of {r} x {c} levels is more than this analysis supports (at most 64 "
                            "levels in the smaller variable)")
        check_magnitude("n times a cell count", float(params.max_rows) ** 2, 1,
                        "declare a smaller row-count bound")
        acc = chi2_accuracy(params.max_rows, r, c)
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.row, params.column],
            local=[f"count the {r} x {c} contingency table of the party's rows"],
            secure=["add the parties' tables", "n (O - E) = n O - R C exactly in integers, scaled once to "
                    "p_ij - r_i c_j at 28 fractional bits",
                    "a_ij = (p_ij - r_i c_j) / sqrt(r_i c_j) with secure inverse square roots of the margin "
                    "proportions (0 for a level that never occurs); phi^2 = sum a_ij^2"],
            release=[Release("n", "total rows (to every party)"),
                     Release("levels", "the numbers of row and column levels that occur (exact; they set the dof)"),
                     Release("chi2", f"the statistic, n * phi^2; accuracy: |error| <= {acc['rel']:.2g} x chi2 + "
                                     f"{2.0**-26:.2g} x n r c"),
                     Release("dof", "(occurring row levels - 1)(occurring column levels - 1), public"),
                     Release("p_value", "public function of chi2 and dof"),
                     *([Release("row_totals, column_totals", "the margins of the contingency table (the expected "
                                                             "table R C' / n is a public function of them)")]
                       if params.expected else [])],
            frac_bits=28, meta={"levels": (r, c), "accuracy": {"chi2": acc}},
        )

    def local(self, columns: LocalTable, params: Chi2Params, plan: Plan) -> Local:
        return {"table": columns.contingency(params.row, params.column)}  # counted in the party's engine

    def secure(self, session: Session, local: Local, params: Chi2Params, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        r, c = plan.meta["levels"]
        obs = None
        for part in session.owner_inputs(local["table"] if session.owns else None, shape=(r, c), frac_bits=0):
            obs = part if obs is None else obs + part
        assert obs is not None
        rows, cols = obs.sum(axis=1), obs.sum(axis=0)
        margins = concatenate([rows, cols])
        present = margins > 0
        n_, present_rows, present_cols = session.reveal(rows.sum(), present[:r].sum(), present[r:].sum())
        n = int(n_)
        for t in (obs, rows, cols, margins):  # every cell and margin of the pooled table is at most n
            t.bound = float(n)
        kr, kc = int(present_rows), int(present_cols)
        dof = (kr - 1) * (kc - 1)
        out: dict[str, Any] = {"n": n, "dof": dof, "levels": (kr, kc)}
        if dof <= 0:  # scipy: a table with one occurring level has no test (statistic 0, p-value 1)
            if plan.recipients is None or session.party in plan.recipients:
                return self.finish(params, plan, out, None)
            return out
        f = plan.frac_bits
        exact = obs * n - rows.reshape(r, 1) * cols.reshape(1, c)  # n (O - E), an exact integer
        delta = exact._relabel(f).scale(2.0**f / n**2, bound=float(n) ** 2 / 2.0**f)  # p_ij - r_i c_j
        props = approx.at_scale(margins, f).scale(1 / n, bound=float(n))
        inv_sd = approx.rsqrt(props)  # 0 for a margin that is 0: its cells add nothing
        a = (delta * inv_sd[:r].reshape(r, 1)) * inv_sd[r:].reshape(1, c)
        got = received(session.reveal((a * a).sum(), *([margins] if params.expected else []), to=plan.recipients))
        return out if got is None else self.finish(params, plan, out, got)

    def finish(self, params: Chi2Params, plan: Plan, public: dict[str, Any], opened: list[Any] | None) -> dict[str, Any]:
        """From the opened ``phi^2``: ``chi2 = n phi^2`` and its p-value; with one occurring level
        in a variable (nothing opened) no test: statistic 0, p-value 1 (NaN without rows)."""
        n, dof = int(public["n"]), int(public["dof"])
        out = {"n": n, "dof": dof, "levels": tuple(public["levels"])}
        if opened is None:
            return {**out, "chi2": 0.0 if n else math.nan, "p_value": 1.0 if n else math.nan}
        chi2 = n * float(np.asarray(opened[0]).reshape(-1)[0])
        if len(opened) > 1:  # the margins: expected counts R_i C_j / n
            r = int(plan.meta["levels"][0])
            totals = np.asarray(opened[1], dtype=np.int64).reshape(-1)
            out |= {"row_totals": totals[:r].tolist(), "column_totals": totals[r:].tolist(),
                    "expected": np.outer(totals[:r], totals[r:]) / n}
        from scipy import stats  # imported where used: ~1 s per process, and only released p-values need it
        return {**out, "chi2": chi2, "p_value": float(stats.chi2.sf(chi2, dof))}
