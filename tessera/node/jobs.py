"""What a job means at this node: its parties, its recipients, and the party program it runs.

Pure functions of the contract, the job and the node's configuration, so every node derives
the same parties and session id from the same job.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from tessera.data.schema import Schema
from tessera.errors import PlanError
from tessera.governance.contract import Contract
from tessera.governance.job import JobSpec
from tessera.governance.policy import PSI_MODE_FOR
from tessera.plan.executor import make_plan
from tessera.protocols import NEEDS_DEALER, PROTOCOLS

__all__ = ["JobPlan", "plan_job", "session_id_for", "job_id_for", "new_nonce"]


def new_nonce() -> str:
    return secrets.token_hex(16)


def session_id_for(contract_hash: str, job_hash: str, nonce: str) -> str:
    """The MPC session id: binds the contract version, the exact job and a fresh nonce."""
    return hashlib.sha256(f"tessera-session|{contract_hash}|{job_hash}|{nonce}".encode()).hexdigest()[:32]


def job_id_for(analyst: str, idempotency_key: str | None) -> str:
    """A fresh id, or one derived from the analyst and its idempotency key (same key, same job)."""
    if idempotency_key:
        return hashlib.sha256(f"{analyst}|{idempotency_key}".encode()).hexdigest()[:16]
    return secrets.token_hex(8)


@dataclass(frozen=True)
class JobPlan:
    """The parties of a job (data owners in dataset order, then the dealer if the protocol needs
    one), which party holds which dataset, who receives the outputs in the MPC, and the plan."""

    parties: list[str]
    data_parties: list[str]
    dealer: str | None
    dataset_of: dict[str, str]
    mpc_recipients: list[str]
    schema: Schema
    holders: dict[str, list[str]] | None
    plan_text: str
    revealed: list[str]
    params: dict[str, Any]
    #: fixed-point fractional bits the analysis' plan asks of the session
    frac_bits: int = 16
    #: vertical jobs: the PSI mode the contract's leakage rule allows
    psi_mode: str | None = None


def plan_job(contract: Contract, spec: JobSpec, coordinator: str) -> JobPlan:
    """Derive the job's plan or raise PlanError naming why it cannot run."""
    if spec.protocol not in PROTOCOLS:
        raise PlanError(f"unknown protocol {spec.protocol!r}; choose one of {sorted(PROTOCOLS)}")
    dataset_of: dict[str, str] = {}
    specs = []
    for d in spec.datasets:
        ds = contract.dataset(d)
        if ds is None:
            raise PlanError(f"dataset {d!r} is not in the contract")
        if ds.owner in dataset_of:
            raise PlanError(f"party {ds.owner!r} holds two of the job's datasets; a job uses one dataset per party")
        dataset_of[ds.owner] = d
        specs.append(ds)
    data_parties = list(dataset_of)
    dealer = None
    if NEEDS_DEALER[spec.protocol]:
        dealers = [p.name for p in contract.parties if p.role == "dealer"]
        if not dealers:
            raise PlanError(f"protocol {spec.protocol} needs a dealer, and the contract names none")
        dealer = dealers[0]
    elif spec.protocol == "rep3" and len(data_parties) != 3:
        raise PlanError(f"rep3 runs between exactly three parties; this job has {len(data_parties)}")
    if coordinator not in data_parties:
        raise PlanError(f"submit the job to the node of one of its data owners ({', '.join(data_parties)}), "
                        f"not {coordinator!r}")
    names = {p.name for p in contract.parties}
    party_recipients = [r for r in spec.recipients if r in names]
    if any(r not in data_parties for r in party_recipients):
        raise PlanError("a party that receives results must take part in the job")
    analysts = [r for r in spec.recipients if r not in names]
    mpc_recipients = party_recipients + ([coordinator] if analysts and coordinator not in party_recipients else [])
    params = dict(spec.params)
    if spec.dp is not None:
        for key, value in (("epsilon", spec.dp.epsilon), ("delta", spec.dp.delta)):
            if key in params and params[key] != value:
                raise PlanError(f"params.{key} ({params[key]}) differs from the job's dp.{key} ({value})")
        params["epsilon"] = spec.dp.epsilon
        params["delta"] = spec.dp.delta  # 0: pure epsilon-DP; the ledger is charged exactly this
    holders = None
    if spec.partition == "horizontal":
        schema = specs[0].schema_
        if any(s.schema_ != schema for s in specs[1:]):
            raise PlanError("a horizontal job needs datasets with the same schema")
    else:
        if spec.join_key is None:
            raise PlanError("a vertical job needs a join_key")
        if spec.dp is not None:
            raise PlanError("differentially private vertical jobs are not supported yet")
        cols: dict[str, Any] = {}
        holders = {}
        for owner, ds in zip(data_parties, specs):
            for c in ds.schema_.columns:
                if c.name == spec.join_key:
                    continue
                cols.setdefault(c.name, c)
                holders.setdefault(c.name, []).append(owner)
        schema = Schema(columns=tuple(cols.values()))
    psi_mode = None
    if spec.partition == "vertical":
        psi_mode = PSI_MODE_FOR.get(contract.leakage.get("psi_reveal", "size"))
        if psi_mode is None:
            raise PlanError(f"the contract's leakage rule psi_reveal={contract.leakage.get('psi_reveal')!r} allows "
                            "no PSI mode for a vertical job ('intersection' or 'size')")
    _, _, plan = make_plan(spec.analysis, spec.version, params, schema, spec.partition, data_parties, mpc_recipients,
                           psi_mode=psi_mode)
    undeclared = [c for c in plan.columns if c not in spec.columns]
    if undeclared:
        raise PlanError(f"the analysis reads columns {undeclared} that the job does not declare in 'columns'")
    if holders is not None:
        holders = {c: holders[c] for c in plan.columns if c in holders}
    return JobPlan(
        parties=data_parties + ([dealer] if dealer else []),
        data_parties=data_parties,
        dealer=dealer,
        dataset_of=dataset_of,
        mpc_recipients=mpc_recipients,
        schema=schema,
        holders=holders,
        plan_text=plan.explain(),
        revealed=plan.reveals(),
        params=params,
        frac_bits=plan.frac_bits,
        psi_mode=psi_mode,
    )
