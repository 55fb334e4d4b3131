from tessera.governance.job import DPRequest, JobSpec
from tessera.governance.policy import NodeState, check
from tests.governance.conftest import make_contract, sign_all


def job(**kw):
    fields = dict(analysis="logistic_regression", version="1.0", datasets=["tx_bank_a", "tx_bank_b"],
                  columns=["amount", "hour", "is_fraud"], params={"iterations": 8}, protocol="rep3",
                  recipients=["analyst-1"], analyst="analyst-1")
    fields.update(kw)
    return JobSpec(**fields)


def test_an_allowed_job_is_allowed(signed):
    d = check(signed, job(), NodeState(party="bank_a", rows={"tx_bank_a": 5000}))
    assert d.allowed and d.reasons == []


def test_a_job_outside_the_contract_is_denied_with_every_reason(signed):
    bad = job(columns=["amount", "account_age_days"], params={"iterations": 99}, protocol="semi2k",
              recipients=["bank_c"])
    d = check(signed, bad, NodeState(party="bank_a"))
    assert not d.allowed
    text = " | ".join(d.reasons)
    assert "columns ['account_age_days'] are not allowed" in text
    assert "iterations=99 exceeds the maximum of 20" in text
    assert "protocol 'semi2k' is not allowed" in text
    assert "recipients ['bank_c'] may not receive" in text
    assert len(d.reasons) == 4


def test_group_size_dp_and_budget(signed):
    state = NodeState(party="bank_a", remaining_budget=lambda d: 0.3)
    small = JobSpec(analysis="histogram", version="1.0", datasets=["tx_bank_a"], columns=["amount"],
                    params={"min_bin_count": 5}, recipients=["analyst-1"], analyst="analyst-1", protocol="rep3",
                    dp=DPRequest(epsilon=0.5))
    d = check(signed, small, state)
    assert any("below the contract's minimum group size 50" in r for r in d.reasons)
    assert any("budget exceeded for dataset 'tx_bank_a'" in r for r in d.reasons)
    no_dp = small.model_copy(update={"dp": None, "params": {"min_bin_count": 60}})
    assert check(signed, no_dp, state).reasons == ["'histogram' must use differential privacy under this contract"]
    greedy = small.model_copy(update={"dp": DPRequest(epsilon=2.0), "params": {"min_bin_count": 60}})
    reasons = check(signed, greedy, NodeState(party="bank_a")).reasons
    assert any("exceeds the per-job maximum 1.0" in r for r in reasons)


def test_unknown_analysis_version_analyst_and_unsigned_contract(identities, signed):
    assert check(signed, job(analysis="kmeans"), NodeState("bank_a")).reasons == [
        "analysis 'kmeans' is not allowed by the contract"]
    assert "outside the allowed >=1.0,<2" in check(signed, job(version="2.1"), NodeState("bank_a")).reasons[0]
    assert any("analyst 'mallory'" in r for r in check(signed, job(analyst="mallory"), NodeState("bank_a")).reasons)
    unsigned = make_contract(identities)
    assert any(r.startswith("contract: missing signature") for r in check(unsigned, job(), NodeState("bank_a")).reasons)


def test_each_node_decides_from_its_own_contract(identities, signed):
    # bank_b's copy does not allow logistic regression: it refuses, whatever bank_a decided
    stricter = sign_all(make_contract(identities, analyses=make_contract(identities).analyses[1:]), identities)
    assert check(signed, job(), NodeState("bank_a")).allowed
    assert not check(stricter, job(), NodeState("bank_b")).allowed


def test_a_limit_is_never_skipped_for_a_value_of_another_type(signed):
    """#15.1: ``"iterations": "50"`` (a JSON string) once skipped the iteration limit, and the
    params model then coerced it. Policy refuses what it cannot compare."""
    d = check(signed, job(params={"iterations": "50"}), NodeState(party="bank_a"))
    assert not d.allowed
    assert any("iterations must be a number" in r and "maximum of 20" in r for r in d.reasons)
    assert not check(signed, job(params={"iterations": True}), NodeState(party="bank_a")).allowed



def test_a_contract_can_fix_what_a_release_contains(identities):
    """#16: logistic regression's standard errors, a t-test's means, chi2's margins are parameters;
    a rule's ``params`` fixes them (here: no standard errors) and anything else is denied."""
    base = make_contract(identities)
    rules = [r.model_copy(update={"params": {"inference": False}}) if r.name == "logistic_regression" else r
             for r in base.analyses]
    fixed = sign_all(base.model_copy(update={"analyses": rules}), identities)
    state = NodeState(party="bank_a")
    assert check(fixed, job(params={"iterations": 8, "inference": False}), state).allowed
    for params, why in (({"iterations": 8, "inference": True}, "inference=True: the contract fixes inference = False"),
                        ({"iterations": 8, "inference": 0}, "inference=0: the contract fixes"),
                        ({"iterations": 8}, "the contract fixes inference = False for 'logistic_regression'; the job "
                                            "leaves it")):
        d = check(fixed, job(params=params), state)
        assert not d.allowed and any(why in r for r in d.reasons), d.reasons
