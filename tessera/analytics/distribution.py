"""``histogram`` with public bin edges and ``quantiles`` to a stated precision."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from tessera.analytics.base import Analysis, Local, Params, Plan, Release, SharedRows
from tessera.analytics.common import numeric_columns, received, secure_sum, share_columns, vertical_local
from tessera.analytics.registry import register
from tessera.analytics.results import HistogramResult, QuantilesResult
from tessera.data.local import LocalTable
from tessera.data.schema import Schema
from tessera.errors import PlanError
from tessera.mpc.session import Session
from tessera.mpc.tensor import stack

__all__ = ["Histogram", "Quantiles", "check_edges", "bin_counts"]


def check_edges(v: list[float]) -> list[float]:
    """Bin edges must increase strictly."""
    if any(b <= a for a, b in itertools.pairwise(v)):
        raise ValueError("bin edges must increase strictly")
    return v


def bin_counts(columns: LocalTable, column: str, edges: list[float]) -> Local:
    """The local stage of ``histogram`` and ``dp_histogram``: this party's rows per public bin
    (counted in the party's engine, as ``numpy.histogram``)."""
    return {"counts": columns.histogram(column, edges)}


class HistParams(Params):
    column: str
    edges: list[float] = Field(min_length=2)
    min_bin_count: int = Field(0, ge=0, description="bins with fewer rows are suppressed (released as None)")

    _edges = field_validator("edges")(check_edges)


@register
class Histogram(Analysis[HistParams]):
    """Counts per bin over the pooled rows, as ``numpy.histogram(x, bins=edges)``."""

    name = "histogram"
    version = "1.0"
    params_model = HistParams
    description = "counts per public bin, with small bins suppressed"
    result_type = HistogramResult

    def plan(self, schema: Schema, params: HistParams, partition: str, parties: list[str]) -> Plan:
        numeric_columns(schema, [params.column])
        bins = len(params.edges) - 1
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.column],
            local=[f"count the party's rows in each of the {bins} public bins"],
            secure=["add the parties' counts",
                    f"compare every bin with the minimum count {params.min_bin_count} (exact comparisons)"],
            release=[Release("counts", f"{bins} bin counts; bins under the minimum are released as None"),
                     Release("suppressed", "which bins were suppressed")],
            frac_bits=0,
        )

    def local(self, columns: LocalTable, params: HistParams, plan: Plan) -> Local:
        return bin_counts(columns, params.column, params.edges)

    def secure(self, session: Session, local: Local, params: HistParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        bins = len(params.edges) - 1
        total = secure_sum(session, local["counts"] if session.owns else None, (bins,))
        if params.min_bin_count:
            small = total < params.min_bin_count
            got = received(session.reveal(total * (1 - small), small, to=plan.recipients))
            if got is None:
                return {}
            counts, small_ = got
        else:
            (counts_,) = session.reveal(total, to=plan.recipients)
            if counts_ is None:
                return {}
            counts, small_ = counts_, np.zeros(bins, dtype=np.int64)
        return {"edges": params.edges, "counts": [None if s else int(c) for c, s in zip(counts, small_)],
                "suppressed": [bool(s) for s in small_]}


class QuantileParams(Params):
    column: str
    q: list[float] = Field(min_length=1)
    precision: float | None = Field(None, gt=0, description="absolute precision (default: range / 2^16)")

    @field_validator("q")
    @classmethod
    def _probabilities(cls, v: list[float]) -> list[float]:
        if any(not 0 < x <= 1 for x in v):
            raise ValueError("quantile levels must lie in (0, 1]")
        return v


@register
class Quantiles(Analysis[QuantileParams]):
    """Quantiles by secure bisection over the declared range: the smallest value ``v`` (to the
    stated precision) with ``#(x <= v) >= q n`` (``numpy.quantile(..., method="inverted_cdf")``).

    What it reveals: the total row count and, for each level, one comparison bit per bisection
    step — exactly the binary expansion of the released quantile, nothing more.

    Over shared rows (:meth:`secure_rows`: data owners that do not compute, vertical jobs, PSI
    aligned mode) each row is shared once as its position on the bisection grid, ``t = (x - lo)
    / step`` at a few fractional bits, and every bisection step compares the rows with the public
    midpoint securely (the same revealed bits).
    """

    name = "quantiles"
    version = "1.0"
    params_model = QuantileParams
    partitions = ("horizontal", "vertical")
    owner_contributions = "rows"  # each bisection step needs the owners' counts: owners share rows once
    description = "quantiles (median and others) to a stated precision"
    result_type = QuantilesResult

    def plan(self, schema: Schema, params: QuantileParams, partition: str, parties: list[str]) -> Plan:
        numeric_columns(schema, [params.column])
        lo, hi = schema.column(params.column).bounds
        precision = params.precision or (hi - lo) / 2**16
        steps = max(1, math.ceil(math.log2(max((hi - lo) / precision, 1.0))))
        if partition == "vertical":
            # a row's grid position t <= 2^steps at `frac` bits; secure comparisons need |t| < 2^(62 - frac - 2)
            frac = min(8, 58 - steps)
            if frac < 4:
                raise PlanError(f"quantiles to a precision of {precision:g} over a range of {hi - lo:g} need "
                                f"{steps} bisection steps, more than shared rows hold (at most 54); ask for a "
                                "coarser precision")
            step = (hi - lo) / 2**steps
            return Plan(
                analysis=self.name, version=self.version, partition=partition, columns=[params.column],
                local=[f"each row's position on the bisection grid, t = (x - lo) / {step:g}, secret-shared row-wise "
                       f"at {frac} fractional bits (its holder; or the data owners' rows)"],
                secure=[f"{steps} bisection steps: compare every shared row with the public midpoint and add "
                        "(exact comparisons), compare the count with q * n"],
                release=[Release("n", "total row count (public: the number of shared rows)"),
                         Release("quantiles", f"each level to within {precision:g}; the comparison bits of the "
                                              "bisection are its binary expansion (a value within "
                                              f"2^-{frac + 1} of a grid step above a midpoint counts as at it)")],
                frac_bits=frac, scaling={params.column: (lo, step)}, meta={"range": (lo, hi), "steps": steps},
            )
        return Plan(
            analysis=self.name, version=self.version, partition=partition, columns=[params.column],
            local=["count the party's rows at or below each public bisection point"],
            secure=[f"{steps} bisection steps: add the counts, compare with q * n (exact comparison)"],
            release=[Release("n", "total row count (to every party)"),
                     Release("quantiles", f"each level to within {precision:g}; the comparison bits of the "
                                          "bisection are its binary expansion")],
            frac_bits=0, meta={"range": (lo, hi), "steps": steps},
        )

    def local(self, columns: LocalTable, params: QuantileParams, plan: Plan) -> Local:
        if plan.partition == "vertical":  # the holder's grid positions, secret-shared in the secure stage
            return vertical_local(columns, plan)
        return {"values": np.sort(np.asarray(columns[params.column], dtype=np.float64))}

    def secure_rows(self, session: Session, rows: SharedRows, params: QuantileParams, plan: Plan) -> dict[str, Any]:
        """Bisection over shared grid positions ``t`` (:meth:`plan`, vertical): at each step the
        rows at or below each level's public midpoint are counted securely and only whether the
        count reaches ``ceil(q n)`` is revealed. ``n`` is the public number of rows."""
        t = rows[params.column]
        n = len(t)
        m = len(params.q)
        lo, hi = plan.meta["range"]
        steps = plan.meta["steps"]
        below = np.zeros(m, dtype=np.int64)  # grid indices: the quantile lies in (below, above]
        above = np.full(m, 2**steps, dtype=np.int64)
        ranks = np.ceil(np.asarray(params.q) * n).astype(np.int64)
        every = stack([t] * m) if n else None  # (m, n)
        for step in range(steps):
            session.progress(step / steps, f"bisection step {step + 1} of {steps}")
            mid = (below + above) // 2
            if every is None:
                enough = np.ones(m, dtype=np.int64)  # no rows: every rank (0) is reached
            else:
                count = (every <= mid.reshape(m, 1).astype(np.float64)).sum(axis=1)
                enough = np.asarray((count >= ranks).reveal(), dtype=np.int64).reshape(m)
            above = np.where(enough == 1, mid, above)
            below = np.where(enough == 1, below, mid)
        width = (hi - lo) / 2**steps
        return {"n": n, "q": params.q, "quantiles": [float(lo + width * a) for a in above]}

    def secure(self, session: Session, local: Local, params: QuantileParams, plan: Plan,
               holders: dict[str, list[str]]) -> dict[str, Any]:
        if plan.partition == "vertical":
            return self.secure_rows(session, share_columns(session, local, plan, holders), params, plan)
        values = local["values"]
        n = int(secure_sum(session, np.array([len(values)]), (1,)).reveal()[0])
        m = len(params.q)
        lo = np.full(m, plan.meta["range"][0], dtype=np.float64)
        hi = np.full(m, plan.meta["range"][1], dtype=np.float64)
        ranks = np.ceil(np.asarray(params.q) * n).astype(np.int64)
        for step in range(plan.meta["steps"]):
            session.progress(step / plan.meta["steps"], f"bisection step {step + 1} of {plan.meta['steps']}")
            mid = (lo + hi) / 2
            below = np.searchsorted(values, mid, side="right").astype(np.int64)
            count = secure_sum(session, below, (m,))
            enough = (count >= ranks).reveal()  # the public bisection path
            hi = np.where(enough == 1, mid, hi)
            lo = np.where(enough == 1, lo, mid)
        return {"n": n, "q": params.q, "quantiles": hi.tolist()}
