"""The steps of one party's side of an analysis: the analysis's plan, the checked load, the
local stage and the secure stage. Only analyses from the library run; their parameters are
validated against the analysis's model.

:func:`plan_analysis` is the analysis's own planning (``Analysis.plan``: encodings, overflow
checks, what is revealed); the job planner (:func:`tessera.jobs.planner.plan_job`) calls it once
per job and carries the resulting :class:`~tessera.analytics.base.Plan` in the typed job
(:func:`plan_to_dict`, :func:`plan_from_dict`), so a party never plans again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any, NamedTuple

import numpy as np

from tessera import analytics
from tessera.analytics.base import Params, Plan, Release
from tessera.analytics.common import owner_rows, vertical_local
from tessera.data.checks import row_count_problem
from tessera.data.local import load
from tessera.data.schema import Schema
from tessera.data.sources import Source
from tessera.errors import DataError, PlanError
from tessera.execution.aligned import shared_rows
from tessera.execution.psi import PSI_MODES, REVEALS
from tessera.mpc.session import Session
from tessera.psi import Alignment
from tessera.runtime import jsonable

__all__ = ["Planned", "RowLimits", "plan_analysis", "parse_params", "plan_to_dict", "plan_from_dict",
           "check_row_count", "local_stage", "secure_stage", "table_stage"]


class Planned(NamedTuple):
    """An analysis from the library, its validated parameters and its plan."""

    analysis: analytics.Analysis[Any]
    params: Params
    plan: Plan


def parse_params(analysis: analytics.Analysis[Any], raw: Mapping[str, Any]) -> Params:
    """The analysis's parameters validated against its model (the one place that knows how an
    analysis names its parameter model)."""
    params: Params = analysis.parse_params(raw)
    return params


def plan_analysis(
    analysis: str, version: str | None, params: Mapping[str, Any], schema: Schema, partition: str,
    parties: list[str], recipients: list[str] | None = None, psi_mode: str | None = None,
) -> Planned:
    """The analysis, its validated parameters and its plan (raises PlanError if unsafe).

    ``psi_mode`` (vertical jobs that start with a PSI on a join key): ``"intersection"`` or
    ``"aligned"``; the plan then says what the PSI reveals.
    """
    a = analytics.get(analysis, version)
    if partition not in a.partitions:
        raise PlanError(f"{a.name} supports {', '.join(a.partitions)} partitioning, not {partition!r}")
    if psi_mode is not None:
        if psi_mode not in PSI_MODES:
            raise PlanError(f"unknown PSI mode {psi_mode!r}; use one of {', '.join(PSI_MODES)}")
        if partition != "vertical":
            raise PlanError("a PSI on a join key aligns vertically partitioned rows; use partition='vertical'")
        if psi_mode == "aligned" and not a.takes_shared_rows():
            raise PlanError(f"{a.name} cannot run on secret-shared aligned rows; use psi_mode='intersection'")
    p = parse_params(a, params)
    schema, p, encoded = a.encode(schema, p)  # categorical features -> indicator columns
    plan = a.plan(schema, p, partition, parties)
    plan.notes += encoded
    plan.recipients = recipients
    if psi_mode is not None:
        plan.notes.append(REVEALS[psi_mode])
    return Planned(a, p, plan)


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as plain JSON (it travels in the typed job)."""
    plain: dict[str, Any] = jsonable.to_plain(asdict(plan))
    return plain


def plan_from_dict(raw: Mapping[str, Any]) -> Plan:
    """Inverse of :func:`plan_to_dict` (tuples come back as tuples where the plan declares them)."""
    d = dict(jsonable.from_plain(dict(raw)))
    d["release"] = [Release(r["name"], r["description"], None if r["recipients"] is None else tuple(r["recipients"]))
                    for r in d["release"]]
    d["scaling"] = {c: (float(v[0]), float(v[1])) for c, v in d["scaling"].items()}
    d["meta"] = {k: _tuples(v) for k, v in d["meta"].items()}
    return Plan(**d)


def _tuples(v: Any) -> Any:
    if isinstance(v, list):
        return tuple(_tuples(x) for x in v)
    if isinstance(v, dict):
        return {k: _tuples(x) for k, x in v.items()}
    return v


class RowLimits(NamedTuple):
    """The contract's bounds on a dataset's row count (``label`` names the dataset in messages)."""

    label: str
    min_rows: int = 0
    max_rows: int | None = None


def check_row_count(n_rows: int, limits: RowLimits | None) -> None:
    """Refuse a dataset whose row count is outside the contract's bounds: DataError naming the
    count (the dataset's size), never a value."""
    if limits is not None:
        problem = row_count_problem(limits.label, n_rows, limits.min_rows, limits.max_rows)
        if problem is not None:
            raise DataError(problem)


def local_stage(analysis: analytics.Analysis[Any], source: Source, schema: Schema, columns: Sequence[str],
                params: Params, plan: Plan, limits: RowLimits | None = None,
                rows: bool = False) -> dict[str, np.ndarray]:
    """Load this party's ``columns`` from ``source`` checked against ``schema`` (every violation is
    refused, by column and count, never by value; with ``limits``, a row count outside the
    contract's bounds too) and run the analysis's local stage on them (with ``rows``: the scaled
    rows, :func:`~tessera.analytics.common.vertical_local`, that owners who do not compute share
    for an analysis that combines their rows)."""
    table = load(source, schema, list(columns))
    try:
        check_row_count(table.n_rows, limits)
        return vertical_local(table, plan) if rows else analysis.local(table, params, plan)
    finally:
        table.close()


def table_stage(session: Session, analysis: analytics.Analysis[Any], source: Source, schema: Schema,
                columns: Sequence[str], params: Params, plan: Plan, holders: dict[str, list[str]],
                limits: RowLimits | None = None) -> dict[str, Any]:
    """Load this party's ``columns`` checked as :func:`local_stage` does and run a secure stage that
    reads them while it runs (``Analysis.secure_table``); the table is closed afterwards."""
    table = load(source, schema, list(columns))
    try:
        check_row_count(table.n_rows, limits)
        return analysis.secure_table(session, table, params, plan, holders)
    finally:
        table.close()


def secure_stage(session: Session, analysis: analytics.Analysis[Any], local: dict[str, np.ndarray], params: Params,
                 plan: Plan, holders: dict[str, list[str]], alignment: Alignment | None = None,
                 rows: bool = False) -> dict[str, Any]:
    """The secure stage; with an ``alignment`` (PSI aligned mode) over the secret-shared join;
    with ``rows`` over the data owners' rows, concatenated (:func:`~tessera.analytics.common.owner_rows`)."""
    if rows:
        return analysis.secure_rows(session, owner_rows(session, local, plan), params, plan)
    if alignment is None:
        return analysis.secure(session, local, params, plan, holders)
    return analysis.secure_rows(session, shared_rows(session, alignment, local, plan, holders), params, plan)
