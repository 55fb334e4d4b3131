"""The node API's request and response shapes, as pydantic models for its OpenAPI description
(``/openapi.json``, ``/docs``, ``/redoc``).

They document; they do not read. The node reads request bodies itself (bounded, after the
token, :func:`tessera.node.api.read_json`) and validates a job with
:class:`~tessera.governance.job.JobSpec`; responses are the node's own JSON
(:func:`tessera.node.store.view`). A test checks that the views the node sends validate against
these models, so the description cannot drift from what is sent.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tessera.node.states import STATES

__all__ = ["ErrorBody", "Health", "NodeInfo", "JobView", "JobList", "JobResult", "SealedResult", "Budgets",
           "AuditStatus", "ReasonBody", "Envelope", "PartyInfo", "Progress", "Verdict", "Event", "DatasetBudget",
           "STATE_DESCRIPTION"]

STATE_DESCRIPTION = (
    "one of " + ", ".join(STATES) + ". Final: released, denied, failed, aborted, cancelled (withdrawn before it ran; "
    "a running job that is cancelled is aborted at every party, with the reason), contributed (at a data owner "
    "that only inputs: its shares were sent; it moves to the compute parties' outcome if told).")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class ErrorBody(BaseModel):
    """Every error: one line naming the problem (and what to do)."""

    detail: str = Field(description="the problem, in one line")


class Health(_Open):
    status: Literal["ok", "degraded", "stopping"]
    node: str
    problems: list[str] = Field(description="what is wrong (a damaged store or audit entry, a store refusing writes)")
    contract: str = Field(description="the contract's hash")
    contract_in_force: bool
    jobs_running: int
    time: str = Field(description="the node's clock, ISO 8601 with its UTC offset")


class PartyInfo(_Open):
    name: str
    role: str
    api: str | None = None


class NodeInfo(_Open):
    name: str
    role: str
    contract_id: str
    contract_hash: str
    fingerprint: str = Field(description="the node's MPC identity (Ed25519) fingerprint in the contract")
    contract_problems: list[str]
    parties: list[PartyInfo]
    datasets: list[str] = Field(description="this node's own datasets")
    approval: Literal["auto", "manual"]
    viewer: dict[str, str] = Field(description='who asks: {"kind": "admin" | "analyst", "id": ...}')


class Verdict(_Open):
    state: str
    reasons: list[str] = []


class Event(_Open):
    ts: str = Field(description="ISO 8601 with the UTC offset")
    state: str
    detail: str


class Progress(_Open):
    phase: str = Field(description="the state the job is in")
    fraction: float = Field(ge=0, le=1, description="how far the job is: never decreasing; 1.0 only once released "
                                                    "(a job that ends otherwise keeps the fraction it had reached)")
    detail: str = ""
    stage: str | None = Field(None, description="while running: the party's stage (e.g. 'Newton iteration 3 of 8')")
    rounds: int | None = Field(None, description="while running: communication rounds so far")
    bytes_sent: int | None = None
    seconds: float | None = None


class JobView(_Open):
    """A job as the node shows it (never its result values)."""

    id: str = Field(description="16 lowercase hex digits")
    state: str = Field(description=STATE_DESCRIPTION)
    analysis: str
    version: str
    protocol: str | None
    datasets: list[str]
    columns: list[str]
    params: dict[str, Any]
    partition: str
    join_key: str | None
    recipients: list[str]
    dp: dict[str, float] | None
    analyst: str | None
    idempotency_key: str | None
    coordinator: str
    parties: list[str]
    created: str = Field(description="ISO 8601 with the UTC offset")
    updated: str = Field(description="ISO 8601 with the UTC offset")
    reasons: list[str] = Field(description="why it was denied, failed, aborted or cancelled")
    decisions: dict[str, Verdict]
    outcomes: dict[str, Verdict]
    events: list[Event]
    progress: Progress
    plan: str | None = Field(description="what each stage computes and what is released")
    revealed: list[str]
    comm: dict[str, int] | None
    seconds: float | None
    session_id: str | None
    has_result: bool = Field(description="this node holds the released outputs (for its recipients)")
    sealed_shares: list[str]


class JobList(BaseModel):
    jobs: list[JobView] = Field(description="newest first; an analyst sees the jobs it submitted or receives")


class JobResult(_Open):
    job_id: str
    outputs: dict[str, Any] = Field(description="the released outputs (arrays as {'__ndarray__': ..., 'dtype', "
                                                "'shape'})")
    revealed: list[str]


class SealedResult(_Open):
    job_id: str
    sealed: dict[str, str] = Field(description="party -> its sealed box of output shares (only the analyst's key "
                                               "opens them)")
    parties: list[str]
    missing: list[str] = Field(description="parties whose box has not reached this node yet")
    revealed: list[str]


class DatasetBudget(_Open):
    dataset: str
    owner: str
    epsilon_total: float
    epsilon_spent: float
    epsilon_left: float
    delta_total: float
    delta_spent: float


class Budgets(BaseModel):
    datasets: list[DatasetBudget]


class AuditStatus(_Open):
    verified: bool
    entries: int
    head: str | None
    first_bad: int | None
    problems: list[str]


class ReasonBody(BaseModel):
    """An optional body: why (shown to the analyst and the other parties, and audited)."""

    reason: str = Field("", max_length=1000)


class Envelope(_Open):
    """A signed peer message (see docs/node-api.md, Authentication)."""

    from_: str = Field(alias="from")
    to: str
    kind: str
    ts: float
    nonce: str
    contract: str
    body: dict[str, Any]
    sig: str
