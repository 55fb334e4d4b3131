"""``run_local``: run any analysis over several parties' data on this machine.

Each party is a separate OS process talking mutual TLS (``runtime="cluster"``, the default) or a
thread (``runtime="threads"``, for quick tests and notebooks). The job is planned once, here
(:func:`tessera.jobs.planner.plan_job`); every party runs the same typed job. Party data given as
pandas DataFrames are handed to threads in memory, and written to Parquet files for processes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import pandas as pd

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
    Preprocessing,
    Recipients,
    Roles,
    RowBounds,
)
from tessera.jobs.party import run_party_job, spark_data
from tessera.jobs.planner import JobRequest, plan_job
from tessera.jobs.sealed import BoxKey, open_sealed
from tessera.protocols import NEEDS_DEALER
from tessera.runtime.cluster import run_mesh
from tessera.runtime.config import PartyConfig
from tessera.runtime.inprocess import DEALER_NAME, party_names, run_threads

__all__ = ["run_local", "LocalResult", "local_job"]

PartyData: TypeAlias = pd.DataFrame | str | os.PathLike[str] | SparkSource

#: the analyst of a ``run_local`` job sealed to an analyst key
ANALYST_NAME = "analyst"


@dataclass
class LocalResult:
    """The outputs a recipient received, what was revealed to whom, and run figures."""

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

    def __getitem__(self, key: str) -> Any:
        return self.outputs[key]


def local_job(
    analysis: str, parties: Mapping[str, Source], schema: Schema, *, protocol: str, partition: str = "horizontal",
    recipients: list[str] | None = None, version: str | None = None, psi_mode: str | None = None,
    join_key: str | None = None, ledgers: Mapping[str, LedgerRef] | None = None, job_id: str | None = None,
    params: Mapping[str, Any] | None = None, row_bounds: Mapping[str, RowBounds] | None = None,
    duplicate_keys: str = "refuse", sealed: Mapping[str, str] | None = None,
) -> PartyJob:
    """The typed job ``run_local`` runs (planned here, once); with ``sealed`` (analyst -> X25519
    public key, hex) its outputs are sealed to those analysts and opened to no party."""
    names = party_names(list(parties))
    if sealed:
        if recipients:
            raise PlanError("a job sealed to analysts has no party recipients; leave out recipients")
        to = Recipients(parties=[], analysts=list(sealed), sealed=dict(sealed))
    else:
        to = Recipients(parties=list(recipients or names))
    roles = Roles(data_owners=names, compute=names,
                  preprocessing=Preprocessing(source="dealer", party=DEALER_NAME) if NEEDS_DEALER.get(protocol)
                  else Preprocessing(source="none"),
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
    """
    if duplicate_keys not in ("refuse", "first"):
        raise PlanError(f"duplicate_keys is 'refuse' or 'first', not {duplicate_keys!r}")
    names = list(parties)
    protocol = protocol or ("rep3" if len(names) == 3 else "semi2k")
    if runtime not in ("cluster", "threads"):
        raise SessionError(f"unknown runtime {runtime!r}; use 'cluster' or 'threads'")
    if ledgers is not None and set(ledgers) != set(names):
        raise PlanError(f"give a ledger for every party ({', '.join(names)}), not {sorted(ledgers)}")
    tmp = Path(tempfile.mkdtemp(prefix="tessera-run-"))
    try:
        data: dict[str, Source] = dict(parties)
        if runtime == "cluster":  # processes read files; DataFrames are written once
            data = {n: write_parquet(d, tmp / f"{n}.parquet") if isinstance(d, pd.DataFrame)
                    else d if isinstance(d, SparkSource) else str(d) for n, d in parties.items()}
        job = local_job(analysis, data, schema, protocol=protocol, partition=partition, recipients=recipients,
                        version=version, psi_mode=psi_mode, join_key=join_key, ledgers=ledgers, job_id=job_id,
                        params=params, row_bounds=row_bounds, duplicate_keys=duplicate_keys,
                        sealed=None if analyst_key is None else {ANALYST_NAME: analyst_key.public})
        inputs = {n: PartyInputs(data[n], None if ledgers is None else ledgers[n]) for n in names}
        if runtime == "cluster":
            reports = _run_processes(job, protocol, inputs, timeout, tmp)
            seconds = max(reports[n].seconds for n in names)
            comm = {n: r.comm for n, r in reports.items()}
            results = {n: reports[n].result for n in names}
        else:
            res = run_threads(lambda s: run_party_job(s, job, inputs[s.party]), names, protocol=protocol,
                              frac_bits=job.frac_bits)
            results, comm, seconds = dict(res.results), res.comm, res.seconds
            reports = {n: JobReport(party=n, result=results[n], bytes_sent=int(comm[n].get("bytes_sent", 0)),
                                    rounds=int(comm[n].get("rounds", 0)), comm=comm[n], seconds=seconds)
                       for n in names}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    typed = {n: r for n, r in results.items() if r is not None}
    sealed = {n: dict(r.sealed) for n, r in typed.items() if r.sealed}
    if analyst_key is not None:
        outputs = open_sealed({n: boxes[ANALYST_NAME] for n, boxes in sealed.items()}, analyst_key)
    else:
        outputs = typed[job.roles.recipients.parties[0]].outputs
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


def _run_processes(job: PartyJob, protocol: str, inputs: Mapping[str, PartyInputs], timeout: float,
                   root: Path) -> dict[str, JobReport]:
    def configure(cfg: PartyConfig, workdir: Path) -> Path:
        mine = inputs.get(cfg.name, PartyInputs())
        data = mine.data
        if data is not None and not isinstance(data, (str, os.PathLike, SparkSource)):
            raise SessionError("party processes read their data from files or Spark; give paths, DataFrames "
                               "or SparkSources")
        ref = None if data is None else spark_data(data) if isinstance(data, SparkSource) else str(data)
        launch = PartyLaunch(endpoint=cfg, job=job, data=ref, ledger=mine.ledger)
        return launch.save(workdir / f"{cfg.name}.launch.json")

    (root / "mesh").mkdir()
    reports = run_mesh(job.roles.compute, protocol=protocol, entry="tessera.jobs.party", configure=configure,
                       frac_bits=job.frac_bits, timeout=timeout, workdir=root / "mesh")
    return {n: JobReport.of(r) for n, r in reports.items()}
