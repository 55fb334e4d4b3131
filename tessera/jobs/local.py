"""``run_local``: run any analysis over several parties' data on this machine.

Each party is a separate OS process talking mutual TLS (``runtime="cluster"``, the default) or a
thread (``runtime="threads"``, for quick tests and notebooks). The job is planned once, here
(:func:`tessera.jobs.planner.plan_job`); every party runs the same typed job. Party data given as
pandas DataFrames are handed to threads in memory, and written to Parquet files for processes.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd

from tessera import analytics
from tessera.analytics.results import Result, Summary
from tessera.data.frames import columns_of
from tessera.data.local import write_parquet
from tessera.data.schema import Schema
from tessera.data.sources import Source, SparkSource
from tessera.errors import PlanError, SessionError
from tessera.jobs.model import (
    JobReport,
    LedgerRef,
    PartyInputs,
    PartyJob,
    PartyLaunch,
    PartyResult,
    Preprocessing,
    Recipients,
    Roles,
    RowBounds,
)
from tessera.jobs.outcome import BarrierRecord, StatementKey, settle_owner, sign_abort
from tessera.jobs.party import run_owner_job, run_party_job, spark_data
from tessera.jobs.planner import JobRequest, plan_job
from tessera.jobs.sealed import BoxKey, open_sealed
from tessera.net.channel import Channel
from tessera.protocols import JOB_PROTOCOLS, NEEDS_DEALER, PREPROCESSING, session_protocol
from tessera.runtime import forkserver
from tessera.runtime.cluster import run_mesh
from tessera.runtime.config import PartyConfig
from tessera.runtime.inprocess import DEALER_NAME, party_names, run_threads

if TYPE_CHECKING:  # the relay is a benchmark tool: party processes need not import it
    from tessera.runtime.relay import Relay

__all__ = ["run_local", "LocalResult", "local_job", "ProgressCallback"]

PartyData: TypeAlias = pd.DataFrame | str | os.PathLike[str] | SparkSource

#: ``progress(fraction, stage)``: the job's fraction done (0..1, never decreasing; 1.0 once the
#: outputs are released) and the stage's text ("Newton iteration 3 of 8")
ProgressCallback: TypeAlias = Callable[[float, str], None]

#: the analyst of a ``run_local`` job sealed to an analyst key
ANALYST_NAME = "analyst"


@dataclass(repr=False)
class LocalResult:
    """The outputs a recipient received, what was revealed to whom, and run figures.

    :attr:`result` is the analysis's result object (:mod:`tessera.analytics.results`: named
    estimates, a statsmodels-like ``summary()``, ``to_frame()``, ``to_dict()``, ``plot()``);
    ``summary()``, ``to_frame()``, ``to_dict()`` and ``plot()`` here are its. ``res["coefficients"]``
    and :attr:`outputs` are the raw released outputs."""

    outputs: dict[str, Any]
    revealed: list[str]
    plan_text: str
    per_party: dict[str, dict[str, Any]] = field(default_factory=dict)
    comm: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    #: every endpoint's typed report (the dealer's included)
    reports: dict[str, JobReport] = field(default_factory=dict)
    job: PartyJob | None = None
    #: a job sealed to an analyst: party -> analyst -> that party's sealed box (``outputs`` are
    #: then what the analyst's key reconstructs; ``per_party`` what each party saw)
    sealed: dict[str, dict[str, str]] = field(default_factory=dict)
    _result: Result | None = field(default=None, init=False, compare=False)

    def __getitem__(self, key: str) -> Any:
        return self.outputs[key]

    @property
    def result(self) -> Result:
        """The outputs as the analysis's result object (built from the job's parameters and plan)."""
        if self._result is None:
            if self.job is None:
                raise PlanError("this LocalResult has no job, so its result object cannot be built")
            job = self.job
            self._result = analytics.get(job.analysis, job.version).result(
                self.outputs, job.params, plan=job.analysis_plan(), plan_text=self.plan_text, revealed=self.revealed,
                schema=job.schema_)
        return self._result

    def summary(self) -> Summary:
        """The result's statsmodels-like summary (``print(res.summary())``)."""
        return self.result.summary()

    def to_frame(self) -> pd.DataFrame:
        """The result's main table as a DataFrame."""
        return self.result.to_frame()

    def to_dict(self) -> dict[str, Any]:
        """The result as plain JSON-able values (lists, numbers; NaN as None)."""
        return self.result.to_dict()

    def plot(self, ax: Any = None) -> Any:
        """The result's plot (needs matplotlib: ``pip install tessera[plots]``)."""
        return self.result.plot(ax)

    def __repr__(self) -> str:
        try:
            inner = repr(self.result)
        except Exception:  # a result that cannot be built still has a short repr
            inner = f"outputs {', '.join(self.outputs)}"
        return f"<LocalResult {inner} in {self.seconds:.2f} s>"

    def _repr_html_(self) -> str:
        return self.result._repr_html_()


def local_job(
    analysis: str, parties: Mapping[str, Source], schema: Schema, *, protocol: str, partition: str = "horizontal",
    recipients: list[str] | None = None, version: str | None = None, psi_mode: str | None = None,
    join_key: str | None = None, ledgers: Mapping[str, LedgerRef] | None = None, job_id: str | None = None,
    params: Mapping[str, Any] | None = None, row_bounds: Mapping[str, RowBounds] | None = None,
    duplicate_keys: str = "refuse", sealed: Mapping[str, str] | None = None, preprocessing: str | None = None,
    compute: Sequence[str] | None = None,
) -> PartyJob:
    """The typed job ``run_local`` runs (planned here, once); with ``sealed`` (analyst -> X25519
    public key, hex) its outputs are sealed to those analysts and opened to no party; with
    ``compute`` those parties compute (``parties`` are the data owners)."""
    names = party_names(list(parties))
    workers = names if compute is None else party_names(list(compute))
    if sealed:
        if recipients:
            raise PlanError("a job sealed to analysts has no party recipients; leave out recipients")
        to = Recipients(parties=[], analysts=list(sealed), sealed=dict(sealed))
    else:
        to = Recipients(parties=list(recipients or workers))
    if protocol not in JOB_PROTOCOLS:
        raise PlanError(f"unknown protocol {protocol!r}; choose one of {sorted(JOB_PROTOCOLS)}")
    _check_compute(protocol, workers)
    if preprocessing is not None and (protocol != "semi2k" or preprocessing not in PREPROCESSING):
        raise PlanError(f"preprocessing is {' or '.join(map(repr, PREPROCESSING))} for semi2k, not {preprocessing!r} "
                        f"for {protocol}")
    if preprocessing == "ot":
        pre = Preprocessing(source="ot")
    elif NEEDS_DEALER.get(protocol):
        pre = Preprocessing(source="dealer", party=DEALER_NAME)
    else:
        pre = Preprocessing(source="none")
    roles = Roles(data_owners=names, compute=workers, preprocessing=pre,
                  recipients=to,
                  datasets={n: r.dataset for n, r in (ledgers or {}).items()})
    holders = None
    if partition == "vertical":
        present = {n: set(columns_of(d)) for n, d in parties.items()}
        every = sorted(set().union(*present.values()))
        holders = {c: [n for n in names if c in present[n]] for c in every}
    return plan_job(JobRequest(job_id=job_id or secrets.token_hex(8), analysis=analysis, version=version,
                               params=dict(params or {}), schema=schema, partition=partition, protocol=protocol,
                               roles=roles,
                               holders=holders, psi_mode=psi_mode, join_key=join_key, charged=ledgers is not None,
                               row_bounds=dict(row_bounds or {}),
                               keep_first=list(names) if duplicate_keys == "first" else []))


def _check_compute(protocol: str, compute: Sequence[str]) -> None:
    if protocol == "rep3" and len(compute) != 3:
        raise PlanError(f"rep3 runs on exactly three compute parties, not {len(compute)}: {list(compute)}")
    if len(compute) < 2:
        raise PlanError(f"{protocol} needs at least two compute parties, not {list(compute)}")


def run_local(
    analysis: str,
    parties: Mapping[str, PartyData],
    schema: Schema,
    *,
    protocol: str | None = None,
    partition: str = "horizontal",
    recipients: list[str] | None = None,
    version: str | None = None,
    runtime: str = "cluster",
    timeout: float = 300.0,
    psi_mode: str | None = None,
    join_key: str | None = None,
    ledgers: Mapping[str, LedgerRef] | None = None,
    job_id: str | None = None,
    row_bounds: Mapping[str, RowBounds] | None = None,
    duplicate_keys: str = "refuse",
    analyst_key: BoxKey | None = None,
    progress: ProgressCallback | None = None,
    relay: Relay | None = None,
    preprocessing: str | None = None,
    compute: Sequence[str] | None = None,
    **params: Any,
) -> LocalResult:
    """Run ``analysis`` over ``parties`` (name -> DataFrame or CSV/Parquet path).

    ``protocol`` defaults to rep3 for three parties and semi2k otherwise. Raises PlanError
    before anything runs if the job is unsafe (e.g. could overflow the ring).

    ``psi_mode`` (vertical jobs over rows not yet aligned, on each party's ``join_key`` column):
    ``"intersection"`` (each party learns which of its rows are common) or ``"aligned"`` (nobody
    does: the join exists only as secret shares; every party learns the intersection size and
    the sizes of the parties' sets).

    ``ledgers`` (differentially private analyses): each party's privacy-budget ledger and dataset;
    the job (``job_id``) is charged to every one of them (reserved before any input is shared,
    spent once an output share leaves, released if the job aborts before).

    ``row_bounds`` (party -> :class:`~tessera.jobs.model.RowBounds`): a contract's bounds on each
    party's row count; a party whose data is outside them refuses the job, naming its count.

    ``duplicate_keys`` (vertical jobs over a join key): ``"refuse"`` (default) fails the job if a
    party's join key repeats, naming the party and the number of duplicated keys; ``"first"``
    uses the first row of each key.

    ``analyst_key`` (a :class:`~tessera.jobs.sealed.BoxKey`): the outputs are sealed to the
    analyst ``"analyst"`` with this key's public half and opened to no party; ``outputs`` are what
    the analyst's client reconstructs from every party's box (``sealed``), ``per_party`` what each
    party saw (only what every party learns, such as a row count).

    ``progress(fraction, stage)`` is called as the job goes (both runtimes): the fraction of the
    least advanced party (monotone, 1.0 at release) and its stage's text.

    ``relay`` (processes only): the parties' links run through this
    :class:`~tessera.runtime.relay.Relay`, a WAN emulator with a delay and a bandwidth cap.

    ``preprocessing`` (semi2k): ``"dealer"`` (default: a dealer process makes the correlated
    randomness) or ``"ot"`` (the parties make it themselves by oblivious transfer; no third
    process — :mod:`tessera.protocols.otprep`).

    ``compute`` (e.g. ``["c1", "c2", "c3"]``): the compute parties (rep3: exactly three; semi2k:
    two or more, with its dealer); ``parties`` are then the data owners, any number of them. An
    owner named among ``compute`` computes too; any other owner runs its local stage, secret-shares
    what the secure stage needs of it to the compute parties and leaves (its result is empty).
    Recipients default to the compute parties.
    """
    if duplicate_keys not in ("refuse", "first"):
        raise PlanError(f"duplicate_keys is 'refuse' or 'first', not {duplicate_keys!r}")
    names = list(parties)
    workers = names if compute is None else list(compute)
    protocol = protocol or ("rep3" if len(workers) == 3 else "semi2k")
    if runtime not in ("cluster", "threads"):
        raise SessionError(f"unknown runtime {runtime!r}; use 'cluster' or 'threads'")
    if relay is not None and runtime != "cluster":
        raise SessionError("a relay carries processes' links: use it with runtime='cluster'")
    if ledgers is not None and set(ledgers) != set(names):
        raise PlanError(f"give a ledger for every party ({', '.join(names)}), not {sorted(ledgers)}")
    if runtime == "cluster":
        forkserver.warm()  # the party processes' imports happen while the data is written and the job planned
    tmp = Path(tempfile.mkdtemp(prefix="tessera-run-"))
    try:
        data: dict[str, Source] = dict(parties)
        if runtime == "cluster":  # processes read files; DataFrames are written once
            data = {n: write_parquet(d, tmp / f"{n}.parquet") if isinstance(d, pd.DataFrame)
                    else d if isinstance(d, SparkSource) else str(d) for n, d in parties.items()}
        job = local_job(analysis, data, schema, protocol=protocol, partition=partition, recipients=recipients,
                        version=version, psi_mode=psi_mode, join_key=join_key, ledgers=ledgers, job_id=job_id,
                        params=params, row_bounds=row_bounds, duplicate_keys=duplicate_keys,
                        sealed=None if analyst_key is None else {ANALYST_NAME: analyst_key.public},
                        preprocessing=preprocessing, compute=compute)
        protocol = session_protocol(job.protocol, job.roles.preprocessing.source)
        # input-only owners' charges: each compute party keeps a durable barrier record
        records = {c: str(tmp / f"{c}.barrier") for c in workers} if ledgers and job.roles.input_only else {}
        inputs = {n: PartyInputs(data.get(n), None if ledgers is None or n not in ledgers else ledgers[n],
                                 records.get(n)) for n in dict.fromkeys([*names, *workers])}
        ends = list(dict.fromkeys([*workers, *names]))  # compute parties, then owners that only input
        watch = None if progress is None else _JobProgress(workers, progress)
        try:
            reports, results, comm, seconds = _run(job, protocol, inputs, runtime, timeout, tmp, workers, ends,
                                                   watch, relay)
        except BaseException:
            if records and ledgers is not None:
                _settle_owners(job, ledgers, records)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    typed = {n: r for n, r in results.items() if r is not None}
    sealed = {n: dict(r.sealed) for n, r in typed.items() if r.sealed}
    if analyst_key is not None:
        outputs = open_sealed({n: boxes[ANALYST_NAME] for n, boxes in sealed.items()}, analyst_key)
    else:
        outputs = typed[job.roles.recipients.parties[0]].outputs
    if watch is not None:
        watch.finish()
    return LocalResult(
        outputs=outputs,
        revealed=job.revealed,
        plan_text=job.plan_text,
        per_party={n: r.outputs for n, r in typed.items()},
        comm=comm,
        seconds=seconds,
        reports=reports,
        job=job,
        sealed=sealed,
    )


class _JobProgress:
    """The job's progress from every party's reports: the least advanced party's fraction (each
    party's only grows, so the least does too) and its stage, passed on when either changes."""

    def __init__(self, parties: list[str], callback: ProgressCallback) -> None:
        self.parties = {p: (0.0, "") for p in parties}
        self.callback = callback
        self.last: tuple[float, str] | None = None
        self.said: set[str] = set()  # the stages passed on at the last fraction
        self.lock = threading.Lock()

    def party(self, name: str, fraction: float, stage: str) -> None:
        with self.lock:  # held while calling back: the callback sees the reports in order
            if name not in self.parties:
                return
            self.parties[name] = (max(self.parties[name][0], min(1.0, fraction)), stage)
            f, text = min(self.parties.values(), key=lambda v: v[0])
            if self.last is not None and f <= self.last[0]:
                if not text or text in self.said:  # no news (or another party at the same point)
                    return
                f = self.last[0]
            elif not text:
                text = "starting" if self.last is None else self.last[1]
            if self.last is None or f > self.last[0]:
                self.said = set()
            self.said.add(text)
            self.last = (f, text)
            self.callback(f, text)

    def finish(self) -> None:
        """The outputs are released: the job is done (1.0) whatever the parties last reported."""
        with self.lock:
            if self.last is None or self.last[0] < 1.0:
                self.last = (1.0, "released")
                self.callback(*self.last)

    def poll(self, files: Mapping[str, Path], done: threading.Event, every: float = 0.25) -> None:
        """Read the party processes' progress files (:mod:`tessera.runtime.launcher`) until ``done``."""
        while True:
            finished = done.wait(every)
            for name, path in files.items():  # at the end: the last figures each process wrote
                try:
                    figures = json.loads(path.read_text())
                    self.party(name, float(figures["fraction"]), str(figures.get("stage", "")))
                except (OSError, ValueError, KeyError, TypeError):
                    continue  # not written yet, or being replaced
            if finished:
                return


def _run(job: PartyJob, protocol: str, inputs: Mapping[str, PartyInputs], runtime: str, timeout: float, tmp: Path,
         workers: list[str], ends: list[str], watch: _JobProgress | None = None,
         relay: Relay | None = None) -> tuple[dict[str, JobReport], dict[str, PartyResult | None],
                                              dict[str, dict[str, Any]], float]:
    """Run every endpoint of ``job``; its reports, results, communication figures and wall time."""
    results: dict[str, PartyResult | None]
    if runtime == "cluster":
        reports = _run_processes(job, protocol, inputs, timeout, tmp, watch, relay)
        seconds = max(reports[n].seconds for n in workers)
        comm = {n: r.comm for n, r in reports.items()}
        results = {n: reports[n].result if n in reports else None for n in ends}  # an owner may be gone
    else:
        res = run_threads(lambda s: run_party_job(s, job, inputs.get(s.party, PartyInputs())), workers,
                          protocol=protocol, frac_bits=job.frac_bits,
                          inputs={o: _owner_program(job, inputs[o]) for o in job.roles.input_only},
                          progress=None if watch is None else watch.party)
        results, comm, seconds = dict(res.results), res.comm, res.seconds
        reports = {n: JobReport(party=n, result=results[n], bytes_sent=int(comm[n].get("bytes_sent", 0)),
                                rounds=int(comm[n].get("rounds", 0)), comm=comm[n], seconds=seconds)
                   for n in ends}
    return reports, results, comm, seconds


def _settle_owners(job: PartyJob, ledgers: Mapping[str, LedgerRef], records: Mapping[str, str]) -> None:
    """The job failed: settle every input-only owner's charge by the compute parties' signed
    statements (:mod:`tessera.jobs.outcome`; here each compute party's key is made for the job,
    as its node's identity key would sign)."""
    keys = {c: StatementKey() for c in records}
    statements = {c: sign_abort(BarrierRecord(path), keys[c], job.job_id, c) for c, path in records.items()}
    for o in job.roles.input_only:
        if o in ledgers:
            settle_owner(ledgers[o], job.job_id, statements, {c: k.public for c, k in keys.items()})


def _owner_program(job: PartyJob, inputs: PartyInputs) -> Callable[[Channel], PartyResult]:
    return lambda channel: run_owner_job(channel, job, inputs)


def _run_processes(job: PartyJob, protocol: str, inputs: Mapping[str, PartyInputs], timeout: float,
                   root: Path, watch: _JobProgress | None = None, relay: Relay | None = None) -> dict[str, JobReport]:
    mesh = root / "mesh"
    files = {n: mesh / f"{n}.progress.json" for n in job.roles.compute}

    def configure(cfg: PartyConfig, workdir: Path) -> Path:
        mine = inputs.get(cfg.name, PartyInputs())
        data = mine.data
        if data is not None and not isinstance(data, (str, os.PathLike, SparkSource)):
            raise SessionError("party processes read their data from files or Spark; give paths, DataFrames "
                               "or SparkSources")
        if watch is not None and cfg.name in files:
            cfg = cfg.model_copy(update={"progress_path": str(files[cfg.name])})
        ref = None if data is None else spark_data(data) if isinstance(data, SparkSource) else str(data)
        launch = PartyLaunch(endpoint=cfg, job=job, data=ref, ledger=mine.ledger, barrier_record=mine.barrier_record)
        return launch.save(workdir / f"{cfg.name}.launch.json")

    mesh.mkdir()
    done = threading.Event()
    poller = None
    if watch is not None:
        poller = threading.Thread(target=watch.poll, args=(files, done), daemon=True, name="tessera-run-progress")
        poller.start()
    try:
        reports = run_mesh(job.roles.compute, protocol=protocol, entry="tessera.jobs.party", configure=configure,
                           frac_bits=job.frac_bits, timeout=timeout, workdir=mesh, relay=relay,
                           input_parties=job.roles.input_only, linked_inputs=job.partition == "vertical")
    finally:
        done.set()
        if poller is not None:
            poller.join()
    return {n: JobReport.of(r) for n, r in reports.items()}
