"""Contract rules on semi2k's preprocessing: allowed or required to be dealer-free; the roles a
job gets under a contract with or without a dealer; job hashes unchanged for jobs that do not say."""

import tempfile
from pathlib import Path

import pytest

from tessera.errors import PlanError
from tessera.governance.contract import AnalysisRule, PartySpec
from tessera.governance.job import JobSpec
from tessera.governance.policy import NodeState, check
from tessera.jobs.contract import roles_for
from tessera.net.identity import Identity
from tests.governance.conftest import NAMES, make_contract, sign_all

COLS = ["amount", "hour", "is_fraud"]


def rule(**kw):
    return AnalysisRule(name="logistic_regression", datasets=[f"tx_{n}" for n in NAMES], columns=COLS,
                        protocols=["semi2k"], recipients=["analyst-1"], max_iterations=20, **kw)


def job(**kw):
    fields = dict(analysis="logistic_regression", version="1.0", datasets=["tx_bank_a", "tx_bank_b"], columns=COLS,
                  params={"iterations": 8}, protocol="semi2k", recipients=["analyst-1"], analyst="analyst-1")
    return JobSpec(**(fields | kw))


def with_dealer(identities, contract):
    ident = Identity.create("dealer", Path(tempfile.mkdtemp(prefix="tessera-dealer-keys-")))
    identities["dealer"] = ident
    dealer = PartySpec(name="dealer", address="127.0.0.1:7100", fingerprint=ident.fingerprint,
                       public_key=ident.public_key, role="dealer")
    return contract.model_copy(update={"parties": [*contract.parties, dealer]})


def test_a_rule_can_require_dealer_free_preprocessing(identities):
    contract = sign_all(with_dealer(identities, make_contract(identities, analyses=[rule(preprocessing=["ot"])])),
                        identities)
    state = NodeState(party="bank_a", rows={"tx_bank_a": 5000})
    assert check(contract, job(preprocessing="ot"), state).allowed
    for denied in (job(), job(preprocessing="dealer")):  # unset: the contract's dealer
        d = check(contract, denied, state)
        assert not d.allowed
        assert d.reasons == ["preprocessing 'dealer' is not allowed for 'logistic_regression' (allowed: ['ot'])"]


def test_without_a_dealer_semi2k_jobs_use_ot_and_a_dealer_job_is_refused(identities):
    contract = make_contract(identities, analyses=[rule()])
    roles = roles_for(contract, job(), "bank_a")
    assert roles.preprocessing.source == "ot" and roles.endpoints == ["bank_a", "bank_b"]
    with pytest.raises(PlanError, match="names none .use preprocessing 'ot'"):
        roles_for(contract, job(preprocessing="dealer"), "bank_a")
    dealt = with_dealer(identities, contract)
    assert roles_for(dealt, job(), "bank_a").preprocessing.source == "dealer"
    assert roles_for(dealt, job(preprocessing="ot"), "bank_a").endpoints == ["bank_a", "bank_b"]
    with pytest.raises(PlanError, match="unknown protocol 'semi2k\\+ot'"):
        roles_for(contract, job(protocol="semi2k+ot"), "bank_a")


def test_a_job_that_does_not_choose_hashes_as_before():
    assert b"preprocessing" not in job().canonical_bytes()
    assert b'"preprocessing":"ot"' in job(preprocessing="ot").canonical_bytes()
    assert job().hash != job(preprocessing="ot").hash
