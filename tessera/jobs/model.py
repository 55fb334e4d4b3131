"""The typed job: what every party of a job runs (:class:`PartyJob`), what one party brings to it
(:class:`PartyInputs`), what its process is handed (:class:`PartyLaunch`), and what it answers
(:class:`PartyResult` inside a :class:`JobReport`).

A :class:`PartyJob` is built by the planner (:func:`tessera.jobs.planner.plan_job`) once at each
node that decides on the job (and once in ``run_local``); it is the same at every party, is
stored with the job, and is what the party process runs. Versioned (``format_version``); no
pickle: plain JSON, arrays as :mod:`tessera.runtime.jsonable` records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tessera.analytics.base import Plan
from tessera.data.schema import Schema
from tessera.data.sources import Source
from tessera.errors import TesseraError
from tessera.execution.psi import PsiMode
from tessera.execution.steps import plan_from_dict
from tessera.runtime.config import PartyConfig
from tessera.runtime.launcher import Failure, ProcessReport

__all__ = ["FORMAT_VERSION", "Preprocessing", "Recipients", "Roles", "PsiStep", "DpCharge", "RowBounds", "PartyJob",
           "LedgerRef", "SqlData", "PartyInputs", "PartyLaunch", "PartyResult", "JobReport"]

FORMAT_VERSION: Literal[1] = 1
Partition = Literal["horizontal", "vertical"]


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Preprocessing(_Record):
    """Where the session's correlated randomness comes from: a ``dealer`` endpoint (semi2k),
    ``ot`` (semi2k: the compute parties make it themselves by oblivious transfer, no third
    machine), or ``none`` (rep3 needs none)."""

    source: Literal["dealer", "none", "ot"]
    #: the dealer endpoint's party name (``source == "dealer"``)
    party: str | None = None

    @model_validator(mode="after")
    def _named(self) -> Preprocessing:
        if (self.source == "dealer") != (self.party is not None):
            raise ValueError("a dealer source names its party; no other source does")
        return self


class Recipients(_Record):
    """Who receives the outputs: ``parties`` receive them in the MPC (a node receiving on behalf
    of its analysts among them); ``analysts`` receive them from their node.

    ``sealed`` (analyst id -> X25519 public key, hex, from the signed contract): the outputs go to
    these analysts alone, sealed. No party opens them: each party seals its own output shares to
    every key (:mod:`tessera.jobs.sealed`) and only the analysts' clients reconstruct. Then the
    analysts are the only recipients (``parties`` is empty)."""

    parties: list[str] = []
    analysts: list[str] = []
    sealed: dict[str, str] = {}

    @model_validator(mode="after")
    def _someone(self) -> Recipients:
        if self.sealed:
            if self.parties or set(self.sealed) != set(self.analysts):
                raise ValueError("sealed outputs go to every analyst recipient and to no party")
        elif not self.parties:
            raise ValueError("a job needs a party recipient unless its outputs are sealed to its analysts")
        return self


class Roles(_Record):
    """Who does what in a job.

    ``data_owners`` input rows (any number, in input order); ``compute`` run the secure
    computation (in session order). A party may hold both roles; a data owner that does not
    compute (:attr:`input_only`) runs its local stage, secret-shares what the secure stage needs
    of it to the compute parties and leaves (:mod:`tessera.mpc.contrib`). ``preprocessing`` says
    where correlated randomness comes from; ``recipients`` who gets the outputs (compute parties:
    an input-only owner is gone before any output); ``datasets`` which dataset each data owner
    inputs (names of the contract, or of the caller's ledgers).
    """

    data_owners: list[str] = Field(min_length=1)
    compute: list[str] = Field(min_length=1)
    preprocessing: Preprocessing
    recipients: Recipients
    datasets: dict[str, str] = {}

    @model_validator(mode="after")
    def _consistent(self) -> Roles:
        if len(set(self.compute)) != len(self.compute):
            raise ValueError(f"compute parties must be distinct: {self.compute}")
        if len(set(self.data_owners)) != len(self.data_owners):
            raise ValueError(f"data owners must be distinct: {self.data_owners}")
        if self.preprocessing.party is not None and self.preprocessing.party in self.compute + self.data_owners:
            raise ValueError("the dealer can be neither a compute party nor a data owner")
        if any(r not in self.compute for r in self.recipients.parties):
            raise ValueError("a party that receives results must compute (an input-only data owner is gone by then)")
        return self

    @property
    def endpoints(self) -> list[str]:
        """Every process of the session: the compute parties, then the dealer if there is one."""
        return self.compute + ([self.preprocessing.party] if self.preprocessing.party else [])

    @property
    def participants(self) -> list[str]:
        """Every node that takes part: the session's endpoints, then the input-only owners (they
        decide on the job for their own data, send their shares and leave)."""
        return self.endpoints + self.input_only

    @property
    def input_only(self) -> list[str]:
        """The data owners that do not compute (in input order)."""
        return [o for o in self.data_owners if o not in self.compute]

    def linked(self, me: str, vertical: bool = False) -> list[str]:
        """The session's processes ``me`` links to, itself included, in the mesh's order: an
        input-only owner to the compute parties (and, in a vertical job, to the other input-only
        owners, for their PSI); a compute party to every participant; the dealer to the session's
        endpoints only."""
        if me in self.input_only:
            return [*self.compute, *(self.input_only if vertical else [me])]
        return self.participants if me in self.compute else self.endpoints

    @property
    def compute_only(self) -> list[str]:
        """The compute parties that own no data of the job."""
        return [c for c in self.compute if c not in self.data_owners]


class PsiStep(_Record):
    """Vertical jobs over rows not yet aligned: the PSI on ``join_key`` that comes first."""

    mode: PsiMode
    join_key: str
    #: the data owners whose contract datasets allow duplicated join keys (``duplicate_keys =
    #: "first"``: the first row of each key is used); every other owner refuses them
    keep_first: list[str] = []


class DpCharge(_Record):
    """What the job costs each data owner's privacy budget (what the analysis will use, its
    defaults included)."""

    epsilon: float = Field(gt=0)
    delta: float = Field(0.0, ge=0, lt=1)


class RowBounds(_Record):
    """The contract's bounds on the row count of one data owner's dataset, checked by the party at
    its checked load (before the PSI of a vertical job: the bounds are the dataset's, not the
    intersection's). A dataset outside them is refused naming its count, never a value."""

    dataset: str = ""
    min_rows: int = Field(0, ge=0)
    max_rows: int | None = Field(None, gt=0)


class PartyJob(_Record):
    """What every party of one job runs (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    format_version: Literal[1] = FORMAT_VERSION
    job_id: str
    analysis: str
    version: str
    #: the MPC protocol (``semi2k``, ``rep3``)
    protocol: str
    #: the parameters, validated against the analysis's model and dumped
    params: dict[str, Any]
    schema_: Schema = Field(alias="schema")
    partition: Partition
    roles: Roles
    #: column -> the data owners that hold it (horizontal: every owner holds every column)
    holders: dict[str, list[str]]
    psi: PsiStep | None = None
    #: fixed-point fractional bits of the session
    frac_bits: int = 16
    dp: DpCharge | None = None
    #: data owner -> the contract's bounds on its dataset's row count (none: unbounded)
    row_bounds: dict[str, RowBounds] = {}
    #: the analysis's plan (:func:`tessera.execution.steps.plan_to_dict`): stages, encodings, release
    plan: dict[str, Any]
    plan_text: str
    revealed: list[str]

    def analysis_plan(self) -> Plan:
        return plan_from_dict(self.plan)

    def columns_of(self, party: str) -> list[str]:
        """The job's columns ``party`` holds, in plan order."""
        return [c for c in self.plan["columns"] if party in self.holders.get(c, [])]

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True)

    @classmethod
    def from_json(cls, text: str) -> PartyJob:
        return cls.model_validate_json(text)


class LedgerRef(_Record):
    """A privacy-budget ledger (SQLite file) and the dataset of it this party's input is charged to."""

    path: str
    dataset: str


class SqlData(_Record):
    """A DuckDB query over named files (a node's SQL data source)."""

    query: str
    tables: dict[str, str] = {}


class SparkData(_Record):
    """A file or table in a Spark cluster (a node's ``engine = "spark"`` dataset source): the
    party's checks and reductions run in the cluster (:class:`tessera.data.sources.SparkSource`)."""

    path: str | None = None
    table: str | None = None
    master: str | None = None
    format: str = "parquet"
    conf: dict[str, str] = {}
    cache: bool = False


@dataclass(frozen=True)
class PartyInputs:
    """What one party brings to a job, beside the job itself: its rows and its ledger. Local to the
    party (never sent to the others)."""

    #: a DataFrame, CSV or Parquet path, or SQL source (:data:`tessera.data.sources.Source`)
    data: Source | None = None
    ledger: LedgerRef | None = None
    #: a compute party's durable output-barrier record (:class:`tessera.jobs.outcome.BarrierRecord`)
    barrier_record: str | None = None


class PartyLaunch(_Record):
    """The file a job's party process reads (``python -m tessera.jobs.party LAUNCH.json``): the
    session endpoint config, the job (None at the dealer) and this party's inputs."""

    format_version: Literal[1] = FORMAT_VERSION
    endpoint: PartyConfig
    job: PartyJob | None = None
    data: str | SqlData | SparkData | None = None
    ledger: LedgerRef | None = None
    #: this compute party's durable output-barrier record (jobs with input-only data owners)
    barrier_record: str | None = None

    def save(self, path: str | Path) -> Path:
        Path(path).write_text(self.model_dump_json(by_alias=True, indent=2))
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> PartyLaunch:
        return cls.model_validate_json(Path(path).read_text())


class PartyResult(BaseModel):
    """What one party received: the outputs revealed to it (empty if it is no recipient), what the
    job revealed to whom, the session's transcript hash, its budget left after the job, and, for a
    job sealed to its analysts, its sealed output shares."""

    model_config = ConfigDict(extra="forbid")

    outputs: dict[str, Any] = {}
    revealed: list[str] = []
    transcript: str = ""
    #: (epsilon, delta) left in this party's ledger for its dataset, for a budgeted job
    budget_left: tuple[float, float] | None = None
    #: a job sealed to its analysts: analyst id -> this party's sealed output shares (an opaque
    #: box only that analyst's key opens, :mod:`tessera.jobs.sealed`); ``outputs`` then hold only
    #: what every party learns anyway (such as a row count) and nobody stores them
    sealed: dict[str, str] = {}


class JobReport(BaseModel):
    """One party's answer to a job: its :class:`PartyResult`, communication figures and wall time,
    or the :class:`~tessera.runtime.launcher.Failure` with its classification (``kind``)."""

    model_config = ConfigDict(extra="forbid")

    party: str
    result: PartyResult | None = None
    bytes_sent: int = 0
    rounds: int = 0
    comm: dict[str, Any] = {}
    seconds: float = 0.0
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.result is not None

    @classmethod
    def of(cls, report: ProcessReport) -> JobReport:
        """The typed reading of a job endpoint's process report (the dealer's result is no
        :class:`PartyResult`: it has none)."""
        result = None
        if report.ok and isinstance(report.result, dict) and "outputs" in report.result:
            result = PartyResult.model_validate(report.result)
        return cls(party=report.party, result=result, bytes_sent=report.bytes_sent, rounds=report.rounds,
                   comm=report.comm, seconds=report.seconds, failure=report.failure)

    def error(self) -> TesseraError:
        if self.failure is None:
            return TesseraError(f"party {self.party!r} returned no result")
        return self.failure.to_error(self.party)
