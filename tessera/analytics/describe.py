"""``describe``: count, sum, mean, variance, standard deviation (and, where allowed, min and max) per column.

A column's exact min and max are single individuals' values, so they are released only when the
job asks for them (``extremes=True``), which a node's policy allows only under the contract's
leakage rule ``extremes = "exact"`` (:data:`tessera.governance.policy.EXTREMES_RULE`); by default
the plan says they are not released, and nothing about them is computed in MPC.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from pydantic import Field

from tessera.analytics.base import Analysis, Local, Params, Plan, Release, SharedRows
from tessera.analytics.common import (
    DEFAULT_MAX_ROWS,
    check_magnitude,
    first_holders,
    numeric_columns,
    received,
    scaling_for,
    vertical_local,
)
from tessera.analytics.moments import (
    WIDE,
    accuracy_text,
    check_parties,
    column_moments,
    describe_error,
    pool,
    pooled_counts,
    stack_local,
)
from tessera.analytics.registry import register
from tessera.analytics.results import DescribeResult
from tessera.data.local import LocalTable
from tessera.data.schema import ColumnType, Schema
from tessera.errors import PlanError
from tessera.mpc import approx
from tessera.mpc import functions as fn
from tessera.mpc.session import Opened, Session
from tessera.mpc.tensor import SecretTensor, concatenate, stack

__all__ = ["Describe"]


class DescribeParams(Params):
    columns: list[str] = Field(min_length=1)
    max_rows: int = Field(DEFAULT_MAX_ROWS, gt=0, description="declared bound on the total row count")
    extremes: bool = Field(False, description="release each column's exact min and max: single individuals' "
                                              "values, allowed only by the contract's leakage rule extremes='exact'")


@register
class Describe(Analysis[DescribeParams]):
    """Per-column summary statistics (as pandas ``describe``, with the sample variance,
    ``ddof=1``) over horizontally partitioned rows, or vertically over the aligned rows (the
    columns secret-shared row-wise, or the rows of a secret-shared join in PSI ``aligned`` mode)."""

    name = "describe"
    version = "1.0"
    params_model = DescribeParams
    partitions = ("horizontal", "vertical")
    owner_contributions = "rows"  # its pooled moments need the revealed total count first
    description = "count, sum, mean, variance, standard deviation per column (min and max where the contract allows)"
    result_type = DescribeResult

    def plan(self, schema: Schema, params: DescribeParams, partition: str, parties: list[str]) -> Plan:
        cols = numeric_columns(schema, params.columns)
        check_parties(parties, partition)
        frac = 28
        check_magnitude("the sum of scaled squares (at most one per row)", params.max_rows, frac,
                        "declare a smaller row-count bound")
        vertical = partition == "vertical"
        scaling = scaling_for(schema, cols)
        # whole numbers come back exact: as integers horizontally; vertically rounded from 28-bit
        # shared rows, which is exact while the error h 2^-26 stays below 1/4
        whole = [c for c in cols if _whole(schema, c) and (not vertical or scaling[c][1] < 2.0**24)]
        acc: dict[str, dict[str, Any]] = {}
        for c in cols:
            h = scaling[c][1]
            if vertical:  # shared rows at 28 bits: the old absolute precision (issue #14 remains)
                var_abs = h * h * 2.0**-24
                col_acc = {"mean": {"abs": h * 2.0**-26, "rel": 0.0},
                           "sum": {"abs": h * 2.0**-26 * params.max_rows, "rel": 0.0},
                           "var": {"abs": var_abs, "rel": 0.0}, "std": {"abs": math.sqrt(var_abs), "rel": 0.0}}
                ext = {"abs": 0.0, "exact": True} if c in whole else {"abs": h * 2.0**-26, "rel": 0.0}
            else:
                col_acc = describe_error(len(parties), h, params.max_rows)
                ext = {"abs": 0.0, "exact": True} if c in whole else {"abs": h * 2.0**-52, "rel": 0.0}
            if params.extremes:
                col_acc["min"] = col_acc["max"] = ext
            for stat, a in col_acc.items():
                acc[f"{stat}[{c}]"] = a
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=cols,
            local=[
                "scale each column to [-1, 1] by its declared bounds (public affine map)",
                "PSI intersection mode: as horizontally, over the aligned rows of the columns the party holds; "
                "PSI aligned mode: secret-share the party's scaled columns row-wise (its whole list, then the "
                "secret-shared join keeps the common rows)" if vertical else
                "count rows; mean and centred sum of squares of each scaled column (float64, locally centred)"
                + ("; local min and max (whole-number columns as exact integers)" if params.extremes else ""),
            ],
            secure=[
                "PSI intersection mode: as horizontally, each column's moments from its holder alone; aligned mode: "
                "sums and sums of squares over the shared rows at 28 bits (one product per value); the row count "
                "is public (accuracy stated for the aligned mode, the weaker)"
                if vertical else
                "add the parties' counts (revealed: an output); then each party shares n_i m_i / N, "
                "sqrt(n_i / N), sqrt(n_i / N) m_i and M2_i / N at 58 fractional bits",
                "mean = sum / count; population variance = sum of squares / count - mean^2" if vertical else
                "mean = sum n_i m_i / N; M2 / N = sum M2_i / N + sum (n_i / N)(m_i - mean)^2 (Chan et al. 1979, "
                "products kept at 58 bits by splitting)",
                *(["min and max by a tournament of exact comparisons over the "
                   + ("shared rows" if vertical else "parties' local extremes")] if params.extremes else []),
                "after opening (public post-processing): sum = count * mean, variance = M2 / (count - 1) "
                "(NaN below 2 rows), std = sqrt(variance); no rows: NaN for all but the count and sum",
            ],
            release=[Release("count", "number of aligned rows (public)" if vertical else
                             "total number of rows (to every party: it finishes the computation)")]
            + [Release(f"{stat}[{c}]", f"{stat} of column {c}; accuracy: {accuracy_text(acc[f'{stat}[{c}]'])}")
               for c in cols for stat in _stats(params.extremes)],
            frac_bits=frac,
            scaling=scaling,
            notes=([] if vertical else [f"pooled moments are encoded with {WIDE} fractional bits (scaled units)"])
            + [EXTREMES_RELEASED if params.extremes else EXTREMES_WITHHELD],
            meta={"accuracy": acc, "whole": whole},
        )

    def local(self, columns: LocalTable, params: DescribeParams, plan: Plan) -> Local:
        held = [c for c in plan.columns if c in columns]
        moments = self._moments(columns.arrays(held) if held else {}, plan)
        if plan.partition == "vertical":  # PSI intersection mode: the moments; aligned mode: the rows
            return {**vertical_local(columns, plan), **moments}
        return moments

    @staticmethod
    def _moments(data: Mapping[str, Any], plan: Plan) -> Local:
        """Count, mean and centred sum of squares (scaled) and the extremes of every column this
        party holds; zeros and sentinels (min: the top, max: the bottom) for the others."""
        whole = set(plan.meta["whole"])
        p = len(plan.columns)
        ext = np.zeros(2 * p, dtype=np.int64)
        parts = []
        top = 2**WIDE
        for j, c in enumerate(plan.columns):
            m, h = plan.scaling[c]
            v = np.asarray(data[c], dtype=np.float64) if c in data else np.zeros(0)
            x = (v - m) / h
            if c in whole:
                lo, hi = _int_range(plan, c)
                ext[j], ext[p + j] = (int(v.min()) - lo, int(v.max()) - lo) if len(v) else (hi - lo, 0)
            else:
                ext[j], ext[p + j] = (round(float(x.min()) * top), round(float(x.max()) * top)) if len(v) else (top, -top)
            parts.append(column_moments(x))
        return {**stack_local(parts), "extremes": ext}

    def secure(self, session: Session, local: Local, params: DescribeParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        p = len(plan.columns)
        if plan.partition == "vertical":
            # the aligned rows of each column are its holder's: it alone contributes its moments
            owner = first_holders(plan.columns, holders)
            mine = np.array([owner[c] == session.party for c in plan.columns])
            local = self._moments({}, plan) | {k: np.where(np.tile(mine, len(v) // p), v, self._moments({}, plan)[k])
                                               for k, v in local.items() if k in ("count", "mean", "m2", "extremes")}
        counts = pooled_counts(session, local)
        count = int(counts[0])
        if (counts != count).any():
            raise PlanError("the columns have different numbers of complete rows; describe them in separate jobs")
        if count == 0:
            return self._empty(session, plan, params)
        mean, m2 = pool(session, local, np.full(p, count, dtype=np.int64), full=False)
        if not params.extremes:
            return self._finish(session, plan, params, count, mean, m2, None, None)
        ext = session.owner_inputs(local["extremes"] if session.owns else None, shape=(2 * p,), frac_bits=0)
        allext = stack(ext)
        lo = fn.min(allext[:, :p], axis=0)
        hi = fn.max(allext[:, p:], axis=0)
        return self._finish(session, plan, params, count, mean, m2, lo, hi)

    def secure_rows(self, session: Session, rows: SharedRows, params: DescribeParams, plan: Plan) -> dict[str, Any]:
        count = len(rows[plan.columns[0]])
        if count == 0:
            return self._empty(session, plan, params)
        x = concatenate([rows[c].reshape(count, 1) for c in plan.columns], axis=1)  # scaled, |x| <= 1
        lo, hi = (fn.min(x, axis=0), fn.max(x, axis=0)) if params.extremes else (None, None)
        mean = x.sum(axis=0).scale(1 / count, bound=count)
        m2 = (x * x).sum(axis=0).scale(1 / count, bound=count) - mean * mean
        return self._finish(session, plan, params, count, approx.at_scale(mean, WIDE), approx.at_scale(m2, WIDE), lo, hi)

    def _empty(self, session: Session, plan: Plan, params: DescribeParams) -> dict[str, Any]:
        """No rows at all: the count, empty sums, NaN for everything else (as numpy and pandas)."""
        if plan.recipients is not None and session.party not in plan.recipients:
            return {"count": 0}
        return self.finish(params, plan, {"count": 0}, None)

    def _finish(self, session: Session, plan: Plan, params: DescribeParams, count: int, mean: SecretTensor,
                m2: SecretTensor, lo: SecretTensor | None, hi: SecretTensor | None) -> dict[str, Any]:
        """Release the pooled mean and ``M2 / N`` (scaled, at 58 bits) and, if the job releases
        them, the extremes: integers (``value - floor(declared min)`` for whole-number columns,
        scaled ``* 2^58`` for the others) horizontally, scaled fixed point vertically. Everything
        else is public post-processing (:meth:`finish`)."""
        tensors = [mean, m2] + ([lo, hi] if lo is not None and hi is not None else [])
        opened = received(session.reveal(*tensors, to=plan.recipients))
        if opened is None:
            return {"count": count}
        return self.finish(params, plan, {"count": count}, opened)

    def finish(self, params: DescribeParams, plan: Plan, public: dict[str, Any],
               opened: list[Opened] | None) -> dict[str, Any]:
        """From the opened mean and ``M2 / N`` (and extremes): sum, mean, sample variance, std
        (and min, max) per column; with nothing opened (no rows), NaN but the count and sums."""
        count = int(public["count"])
        out: dict[str, Any] = {"count": count}
        if opened is None:
            nan = float("nan")
            for c in plan.columns:
                out[c] = {"sum": 0.0, "mean": nan, "var": nan, "std": nan} | \
                    ({"min": nan, "max": nan} if params.extremes else {})
            return out
        mean_, m2_ = opened[0], opened[1]
        whole = set(plan.meta["whole"])
        # extremes of the parties' local rows are shared as exact integers (decoded as int64); those
        # of shared rows (PSI aligned mode) as fixed point
        exact = len(opened) == 4 and np.asarray(opened[2]).dtype.kind == "i"
        for j, c in enumerate(plan.columns):
            m, h = plan.scaling[c]
            var = max(0.0, float(m2_[j]) * count / (count - 1)) * h * h if count > 1 else float("nan")
            mu = float(h * mean_[j] + m)
            out[c] = {"sum": mu * count, "mean": mu, "var": var, "std": math.sqrt(var)}
            if len(opened) == 4:
                out[c] |= {"min": self._extreme(plan, c, opened[2][j], exact, c in whole),
                           "max": self._extreme(plan, c, opened[3][j], exact, c in whole)}
        return out

    @staticmethod
    def _extreme(plan: Plan, c: str, raw: Any, exact: bool, whole: bool) -> float:
        m, h = plan.scaling[c]
        if exact:  # horizontal: exact integers
            return float(int(raw) + _int_range(plan, c)[0]) if whole else float(h * (int(raw) * 2.0**-WIDE) + m)
        value = float(h * float(raw) + m)
        return float(round(value)) if whole else value  # whole numbers: within 2^-26 h < 0.5 of an integer


#: What the plan says about the extremes, either way.
EXTREMES_WITHHELD = ("min and max are not released: a column's exact extremes are single individuals' values "
                     "(a job may ask for them with extremes=true where the contract's leakage rule "
                     "extremes = 'exact' allows it)")
EXTREMES_RELEASED = ("min and max are released exactly: single individuals' values (the job asks for them, "
                     "extremes=true, which needs the contract's leakage rule extremes = 'exact')")


def _stats(extremes: bool) -> tuple[str, ...]:
    return ("sum", "mean", "var", "std") + (("min", "max") if extremes else ())


def _whole(schema: Schema, c: str) -> bool:
    """Whether column ``c`` holds whole numbers whose range an int64 holds exactly."""
    col = schema.column(c)
    lo, hi = col.bounds
    return col.type in (ColumnType.INT, ColumnType.BOOL) and hi - lo < 2**52


def _int_range(plan: Plan, c: str) -> tuple[int, int]:
    """``(floor(min), ceil(max))`` of a whole-number column's declared bounds."""
    m, h = plan.scaling[c]
    return math.floor(m - h), math.ceil(m + h)
