"""A job's party process, and the one function that runs a party's side of a typed job.

    python -m tessera.jobs.party LAUNCH.json     (started by ``run_local`` and by the node's runner)

:func:`run_party_job` composes the steps from the :class:`~tessera.jobs.model.PartyJob`:

1. budget: reserve this party's charge before any input is shared (:class:`~tessera.jobs.budget.BudgetHook`);
   before the first output share leaves any party, every party marks it spent and then all pass
   one synchronising round (:class:`~tessera.jobs.budget.OutputBarrier`, a release hook);
2. PSI alignment on the join key (vertical jobs over unaligned rows, :func:`tessera.execution.psi.align`;
   the aligned rows stay in memory);
3. the checked load and the local stage over this party's columns (:func:`tessera.execution.steps.local_stage`);
4. the secure stage, or in PSI aligned mode the secret-shared join and the analysis on it
   (:func:`tessera.execution.steps.secure_stage`);
5. release: the outputs this party received, what the job revealed, the transcript hash; the
   budget is committed (or released if the job failed before any output share left). A job
   whose outputs are sealed to its analysts (``roles.recipients.sealed``) opens them to no party:
   this party's shares of them are sealed to each analyst's key (:mod:`tessera.jobs.sealed`).

The process writes a :class:`~tessera.runtime.launcher.ProcessReport` whose result is a
:class:`~tessera.jobs.model.PartyResult` (read back as a :class:`~tessera.jobs.model.JobReport`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.analytics import get as get_analysis
from tessera.analytics.base import Plan, SharedRows
from tessera.analytics.common import first_holders
from tessera.data.frames import read_frame
from tessera.data.sources import Source, SparkSource, SqlSource, describe_source
from tessera.errors import DataError, SessionError
from tessera.execution.psi import Aligned, align, refuse_duplicate_keys, spec_for
from tessera.execution.steps import (
    RowLimits,
    check_row_count,
    local_stage,
    parse_params,
    secure_stage,
    table_stage,
)
from tessera.jobs.budget import BudgetHook, OutputBarrier, crash_point_for_tests
from tessera.jobs.model import PartyInputs, PartyJob, PartyLaunch, PartyResult, SparkData, SqlData
from tessera.jobs.outcome import BarrierRecord
from tessera.jobs.sealed import seal_shares
from tessera.mpc.contrib import receive_inputs, rehearse, send_inputs
from tessera.mpc.session import Session
from tessera.net.channel import Channel
from tessera.protocols import PROTOCOLS
from tessera.runtime.launcher import serve, serve_input, write_report

__all__ = ["run_party_job", "run_owner_job", "owner_columns", "program_for", "source_of", "spark_data", "main"]


def source_of(data: str | SqlData | SparkData | None) -> Source | None:
    """A launch file's data reference as a source of the data layer."""
    if isinstance(data, SqlData):
        return SqlSource(data.query, dict(data.tables))
    if isinstance(data, SparkData):
        return SparkSource(data.path, data.table, data.master, data.format, dict(data.conf), data.cache)
    return data


def spark_data(source: SparkSource) -> SparkData:
    """A Spark source as a launch file carries it (the inverse of :func:`source_of`)."""
    return SparkData(path=source.path, table=source.table, master=source.master, format=source.format,
                     conf=dict(source.conf), cache=source.cache)


def run_party_job(session: Session, job: PartyJob, inputs: PartyInputs) -> PartyResult:
    """This party's side of ``job`` (see the module docstring); returns what it received.

    A compute party first receives the inputs of the data owners that do not compute
    (:func:`tessera.mpc.contrib.receive_inputs`); a compute party that owns no data of the job
    inputs nothing."""
    owns = session.party in job.roles.data_owners
    if inputs.data is None and owns:
        raise DataError(f"party {session.party!r} of job {job.job_id} has no data for it")
    if not owns:
        inputs = PartyInputs(None, None, inputs.barrier_record)  # a compute party that owns no data is charged nothing
    record = None if inputs.barrier_record is None else BarrierRecord(inputs.barrier_record)
    if record is not None:
        record.start()  # first: a party lost from here on can still say whether it marked
    budget = None
    if job.dp is not None and inputs.ledger is not None:
        budget = BudgetHook(job.job_id, job.dp, inputs.ledger)
        budget.reserve()
    received = {o: receive_inputs(session.protocol.ch, job.protocol, session.me, session.n_parties, o)
                for o in job.roles.input_only}
    session.set_owners(job.roles.data_owners, received)
    OutputBarrier(_marks(None if budget is None else budget.output_started,
                         None if record is None else record.mark)).attach(session)
    analysts = job.roles.recipients.sealed
    reveals = session.seal_outputs() if analysts else None
    try:
        session.progress(0.0, "loading and checking the data")
        outputs = _compute(session, job, inputs.data)
        crash_point_for_tests(session.party, "output")
    except BaseException:
        if budget is not None:
            budget.release()
        raise
    left = budget.commit() if budget is not None else None
    transcript = session.transcript_hash()
    sealed = {} if reveals is None else {a: seal_shares(job, session.party, outputs, reveals, transcript, a)
                                         for a in analysts}
    session.progress(1.0, "released")
    return PartyResult(outputs=outputs, revealed=list(job.revealed), transcript=transcript, budget_left=left,
                       sealed=sealed)


def _marks(*marks: Callable[[], None] | None) -> Callable[[], None] | None:
    """One mark for the output barrier that makes each of ``marks`` (None: none at all)."""
    todo = [m for m in marks if m is not None]

    def mark() -> None:
        for m in todo:
            m()
    return mark if todo else None


def run_owner_job(channel: Channel, job: PartyJob, inputs: PartyInputs) -> PartyResult:
    """The side of a data owner that does not compute (``channel``: its links to the compute
    parties): reserve its charge, run its local stage, rehearse the secure stage for the inputs it
    makes (:func:`tessera.mpc.contrib.rehearse`), secret-share them to the compute parties and
    return. It sees no output; its reservation stays reserved (see :mod:`tessera.jobs.budget`).

    In a vertical job the owner first runs the PSI with the other owners (:func:`_owners_align`;
    it learns its common rows and so the intersection size, its only output) and then shares its
    columns of the common rows (:func:`_owner_block`), one input."""
    me = channel.name
    if me not in job.roles.input_only:
        raise DataError(f"{me!r} is not a data owner of job {job.job_id} that only inputs")
    if inputs.data is None:
        raise DataError(f"data owner {me!r} of job {job.job_id} has no data for it")
    budget = None
    if job.dp is not None and inputs.ledger is not None:
        budget = BudgetHook(job.job_id, job.dp, inputs.ledger)
        budget.reserve()
    try:
        analysis, params, plan, rows = _stage_of(job)
        bounds = job.row_bounds.get(me)
        label = f"dataset {bounds.dataset!r}" if bounds is not None and bounds.dataset else f"the data of {me!r}"
        limits = None if bounds is None else RowLimits(label, bounds.min_rows, bounds.max_rows)
        holders = {c: list(h) for c, h in job.holders.items()}
        stage: Callable[[Session], object]
        psi_size = None
        if job.partition == "vertical":  # the owners' columns of the common rows, shared once
            source: Source = inputs.data
            if job.psi is not None:
                aligned = _owners_align(channel, job, source, label, limits)
                source, psi_size, limits = aligned.rows, aligned.size, None  # limits: checked before the PSI
            local = local_stage(analysis, source, job.schema_, job.columns_of(me), params, plan, limits, rows=True)
            block = _owner_block(me, local, plan, holders)
            stage = lambda s: s.owner_inputs(block)  # noqa: E731
        else:
            local = local_stage(analysis, inputs.data, job.schema_, job.columns_of(me), params, plan, limits,
                                rows=rows)
            stage = lambda s: secure_stage(s, analysis, local, params, plan, holders, rows=rows)  # noqa: E731
        mine = rehearse(PROTOCOLS[job.protocol].components, job.roles.compute, job.roles.data_owners, me,
                        job.frac_bits, stage)
    except BaseException:
        if budget is not None:
            budget.release()  # nothing was sent
        raise
    if budget is not None:
        budget.output_started()  # spent from here on, unless every compute party signs an abort
    send_inputs(channel, job.protocol, job.roles.compute, mine)
    crash_point_for_tests(me, "sent")  # tests: an owner whose process ends right after sending
    return PartyResult(outputs={} if psi_size is None else {"psi_size": psi_size}, revealed=list(job.revealed),
                       transcript="",
                       budget_left=None if budget is None else budget.commit())


def _owners_align(channel: Channel, job: PartyJob, source: Source, label: str,
                  limits: RowLimits | None) -> Aligned:
    """The PSI of a vertical job among its data owners that only input (intersection mode), over
    their links to each other: this owner's common rows in the order every owner shares. Checks
    the dataset's row count and duplicated join keys as :func:`tessera.execution.psi.align` does."""
    assert job.psi is not None
    owners = job.roles.data_owners
    try:
        ends = [channel.me if o == channel.name else channel.peer_index(o) for o in owners]
    except (KeyError, ValueError, SessionError):
        raise SessionError(f"data owner {channel.name!r} of vertical job {job.job_id} is not linked to the other "
                           f"data owners ({', '.join(o for o in owners if o != channel.name)}), with whom it runs the "
                           "PSI") from None
    frame = read_frame(source)
    check_row_count(len(frame), limits)
    key = job.psi.join_key
    if key not in frame.columns:
        raise DataError(f"{describe_source(source)}: no join-key column {key!r}")
    spec = spec_for("intersection", len(owners))
    if channel.name not in job.psi.keep_first:
        refuse_duplicate_keys(label, frame[key].tolist(), spec.normalisation)
    from tessera.psi import run_psi  # the PSI protocols, groups and OT extension: PSI jobs only

    psi = run_psi(channel, frame[key].tolist(), spec, parties=ends)
    if psi.rows is None:
        raise DataError("the PSI in intersection mode returned no rows")
    return Aligned(frame.iloc[psi.rows].drop(columns=[key]).reset_index(drop=True), None, int(psi.size or 0))


def _owner_block(owner: str, local: dict[str, np.ndarray], plan: Plan,
                 holders: dict[str, list[str]]) -> npt.NDArray[np.float64]:
    """The columns ``owner`` shares in a vertical job (those it is the first holder of, in plan
    order), side by side: one row per common row."""
    first = first_holders(plan.columns, holders)
    mine = [c for c in plan.columns if first[c] == owner]
    n = len(next(iter(local.values()))) if local else 0
    return np.column_stack([local[c] for c in mine]) if mine else np.zeros((n, 0))


def owner_columns(session: Session, plan: Plan, holders: dict[str, list[str]]) -> SharedRows:
    """At a compute party of a vertical job whose data owners only input: the owners' shared
    columns of the common rows (each owner's one input, :func:`_owner_block`; an owner of none
    of the job's columns shares an empty block), as shared rows.
    The number of rows (the intersection size) is public; owners that shared different numbers
    of rows, or other columns than the job's, are refused."""
    parts = session.owner_inputs(None)
    first = first_holders(plan.columns, holders)
    sizes = {o: p.shape[0] for o, p in zip(session.owners, parts) if p.ndim != 2 or p.shape[1]}  # owners of columns
    if len(set(sizes.values())) > 1:
        raise SessionError(f"the data owners shared different numbers of common rows ({sizes}): their PSI did not "
                           "agree, or they ran another job")
    cols: dict[str, Any] = {}
    for o, part in zip(session.owners, parts):
        mine = [c for c in plan.columns if first[c] == o]
        if part.ndim != 2 or part.shape[1] != len(mine):
            raise SessionError(f"data owner {o!r} shared an input of shape {part.shape}, not its {len(mine)} columns "
                               "of the common rows: the owner ran another job")
        for j, c in enumerate(mine):
            cols[c] = part[:, j]
    return cols


def _stage_of(job: PartyJob) -> tuple[Any, Any, Any, bool]:
    """The job's analysis, parameters, plan, and whether owners share rows (``owner_contributions``)."""
    analysis = get_analysis(job.analysis, job.version)
    rows = bool(job.roles.input_only) and analysis.owner_contributions == "rows"
    return analysis, parse_params(analysis, job.params), job.analysis_plan(), rows


def _compute(session: Session, job: PartyJob, source: Source | None) -> dict[str, Any]:
    if source is None and job.partition == "vertical":  # the owners' shared columns (they only input)
        analysis, params, plan, _ = _stage_of(job)
        with session.progress_span(0.3, 0.95, "secure computation"):
            rows_ = owner_columns(session, plan, {c: list(h) for c, h in job.holders.items()})
            outputs: dict[str, Any] = analysis.secure_rows(session, rows_, params, plan)
        session.check_owner_inputs_used()
        if job.psi is not None:
            outputs["psi_size"] = len(next(iter(rows_.values())))
        return outputs
    if source is None:  # a compute party that owns no data: it only computes
        analysis, params, plan, rows = _stage_of(job)
        outputs = secure_stage(session, analysis, {}, params, plan, {c: list(h) for c, h in job.holders.items()},
                               rows=rows)
        session.check_owner_inputs_used()
        return outputs
    analysis = get_analysis(job.analysis, job.version)
    params = parse_params(analysis, job.params)
    plan = job.analysis_plan()
    holders = {c: list(h) for c, h in job.holders.items()}
    alignment, psi_size = None, None
    bounds = job.row_bounds.get(session.party)
    limits = None if bounds is None else RowLimits(
        f"dataset {bounds.dataset!r}" if bounds.dataset else f"the data of {session.party!r}",
        bounds.min_rows, bounds.max_rows)
    if job.psi is not None:
        session.progress(0.05, "private set intersection on the join key")
        aligned = align(session, source, job.psi.join_key, job.psi.mode,
                        check_rows=lambda n: check_row_count(n, limits),
                        label=f"dataset {bounds.dataset!r}" if bounds is not None and bounds.dataset
                        else f"the data of {session.party!r}", keep_first=session.party in job.psi.keep_first)
        source, alignment, psi_size = aligned.rows, aligned.alignment, aligned.size
        limits = None  # checked on the whole dataset, before the PSI
    session.progress(0.25, "local stage on this party's rows")
    rows = bool(job.roles.input_only) and analysis.owner_contributions == "rows"
    with session.progress_span(0.3, 0.95, "secure computation"):
        if analysis.reads_table() and alignment is None:  # the secure stage reads the rows at every iterate
            outputs = table_stage(session, analysis, source, job.schema_, job.columns_of(session.party), params,
                                  plan, holders, limits)
        else:
            local = local_stage(analysis, source, job.schema_, job.columns_of(session.party), params, plan, limits,
                                rows=rows)
            outputs = secure_stage(session, analysis, local, params, plan, holders, alignment, rows=rows)
    session.check_owner_inputs_used()
    session.progress(0.95, "releasing the outputs")
    if psi_size is not None:
        outputs["psi_size"] = psi_size  # every party learns it, in both modes
    return outputs


def program_for(job: PartyJob, inputs: PartyInputs) -> Callable[[Session], dict[str, Any]]:
    """The session program of one party (its result as plain data for the process report)."""
    return lambda session: run_party_job(session, job, inputs).model_dump()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m tessera.jobs.party LAUNCH.json", file=sys.stderr)
        return 2
    launch = PartyLaunch.load(args[0])
    program = None
    if launch.job is not None and launch.endpoint.name in launch.job.roles.input_only:
        job, inputs = launch.job, PartyInputs(source_of(launch.data), launch.ledger)
        report = serve_input(launch.endpoint, lambda ch: run_owner_job(ch, job, inputs).model_dump())
        if launch.endpoint.result_path:
            write_report(report, launch.endpoint.result_path)
        return 0 if report.ok else 1
    if launch.job is not None and not launch.endpoint.is_dealer:
        program = program_for(launch.job, PartyInputs(source_of(launch.data), launch.ledger, launch.barrier_record))
    report = serve(launch.endpoint, program)
    if launch.endpoint.result_path:
        write_report(report, launch.endpoint.result_path)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
