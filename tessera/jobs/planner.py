"""The planner: one function, :func:`plan_job`, turns a :class:`JobRequest` into the typed
:class:`~tessera.jobs.model.PartyJob` every party runs.

Called once at each node that decides on a job (from the contract:
:func:`tessera.jobs.contract.request_for`) and once in ``run_local``; the job it returns is
stored with the job and handed to the party process, which never plans again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tessera.analytics import available, get
from tessera.data.onehot import base_columns
from tessera.data.schema import Schema
from tessera.errors import PlanError
from tessera.execution.psi import duplicate_keys_note
from tessera.execution.steps import Planned, plan_analysis, plan_to_dict
from tessera.jobs.model import DpCharge, PartyJob, PsiStep, Roles, RowBounds
from tessera.mpc.session import SEALED
from tessera.runtime import jsonable

__all__ = ["JobRequest", "plan_job"]


@dataclass(frozen=True)
class JobRequest:
    """Everything the planner needs: the analysis and its raw parameters, the schema, the
    partition, the roles, who holds which column (None: every data owner holds every column),
    the PSI step of a vertical job, and, for a budgeted job, that it is charged."""

    job_id: str
    analysis: str
    version: str | None
    params: Mapping[str, Any]
    schema: Schema
    partition: str
    protocol: str
    roles: Roles
    holders: Mapping[str, list[str]] | None = None
    #: vertical jobs over rows not yet aligned: the PSI mode and the join key
    psi_mode: str | None = None
    join_key: str | None = None
    #: the data owners whose datasets allow duplicated join keys (the first row of each is used)
    keep_first: list[str] = field(default_factory=list)
    #: charge the data owners' budgets for the (epsilon, delta) the analysis will use
    charged: bool = False
    #: the columns the job declares (a node's job may read no others); None: not checked
    declared_columns: list[str] | None = field(default=None)
    #: data owner -> the contract's bounds on its dataset's row count (checked by the party)
    row_bounds: Mapping[str, RowBounds] = field(default_factory=dict)


def _outsourced(r: JobRequest) -> Planned:
    """The plan of a job whose data owners do not all compute: checked, and saying who does what."""
    roles, a = r.roles, get(r.analysis, r.version)
    to = [SEALED] if roles.recipients.sealed else list(roles.recipients.parties)
    if r.protocol not in ("rep3", "semi2k"):
        raise PlanError(f"data owners that do not compute cannot send inputs under {r.protocol!r}")
    if a.reads_table():
        raise PlanError(f"{a.name} reveals each iterate to the data owners, which compute their derivatives at it: "
                        "every data owner must compute (or use the fully secure logistic_regression, which runs on "
                        "the owners' shared rows)")
    if r.partition == "vertical":
        return _outsourced_vertical(r, a, to)
    if a.owner_contributions == "rows":
        if not a.takes_shared_rows():
            raise PlanError(f"{a.name} needs its data owners online after a reveal; every data owner must compute")
        # the owners' rows, concatenated, are shared rows among the compute parties: the row-level plan
        planned = plan_analysis(r.analysis, r.version, r.params, r.schema, "vertical", list(roles.compute), to)
        what = "their scaled rows of " + ", ".join(planned.plan.columns) + " (each owner's row count is public)"
    else:
        planned = plan_analysis(r.analysis, r.version, r.params, r.schema, r.partition, list(roles.data_owners), to)
        what = "what the secure stage takes of their local results (aggregates, or rows for row-level analyses)"
    planned.plan.notes.append(
        f"roles: compute parties {', '.join(roles.compute)} run the secure stage and see only secret shares; data "
        f"owners that only input ({', '.join(roles.input_only)}) run the local stage on their own rows, secret-share "
        f"{what} to the compute parties with PRG seeds, and leave; none of them sees another's data or any output")
    return planned


def _outsourced_vertical(r: JobRequest, a: Any, to: list[str]) -> Planned:
    """The plan of a vertical job whose data owners only input: the owners align their rows by a
    PSI among themselves (intersection mode) or bring aligned rows, secret-share their columns
    of the common rows to the compute parties and leave; the analysis runs on the shared rows."""
    roles = r.roles
    if not a.takes_shared_rows():
        raise PlanError(f"{a.name} cannot run on secret-shared rows, so not vertically with data owners that only "
                        "input; make the owners compute parties")
    both = [o for o in roles.data_owners if o in roles.compute]
    if both:
        raise PlanError(f"a vertical job with data owners that only input runs its PSI among the owners, so every "
                        f"owner must only input; {', '.join(both)} computes too (name compute parties that own no "
                        "data of the job)")
    if r.psi_mode == "aligned":
        raise PlanError("PSI aligned mode (the joined rows kept secret) is not built for data owners that only "
                        "input; use intersection mode (the contract's psi_reveal = 'intersection'), or make the "
                        "owners compute parties")
    if r.psi_mode is not None and len(roles.data_owners) not in (2, 3):
        raise PlanError(f"the PSI among the data owners runs between 2 or 3 owners, not {len(roles.data_owners)}")
    planned = plan_analysis(r.analysis, r.version, r.params, r.schema, "vertical", list(roles.compute), to,
                            psi_mode=r.psi_mode)
    join = ("align their rows by a PSI among themselves on the join key (the compute parties take no part in it "
            "and learn only the intersection size, the number of shared rows), then " if r.psi_mode else "")
    planned.plan.notes.append(
        f"roles: compute parties {', '.join(roles.compute)} run the secure stage and see only secret shares; data "
        f"owners that only input ({', '.join(roles.input_only)}) {join}secret-share their columns of the common "
        f"rows ({', '.join(planned.plan.columns)}, scaled) to the compute parties with PRG seeds, and leave; none of "
        "them sees another's columns or any output")
    return planned


def plan_job(request: JobRequest) -> PartyJob:
    """The typed job, or PlanError naming why it cannot run (unsafe, or inconsistent)."""
    r = request
    if r.partition not in ("horizontal", "vertical"):
        raise PlanError(f"unknown partition {r.partition!r}; use 'horizontal' or 'vertical'")
    sealed = r.roles.recipients.sealed
    outside = r.roles.input_only
    planned = _outsourced(r) if outside else plan_analysis(
        r.analysis, r.version, r.params, r.schema, r.partition, list(r.roles.data_owners),
        [SEALED] if sealed else list(r.roles.recipients.parties), psi_mode=r.psi_mode)
    plan = planned.plan
    if sealed:
        if not planned.analysis.seals():
            able = sorted(n for n, vs in available().items() if get(n, vs[-1]).seals())
            raise PlanError(f"{planned.analysis.name} cannot seal its results to analysts yet (an analyst with a box "
                            "key receives only sealed results); name a data owner among the recipients (it will see "
                            f"the results) or use an analysis that can: {', '.join(able)}")
        plan.notes.append(f"outputs sealed to {', '.join(sorted(sealed))}: no party opens them; each party seals its "
                          "own shares to the analyst's registered key and only the analyst reconstructs them")
    psi = None
    if r.psi_mode is not None:
        if not r.join_key:
            raise PlanError("a PSI needs the join key: name each party's identifier column (join_key)")
        psi = PsiStep(mode=r.psi_mode, join_key=r.join_key, keep_first=list(r.keep_first))  # type: ignore[arg-type]
        plan.notes.append(duplicate_keys_note(list(r.roles.data_owners), list(r.keep_first)))
    read = base_columns(r.schema, plan.columns)  # an indicator col[level] reads col
    if r.declared_columns is not None:
        undeclared = [c for c in read if c not in r.declared_columns]
        if undeclared:
            raise PlanError(f"the analysis reads columns {undeclared} that the job does not declare in 'columns'")
    owners = list(r.roles.data_owners)
    if r.holders is None:
        holders = {c: owners for c in plan.columns}
    else:
        holders = {c: list(r.holders.get(base_columns(r.schema, [c])[0], [])) for c in plan.columns}
    missing = [c for c in plan.columns if not holders[c]]
    if missing:
        raise PlanError(f"no party holds the columns {missing}")
    params: dict[str, Any] = jsonable.to_plain(planned.params.model_dump(mode="json"))
    dp = None
    if r.charged:
        if "epsilon" not in params:
            raise PlanError(f"{planned.analysis.name} takes no epsilon: only differentially private analyses are "
                            "charged to a privacy budget")
        dp = DpCharge(epsilon=float(params["epsilon"]), delta=float(params.get("delta", 0.0)))
    stray = sorted(set(r.row_bounds) - set(owners))
    if stray:
        raise PlanError(f"row bounds for {stray}, who input no data in this job")
    return PartyJob(
        job_id=r.job_id, analysis=planned.analysis.name, version=planned.analysis.version,
        protocol=r.protocol, params=params,
        schema_=r.schema, partition="vertical" if r.partition == "vertical" else "horizontal", roles=r.roles,
        holders=holders, psi=psi, frac_bits=plan.frac_bits, dp=dp, row_bounds=dict(r.row_bounds),
        plan=plan_to_dict(plan),
        plan_text=plan.explain(), revealed=plan.reveals(),
    )
