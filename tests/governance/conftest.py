import datetime as dt

import pytest

from tessera.data.synthetic import BANK_SCHEMA
from tessera.governance.contract import AnalysisRule, Analyst, Budget, Contract, DatasetSpec, PartySpec
from tessera.net.identity import Identity

NAMES = ["bank_a", "bank_b", "bank_c"]


@pytest.fixture
def identities(tmp_path):
    return {n: Identity.create(n, tmp_path / "keys") for n in NAMES}


def make_contract(identities, **overrides):
    now = dt.datetime.now(dt.UTC)
    fields = dict(
        contract_id="fraud-2026",
        title="Joint fraud analytics",
        not_before=now - dt.timedelta(days=1),
        not_after=now + dt.timedelta(days=365),
        parties=[PartySpec(name=n, address=f"127.0.0.1:{7000 + i}", fingerprint=identities[n].fingerprint,
                           public_key=identities[n].public_key) for i, n in enumerate(NAMES)],
        datasets=[DatasetSpec(name=f"tx_{n}", owner=n, schema=BANK_SCHEMA, max_rows=10**7) for n in NAMES],
        analyses=[
            AnalysisRule(name="logistic_regression", versions=">=1.0,<2", datasets=[f"tx_{n}" for n in NAMES],
                         columns=["amount", "merchant_risk", "hour", "is_fraud"], protocols=["rep3"],
                         recipients=["bank_a", "analyst-1"], max_iterations=20),
            AnalysisRule(name="histogram", datasets=[f"tx_{n}" for n in NAMES], columns=["amount"],
                         recipients=["analyst-1"], min_group_size=50, require_dp=True, max_epsilon=1.0),
        ],
        analysts=[Analyst(id="analyst-1", name="Fraud team")],
        budgets=[Budget(dataset=f"tx_{n}", epsilon=3.0, delta=1e-6) for n in NAMES],
    )
    fields.update(overrides)
    return Contract(**fields)


def sign_all(contract, identities):
    for ident in identities.values():
        contract = contract.signed_by(ident)
    return contract


@pytest.fixture
def signed(identities):
    return sign_all(make_contract(identities), identities)
