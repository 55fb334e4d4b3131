"""The party program that runs one analysis job: load, local stage, secure stage, release.

Runs inside each party's process (``tessera.plan.executor:run_analysis``) or thread. Only
analyses from the library run; their parameters are validated against the analysis's model.

Vertical jobs behind a PSI (:mod:`tessera.plan.vertical`) name the PSI mode in the plan:
``intersection`` (each party's data are its aligned rows in the clear) or ``aligned`` (each
party's data are its whole list, and the executor hands the analysis the secret-shared join,
:func:`tessera.plan.aligned.shared_rows`, instead of running its ordinary secure stage).
"""

from __future__ import annotations

from typing import Any

from tessera import analytics
from tessera.analytics.base import Plan
from tessera.data.local import load
from tessera.data.schema import Schema
from tessera.errors import PlanError
from tessera.mpc.session import Session
from tessera.plan.aligned import shared_rows
from tessera.psi import Alignment

__all__ = ["run_analysis", "make_plan", "PSI_MODES"]

#: What each PSI mode of a vertical job reveals, beyond the analysis's own release.
PSI_MODES = {
    "intersection": "PSI (intersection mode): every party learns which of its own rows are common, in one common "
                    "order, hence the intersection size; and every party's number of distinct identifiers",
    "aligned": "PSI (aligned mode): every party learns the intersection size and every party's number of distinct "
               "identifiers, and no party learns which of its rows are common: the rows are joined as secret "
               "shares (oblivious permutations) and analysed without ever being opened",
}


def make_plan(
    analysis: str, version: str | None, params: dict[str, Any], schema: Schema, partition: str,
    parties: list[str], recipients: list[str] | None = None, psi_mode: str | None = None,
) -> tuple[analytics.Analysis[Any], Any, Plan]:
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
    p = a.parse_params(params)
    plan = a.plan(schema, p, partition, parties)
    plan.recipients = recipients
    if psi_mode is not None:
        plan.notes.append(PSI_MODES[psi_mode])
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
    alignment: Alignment | None = None,
) -> dict[str, Any]:
    """One party's side of a job over its own data file ``data``; returns what it received.

    ``holders`` (vertical partitioning) names the parties holding each column; every party
    loads only the columns it holds. Horizontally, every party holds every column.

    ``alignment`` (vertical, PSI ``aligned`` mode): ``data`` holds one row per distinct
    identifier of this party in the alignment's ``input_rows`` order; the analysis runs on the
    secret-shared join of all parties' rows (:meth:`~tessera.analytics.base.Analysis.secure_rows`).
    """
    sch = Schema.model_validate(schema)
    a, p, plan = make_plan(analysis, version, params, sch, partition, session.parties, recipients,
                           psi_mode=None if alignment is None else "aligned")
    if holders is None:
        holders = {c: list(session.parties) for c in plan.columns}
    missing = [c for c in plan.columns if not holders.get(c)]
    if missing:
        raise PlanError(f"no party holds the columns {missing}")
    mine = [c for c in plan.columns if session.party in holders[c]]
    columns = load(data, sch, mine)  # every violation of the declared schema is refused, by column
    try:
        local = a.local(columns, p, plan)
    finally:
        columns.close()
    if alignment is None:
        outputs = a.secure(session, local, p, plan, holders)
    else:
        outputs = a.secure_rows(session, shared_rows(session, alignment, local, plan, holders), p, plan)
    return {"outputs": outputs, "transcript": session.transcript_hash()}
