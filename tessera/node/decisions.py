"""This node's decision on a job: the contract's policy, the job's plan (the one call of the
planner at this node), and whether this node has the data for its part."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from tessera.errors import TesseraError
from tessera.governance.job import JobSpec
from tessera.governance.policy import NodeState, check
from tessera.jobs import planner
from tessera.jobs.contract import request_for
from tessera.jobs.model import PartyJob
from tessera.node.context import NodeContext
from tessera.node.datasources import rows_of
from tessera.node.states import Vote

__all__ = ["Decided", "decide"]


@dataclass(frozen=True)
class Decided:
    """``state`` is ``accepted``, ``denied`` or ``awaiting_approval``; ``job`` the typed job
    (None if it could not be planned)."""

    state: Vote
    reasons: list[str] = field(default_factory=list)
    job: PartyJob | None = None


def decide(ctx: NodeContext, spec: JobSpec, coordinator: str, job_id: str) -> Decided:
    rows: dict[str, int] = {}
    for d in spec.datasets:
        if d in ctx.cfg.datasets and d in ctx.own_datasets:
            try:
                rows[d] = rows_of(ctx.cfg, d)
            except Exception as e:  # policy then judges without the count
                ctx.log(logging.WARNING, f"could not count the rows of {d}: {type(e).__name__}", job_id=job_id)
    # one validation, then policy on its result: the planner validates the parameters (a JSON
    # string "50" for an int becomes 50, defaults are filled in), and every limit of the contract
    # is checked on what the analysis will really run with, never on the raw request
    job = None
    plan_reasons: list[str] = []
    try:
        ctx.metrics.jobs_planned.labels(ctx.name).inc()
        job = planner.plan_job(request_for(ctx.contract, spec, coordinator, job_id))
    except (TesseraError, ValueError) as e:
        plan_reasons.append(f"plan: {e}")
    checked = spec if job is None else spec.model_copy(update={"params": dict(job.params)})
    decision = check(ctx.contract, checked, NodeState(ctx.name, rows, lambda d: ctx.ledger.remaining(d)[0]))
    reasons = list(decision.reasons) + plan_reasons
    if job is not None and ctx.name not in job.roles.participants:
        reasons.append(f"node {ctx.name!r} has no part in this job")
    if job is not None and ctx.name in job.roles.data_owners:
        ds = job.roles.datasets[ctx.name]
        if ds not in ctx.cfg.datasets:
            reasons.append(f"dataset {ds!r} has no data source configured at {ctx.name}")
    if reasons:
        return Decided(Vote.DENIED, reasons, job)
    if ctx.cfg.approval == "manual":
        return Decided(Vote.AWAITING_APPROVAL, [], job)
    return Decided(Vote.ACCEPTED, [], job)
