"""The party program that runs one analysis job: load, local stage, secure stage, release.

Runs inside each party's process (``tessera.plan.executor:run_analysis``) or thread. Only
analyses from the library run; their parameters are validated against the analysis's model.
"""

from __future__ import annotations

from typing import Any

from tessera import analytics
from tessera.analytics.base import Plan
from tessera.data.schema import Schema
from tessera.errors import PlanError
from tessera.mpc.session import Session
from tessera.plan.sources import LocalColumns

__all__ = ["run_analysis", "make_plan"]


def make_plan(
    analysis: str, version: str | None, params: dict[str, Any], schema: Schema, partition: str,
    parties: list[str], recipients: list[str] | None = None,
) -> tuple[analytics.Analysis, Any, Plan]:
    """The analysis, its validated parameters and its plan (raises PlanError if unsafe)."""
    a = analytics.get(analysis, version)
    if partition not in a.partitions:
        raise PlanError(f"{a.name} supports {', '.join(a.partitions)} partitioning, not {partition!r}")
    p = a.Params(**params)
    plan = a.plan(schema, p, partition, parties)
    plan.recipients = recipients
    return a, p, plan


def run_analysis(
    session: Session,
    analysis: str,
    params: dict[str, Any],
    schema: dict[str, Any],
    data: str,
    version: str | None = None,
    partition: str = "horizontal",
    recipients: list[str] | None = None,
    holders: dict[str, list[str]] | None = None,
) -> dict[str, Any]:
    """One party's side of a job over its own data file ``data``; returns what it received.

    ``holders`` (vertical partitioning) names the parties holding each column; every party
    loads only the columns it holds. Horizontally, every party holds every column.
    """
    sch = Schema.model_validate(schema)
    a, p, plan = make_plan(analysis, version, params, sch, partition, session.parties, recipients)
    if holders is None:
        holders = {c: list(session.parties) for c in plan.columns}
    missing = [c for c in plan.columns if not holders.get(c)]
    if missing:
        raise PlanError(f"no party holds the columns {missing}")
    mine = [c for c in plan.columns if session.party in holders[c]]
    columns = LocalColumns(data, sch, mine)
    try:
        local = a.local(columns, p, plan)
    finally:
        columns.close()
    outputs = a.secure(session, local, p, plan, holders)
    return {"outputs": outputs, "transcript": session.transcript_hash()}
