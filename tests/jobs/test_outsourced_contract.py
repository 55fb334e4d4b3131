"""#17.4: roles in the contract; compute parties named by the job are checked against it."""

from __future__ import annotations

import datetime as dt

import pytest

from tessera.data.synthetic import HOSPITAL_SCHEMA
from tessera.errors import PlanError
from tessera.governance.contract import AnalysisRule, Analyst, Contract, DatasetSpec, PartySpec
from tessera.governance.job import JobSpec
from tessera.jobs.contract import request_for, roles_for
from tessera.jobs.planner import plan_job

HOSPITALS = [f"h{i}" for i in range(1, 6)]
COMPUTE = ["c1", "c2", "c3"]


def contract(roles: dict[str, str]) -> Contract:
    now = dt.datetime.now(dt.UTC)
    return Contract(
        contract_id="consortium", not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=1),
        parties=[PartySpec(name=n, address=f"127.0.0.1:{9000 + i}", fingerprint="sha256:" + "0" * 64,
                           public_key=f"{i % 10}" * 64, role=r)  # type: ignore[arg-type]
                 for i, (n, r) in enumerate(roles.items())],
        datasets=[DatasetSpec(name=f"trial_{h}", owner=h, schema=HOSPITAL_SCHEMA) for h in HOSPITALS],
        analyses=[AnalysisRule(name="meta_analysis", datasets=[f"trial_{h}" for h in HOSPITALS],
                               columns=["outcome", "treatment"], recipients=["an"])],
        analysts=[Analyst(id="an")],
    )


CONSORTIUM = {**{h: "owner" for h in HOSPITALS}, **{c: "compute" for c in COMPUTE}}


def spec(**kw) -> JobSpec:
    base = dict(analysis="meta_analysis", version="1.0", datasets=[f"trial_{h}" for h in HOSPITALS],
                columns=["outcome", "treatment"], params={"outcome": "outcome", "treatment": "treatment"},
                protocol="rep3", recipients=["an"], analyst="an")
    return JobSpec(**{**base, **kw})


def test_input_only_owners_compute_on_the_contracts_compute_parties():
    roles = roles_for(contract(CONSORTIUM), spec(), "h1")
    assert roles.data_owners == HOSPITALS and roles.compute == COMPUTE and roles.input_only == HOSPITALS
    assert roles.recipients.parties == ["c1"]  # the analyst receives through a compute node
    job = plan_job(request_for(contract(CONSORTIUM), spec(), "h1", "j1"))
    assert "compute parties c1, c2, c3 run the secure stage" in job.plan_text


def test_a_job_naming_a_compute_party_not_in_the_contract_is_denied_with_the_reason():
    with pytest.raises(PlanError, match="compute party 'x9' is not a party of contract 'consortium'"):
        roles_for(contract(CONSORTIUM), spec(compute=["c1", "c2", "x9"]), "h1")


def test_a_party_whose_role_does_not_compute_is_refused_as_compute_party():
    with pytest.raises(PlanError, match="party 'h2' may not compute: its role in the contract is 'owner'"):
        roles_for(contract(CONSORTIUM), spec(compute=["c1", "c2", "h2"]), "h1")
    with pytest.raises(PlanError, match="rep3 runs between exactly three compute parties; this job has 2"):
        roles_for(contract(CONSORTIUM), spec(compute=["c1", "c2"]), "h1")
    with pytest.raises(PlanError, match="a party that receives results must compute"):
        roles_for(contract(CONSORTIUM), spec(recipients=["h1"]), "h1")


def test_roles_default_to_todays_meaning():
    every = {h: "party" for h in HOSPITALS[:3]}
    c = contract({**every, **{h: "party" for h in HOSPITALS[3:]}})
    roles = roles_for(c, spec(datasets=[f"trial_{h}" for h in HOSPITALS[:3]]), "h1")
    assert roles.compute == roles.data_owners == HOSPITALS[:3] and roles.input_only == []
    # a job without compute parties keeps the hash it always had
    assert "compute" not in spec().canonical_bytes().decode()


def test_a_compute_only_party_owns_no_data():
    with pytest.raises(ValueError, match="dataset 'trial_h1' is owned by 'h1', whose role 'compute' owns no data"):
        contract({**CONSORTIUM, "h1": "compute"})
