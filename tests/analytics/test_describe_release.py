"""#15.17: ``describe`` releases a column's exact min and max (single individuals' values) only
when the job asks for them and the contract's leakage rule allows it; by default the plan says
they are not released and the result holds none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tessera.analytics.describe import EXTREMES_WITHHELD
from tessera.data.schema import Column, Schema
from tessera.governance.contract import AnalysisRule, Contract
from tessera.governance.job import JobSpec
from tessera.governance.policy import NodeState, check
from tessera.jobs.local import run_local
from tests.governance.conftest import NAMES, identities, make_contract, sign_all  # noqa: F401 - fixture

SCHEMA = Schema(columns=(Column(name="x", type="float", min=-100.0, max=100.0),
                         Column(name="k", type="int", min=0, max=1000)))


def frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(11)
    return {n: pd.DataFrame({"x": rng.normal(3, 7, 400).clip(-99, 99), "k": rng.integers(5, 900, 400)})
            for n in ("a", "b", "c")}


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_by_default_no_min_or_max_and_the_plan_says_so(protocol):
    res = run_local("describe", frames(), SCHEMA, columns=["x", "k"], protocol=protocol, runtime="threads")
    for c in ("x", "k"):
        assert set(res[c]) == {"sum", "mean", "var", "std"}
    assert not any(r.startswith(("min[", "max[")) for r in res.revealed)
    assert EXTREMES_WITHHELD in res.plan_text
    assert "min and max are not released" in res.plan_text


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_when_allowed_the_extremes_are_exact(protocol):
    data = frames()
    pooled = pd.concat(data.values())
    res = run_local("describe", data, SCHEMA, columns=["x", "k"], protocol=protocol, runtime="threads", extremes=True)
    assert res["k"]["min"] == pooled.k.min() and res["k"]["max"] == pooled.k.max()
    assert res["x"]["min"] == pytest.approx(pooled.x.min(), abs=100 * 2.0**-50)
    assert res["x"]["max"] == pytest.approx(pooled.x.max(), abs=100 * 2.0**-50)
    assert {"min[x] -> all recipients", "max[k] -> all recipients"} <= set(res.revealed)
    assert "min and max are released exactly" in res.plan_text


def test_vertical_describe_withholds_the_extremes_too():
    rng = np.random.default_rng(2)
    a = pd.DataFrame({"id": [str(i) for i in range(300)], "x": rng.uniform(-50, 50, 300)})
    b = pd.DataFrame({"id": [str(i) for i in range(100, 400)], "k": rng.integers(0, 1000, 300)})
    for mode in ("intersection", "aligned"):
        res = run_local("describe", {"a": a, "b": b}, SCHEMA, runtime="threads", partition="vertical",
                        psi_mode=mode, join_key="id", columns=["x", "k"])
        assert res["count"] == 200
        assert set(res["x"]) == set(res["k"]) == {"sum", "mean", "var", "std"}, mode


def describe_job(**params: object) -> JobSpec:
    return JobSpec(analysis="describe", version="1.0", datasets=["tx_bank_a", "tx_bank_b"], columns=["amount"],
                   params={"columns": ["amount"], **params}, protocol="rep3", recipients=["analyst-1"],
                   analyst="analyst-1")


def contract_with(identities, leakage: dict[str, str]) -> Contract:  # noqa: F811 - the fixture's value
    rule = AnalysisRule(name="describe", datasets=[f"tx_{n}" for n in NAMES], columns=["amount"],
                        recipients=["analyst-1"])
    return sign_all(make_contract(identities, analyses=[rule], leakage=leakage), identities)


def test_policy_refuses_extremes_unless_the_leakage_rule_allows_them(identities):  # noqa: F811
    default = contract_with(identities, {"psi_reveal": "size"})
    assert check(default, describe_job(), NodeState("bank_a")).allowed
    d = check(default, describe_job(extremes=True), NodeState("bank_a"))
    assert d.reasons == ["extremes=True releases each column's exact min and max (single individuals' values); the "
                       "contract's leakage rule extremes='none' does not allow it (it takes extremes = 'exact')"]
    allowed = contract_with(identities, {"psi_reveal": "size", "extremes": "exact"})
    assert check(allowed, describe_job(extremes=True), NodeState("bank_a")).allowed


def test_an_unknown_extremes_rule_is_refused(identities):  # noqa: F811
    with pytest.raises(ValueError, match="leakage rule extremes = 'always'; use one of none, exact"):
        contract_with(identities, {"extremes": "always"})
