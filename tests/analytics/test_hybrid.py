"""Hybrid GLMs (iterates revealed to the data owners) against scikit-learn and statsmodels."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression

from tessera.data.schema import Schema
from tessera.errors import GuardFailed, PlanError
from tessera.governance.contract import AnalysisRule, Contract
from tessera.governance.job import JobSpec
from tessera.governance.policy import NodeState, check
from tessera.jobs.local import run_local
from tests.governance.conftest import NAMES, identities, make_contract, sign_all  # noqa: F401 - fixture

P = 4
FEATS = [f"x{j}" for j in range(P)]


def _parties(n_per, seed, scale=1.0):
    beta, pbeta = np.array([0.8, -0.5, 0.3, 0.0]), np.array([0.2, -0.3, 0.1, 0.05])
    frames = {}
    for i, name in enumerate(["bank_a", "bank_b", "bank_c"]):
        rng = np.random.default_rng(seed + i)
        x = np.clip(rng.normal(size=(n_per, P)) * scale + i * 0.1, -5, 5)
        y = rng.random(n_per) < 1 / (1 + np.exp(-(-0.4 + x @ beta)))
        c = np.minimum(rng.poisson(np.exp(0.7 + x @ pbeta)), 200)
        frames[name] = pd.DataFrame({**{f: x[:, j] for j, f in enumerate(FEATS)}, "y": y, "count": c})
    schema = Schema.from_dict({**{f: {"type": "float", "min": -5, "max": 5} for f in FEATS},
                               "y": {"type": "bool"}, "count": {"type": "int", "min": 0, "max": 200}})
    return frames, schema, pd.concat(frames.values(), ignore_index=True)


@pytest.fixture(scope="module")
def data():
    return _parties(4000, 11)


def test_hybrid_logistic_matches_sklearn(data):
    frames, schema, pooled = data
    res = run_local("logistic_regression_hybrid", frames, schema, features=FEATS, target="y", runtime="threads")
    sk = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=100).fit(pooled[FEATS], pooled["y"])
    want = np.concatenate([sk.intercept_, sk.coef_[0]])
    got = res["coefficients"]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.max(np.abs(want)))
    assert res["n"] == len(pooled) and 2 <= res["iterations"] <= 10
    # the plan states the leakage; every data owner got the iterates, nobody the derivatives
    assert "iterates -> bank_a, bank_b, bank_c" in res.revealed
    assert "the iterates beta_1..beta_k (scaled units), to every data owner" in res.plan_text
    assert "leakage (contract rule iterates = 'owners')" in res.plan_text


def test_hybrid_logistic_with_l2_matches_sklearn(data):
    frames, schema, pooled = data
    res = run_local("logistic_regression_hybrid", frames, schema, features=FEATS, target="y", C=0.01,
                    runtime="threads", protocol="semi2k")
    sk = LogisticRegression(C=0.01, solver="newton-cholesky", tol=1e-12, max_iter=100).fit(pooled[FEATS], pooled["y"])
    want = np.concatenate([sk.intercept_, sk.coef_[0]])
    np.testing.assert_allclose(res["coefficients"], want, rtol=1e-4, atol=1e-4 * np.max(np.abs(want)))


def test_hybrid_poisson_matches_statsmodels(data):
    frames, schema, pooled = data
    res = run_local("poisson_regression_hybrid", frames, schema, features=FEATS, target="count", runtime="threads")
    glm = sm.GLM(pooled["count"], sm.add_constant(pooled[FEATS]), family=sm.families.Poisson()).fit(tol=1e-12)
    want = np.asarray(glm.params)
    np.testing.assert_allclose(res["coefficients"], want, rtol=1e-4, atol=1e-4 * np.max(np.abs(want)))
    assert "start -> bank_a, bank_b, bank_c" in res.revealed


def test_hybrid_separable_classes_fail_the_guard():
    frames, schema, _ = _parties(300, 5)
    for df in frames.values():
        df["y"] = df["x0"] > 0
    with pytest.raises(GuardFailed, match="did not converge in 6 Newton iterations"):
        run_local("logistic_regression_hybrid", frames, schema, features=FEATS, target="y", max_iterations=6,
                  runtime="threads")


def test_hybrid_plan_refuses_a_target_that_is_not_a_count(data):
    frames, schema, _ = data
    with pytest.raises(PlanError, match="must be a numeric count column"):
        run_local("poisson_regression_hybrid", frames, schema, features=FEATS[:2], target="x3", runtime="threads")
    with pytest.raises(PlanError, match="beyond the ring's range"):
        run_local("logistic_regression_hybrid", frames, schema, features=FEATS, target="y", max_inverse=1e5,
                  runtime="threads")


def _hybrid_job(analysis: str = "logistic_regression_hybrid") -> JobSpec:
    return JobSpec(analysis=analysis, version="1.0", datasets=["tx_bank_a", "tx_bank_b"],
                   columns=["amount", "hour", "is_fraud"], protocol="rep3", recipients=["analyst-1"],
                   analyst="analyst-1", params={"features": ["amount", "hour"], "target": "is_fraud"})


def _contract(identities, leakage: dict[str, str]) -> Contract:  # noqa: F811 - the fixture's value
    rules = [AnalysisRule(name=a, datasets=[f"tx_{n}" for n in NAMES], columns=["amount", "hour", "is_fraud"],
                          recipients=["analyst-1"]) for a in ("logistic_regression_hybrid", "poisson_regression_hybrid")]
    return sign_all(make_contract(identities, analyses=rules, leakage=leakage), identities)


def test_policy_denies_a_hybrid_job_unless_the_contract_reveals_iterates_to_owners(identities):  # noqa: F811
    default = _contract(identities, {"psi_reveal": "size"})
    for analysis in ("logistic_regression_hybrid", "poisson_regression_hybrid"):
        d = check(default, _hybrid_job(analysis), NodeState("bank_a"))
        assert not d.allowed
        assert d.reasons == [f"{analysis} reveals its Newton iterates to every data owner; the contract's leakage "
                             "rule iterates='none' does not allow it (it takes iterates = 'owners')"]
    allowed = _contract(identities, {"psi_reveal": "size", "iterates": "owners"})
    assert check(allowed, _hybrid_job(), NodeState("bank_a")).allowed


def test_an_unknown_iterates_rule_is_refused(identities):  # noqa: F811
    with pytest.raises(ValueError, match="leakage rule iterates = 'everyone'; use one of none, owners"):
        _contract(identities, {"iterates": "everyone"})
