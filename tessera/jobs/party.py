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

from tessera.analytics import get as get_analysis
from tessera.data.sources import Source, SparkSource, SqlSource
from tessera.errors import DataError
from tessera.execution.psi import align
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
from tessera.runtime.launcher import die_with_parent, serve, serve_input, write_report

__all__ = ["run_party_job", "run_owner_job", "program_for", "source_of", "spark_data", "main"]


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
    return. It sees no output; its reservation stays reserved (see :mod:`tessera.jobs.budget`)."""
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
        limits = None if bounds is None else RowLimits(
            f"dataset {bounds.dataset!r}" if bounds.dataset else f"the data of {me!r}", bounds.min_rows,
            bounds.max_rows)
        local = local_stage(analysis, inputs.data, job.schema_, job.columns_of(me), params, plan, limits, rows=rows)
        holders = {c: list(h) for c, h in job.holders.items()}
        mine = rehearse(PROTOCOLS[job.protocol].components, job.roles.compute, job.roles.data_owners, me,
                        job.frac_bits, lambda s: secure_stage(s, analysis, local, params, plan, holders, rows=rows))
    except BaseException:
        if budget is not None:
            budget.release()  # nothing was sent
        raise
    if budget is not None:
        budget.output_started()  # spent from here on, unless every compute party signs an abort
    send_inputs(channel, job.protocol, job.roles.compute, mine)
    return PartyResult(outputs={}, revealed=list(job.revealed), transcript="",
                       budget_left=None if budget is None else budget.commit())


def _stage_of(job: PartyJob) -> tuple[Any, Any, Any, bool]:
    """The job's analysis, parameters, plan, and whether owners share rows (``owner_contributions``)."""
    analysis = get_analysis(job.analysis, job.version)
    rows = bool(job.roles.input_only) and analysis.owner_contributions == "rows"
    return analysis, parse_params(analysis, job.params), job.analysis_plan(), rows


def _compute(session: Session, job: PartyJob, source: Source | None) -> dict[str, Any]:
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
    die_with_parent()
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
