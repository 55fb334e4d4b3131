"""What a job means under a contract: its roles, its schema and holders, its PSI mode, what it is
charged. Pure functions of the contract, the job and its coordinator, so every node derives the
same :class:`~tessera.jobs.planner.JobRequest` (and so the same typed job) from the same job.
"""

from __future__ import annotations

from typing import Any

from tessera.data.schema import Schema
from tessera.errors import PlanError
from tessera.execution.psi import mode_for_leakage
from tessera.governance.contract import Contract, DatasetSpec
from tessera.governance.job import JobSpec
from tessera.jobs.model import Preprocessing, Recipients, Roles, RowBounds
from tessera.jobs.planner import JobRequest
from tessera.protocols import JOB_PROTOCOLS, NEEDS_DEALER

__all__ = ["roles_for", "request_for"]


def _datasets(contract: Contract, spec: JobSpec) -> list[tuple[str, DatasetSpec]]:
    out: list[tuple[str, DatasetSpec]] = []
    for d in spec.datasets:
        ds = contract.dataset(d)
        if ds is None:
            raise PlanError(f"dataset {d!r} is not in the contract")
        if ds.owner in {o for o, _ in out}:
            raise PlanError(f"party {ds.owner!r} holds two of the job's datasets; a job uses one dataset per party")
        out.append((ds.owner, ds))
    return out


def _compute_parties(contract: Contract, spec: JobSpec, owners: list[str]) -> list[str]:
    """The job's compute parties (see :attr:`JobSpec.compute`), each checked against the contract."""
    if spec.compute is not None:
        compute = list(spec.compute)
    elif all(contract.computes(o) for o in owners):
        compute = list(owners)
    else:
        compute = [p.name for p in contract.parties if p.role in ("compute", "both")]
    if len(set(compute)) != len(compute) or not compute:
        raise PlanError(f"the job's compute parties must be distinct and at least one: {compute}")
    names = {p.name for p in contract.parties}
    for c in compute:
        if c not in names:
            raise PlanError(f"compute party {c!r} is not a party of contract {contract.contract_id!r}; a job computes "
                            "only on the contract's parties")
        if not contract.computes(c):
            raise PlanError(f"party {c!r} may not compute: its role in the contract is "
                            f"{contract.party(c).role!r}")
    return compute


def roles_for(contract: Contract, spec: JobSpec, coordinator: str) -> Roles:
    """The job's roles: data owners in dataset order, the compute parties (every data owner, or
    those the job or the contract's roles name, :func:`_compute_parties`), the dealer the protocol
    needs, and the recipients. Analysts receive through the coordinator, unless every recipient is
    an analyst with a box key in the contract: then the outputs are sealed to those keys and no
    node sees them (:mod:`tessera.jobs.sealed`). PlanError if none fit."""
    if spec.protocol not in JOB_PROTOCOLS:
        raise PlanError(f"unknown protocol {spec.protocol!r}; choose one of {sorted(JOB_PROTOCOLS)}")
    owners = [o for o, _ in _datasets(contract, spec)]
    compute = _compute_parties(contract, spec, owners)
    pre = Preprocessing(source="none")
    source = contract.preprocessing_for(spec.protocol, spec.preprocessing)
    if source == "ot":
        pre = Preprocessing(source="ot")  # the compute parties make it: no dealer endpoint
    elif NEEDS_DEALER[spec.protocol]:
        dealers = [p.name for p in contract.parties if p.role == "dealer"]
        if not dealers:
            raise PlanError(f"protocol {spec.protocol} with preprocessing 'dealer' needs a dealer, and the contract "
                            "names none (use preprocessing 'ot')")
        pre = Preprocessing(source="dealer", party=dealers[0])
    elif spec.protocol == "rep3" and len(compute) != 3:
        raise PlanError(f"rep3 runs between exactly three compute parties; this job has {len(compute)}")
    if coordinator not in owners + compute:
        raise PlanError(f"submit the job to the node of one of its data owners or compute parties "
                        f"({', '.join(dict.fromkeys(owners + compute))}), not {coordinator!r}")
    names = {p.name for p in contract.parties}
    party_recipients = [r for r in spec.recipients if r in names]
    if any(r not in compute for r in party_recipients):
        raise PlanError("a party that receives results must compute in the job (a data owner that only inputs is "
                        "gone before any output)")
    analysts = [r for r in spec.recipients if r not in names]
    keys = {a: entry.box_key for a in analysts if (entry := contract.analyst(a)) is not None and entry.box_key}
    if analysts and not party_recipients and len(keys) == len(analysts):
        recipients = Recipients(parties=[], analysts=analysts, sealed=keys)  # no node sees the outputs
    else:
        via = coordinator if coordinator in compute else compute[0]  # analysts receive through a compute node
        receivers = party_recipients + ([via] if analysts and via not in party_recipients else [])
        recipients = Recipients(parties=receivers, analysts=analysts)
    return Roles(data_owners=owners, compute=compute, preprocessing=pre,
                 recipients=recipients,
                 datasets={o: ds.name for o, ds in _datasets(contract, spec)})


def request_for(contract: Contract, spec: JobSpec, coordinator: str, job_id: str) -> JobRequest:
    """The planner's request for ``spec`` under ``contract`` (PlanError if it cannot run)."""
    roles = roles_for(contract, spec, coordinator)
    specs = [ds for _, ds in _datasets(contract, spec)]
    params: dict[str, Any] = dict(spec.params)
    if spec.dp is not None:
        for key, value in (("epsilon", spec.dp.epsilon), ("delta", spec.dp.delta)):
            if key in params and params[key] != value:
                raise PlanError(f"params.{key} ({params[key]}) differs from the job's dp.{key} ({value})")
        params["epsilon"] = spec.dp.epsilon
        params["delta"] = spec.dp.delta  # 0: pure epsilon-DP; the ledger is charged exactly this
    holders: dict[str, list[str]] | None = None
    psi: str | None = None
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
        for owner, ds in zip(roles.data_owners, specs):
            for c in ds.schema_.columns:
                if c.name == spec.join_key:
                    continue
                cols.setdefault(c.name, c)
                holders.setdefault(c.name, []).append(owner)
        schema = Schema(columns=tuple(cols.values()))
        reveal = contract.leakage.get("psi_reveal", "size")
        mode = mode_for_leakage(reveal)
        if mode is None:
            raise PlanError(f"the contract's leakage rule psi_reveal={reveal!r} allows no PSI mode for a vertical "
                            "job ('intersection' or 'size')")
        psi = mode
    bounds = {owner: RowBounds(dataset=ds.name, min_rows=ds.min_rows, max_rows=ds.max_rows)
              for owner, ds in zip(roles.data_owners, specs)}
    return JobRequest(job_id=job_id, analysis=spec.analysis, version=spec.version, params=params, schema=schema,
                      partition=spec.partition, protocol=spec.protocol, roles=roles, holders=holders, psi_mode=psi,
                      join_key=spec.join_key, charged=spec.dp is not None, declared_columns=list(spec.columns),
                      row_bounds=bounds,
                      keep_first=[o for o, ds in zip(roles.data_owners, specs) if ds.duplicate_keys == "first"])
