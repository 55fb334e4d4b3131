"""Every analysis runs with no dealer (semi2k, preprocessing="ot") and matches the dealer mode,
for two and three parties (threads), and once over TLS between real processes.

OT preprocessing costs per element, so the default run takes a representative set (aggregate
analyses at two parties, two of them at three); ``TESSERA_OT_FULL=1`` runs every analysis at both
sizes (about 5 minutes on 2 cores; last run green, see docs/architecture.md)."""

import os

import numpy as np
import pytest

from tessera.data.synthetic import bank_transactions, hospital_trials
from tessera.errors import PlanError
from tessera.jobs.local import run_local

FEATS = ["amount", "merchant_risk"]
#: analysis -> (parameters, dataset); small data: OT preprocessing costs per element
CASES = {
    "describe": ({"columns": ["amount", "hour"], "extremes": True}, "bank"),
    "covariance": ({"columns": ["amount", "merchant_risk"]}, "bank"),
    "correlation": ({"columns": ["amount", "merchant_risk", "hour"]}, "bank"),
    "linear_regression": ({"features": ["merchant_risk", "hour"], "target": "amount"}, "bank"),
    "logistic_regression": ({"features": FEATS, "target": "is_fraud", "C": 1.0, "iterations": 6}, "bank"),
    "histogram": ({"column": "amount", "edges": [0, 100, 1000, 10000]}, "bank"),
    "quantiles": ({"column": "hour", "q": [0.5]}, "bank"),
    "ttest": ({"value": "amount", "group": "is_fraud"}, "bank"),
    "chi2": ({"row": "channel", "column": "is_fraud"}, "bank"),
    "meta_analysis": ({"outcome": "outcome", "treatment": "treatment"}, "trials"),
    "dp_describe": ({"columns": ["hour"], "epsilon": 1e4, "delta": 1e-6}, "bank"),
    "dp_histogram": ({"column": "amount", "edges": [0, 100, 1000, 10000], "epsilon": 1e4}, "bank"),
    "dp_linear_regression": ({"features": ["merchant_risk"], "target": "amount", "epsilon": 1e4}, "bank"),
    "dp_logistic_regression": ({"features": FEATS, "target": "is_fraud", "C": 1.0, "epsilon": 1e4}, "bank"),
}
#: the iterative row-level fits only at two parties (each of their comparisons costs thousands of OTs)
ROW_LEVEL = {"logistic_regression", "dp_logistic_regression"}
FULL = os.environ.get("TESSERA_OT_FULL") == "1"
#: what the default run covers
QUICK = {2: {"describe", "correlation", "histogram", "chi2", "meta_analysis"}, 3: {"describe", "chi2"}}


@pytest.fixture(scope="module")
def data():
    frames, schema, _ = bank_transactions(240, seed=3)
    trials, tschema, _ = hospital_trials(sizes={"h0": 80, "h1": 60, "h2": 50}, seed=12)
    return {"bank": (frames, schema), "trials": (trials, tschema)}


def close(a, b, rel):
    """Outputs of the two modes agree: numbers within ``rel``, everything else equal."""
    if isinstance(a, dict):
        assert set(a) == set(b)
        for k in a:
            close(a[k], b[k], rel)
    elif isinstance(a, (list, tuple)) and a and isinstance(a[0], (str, dict, list, tuple, bool)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            close(x, y, rel)
    elif isinstance(a, (list, tuple, np.ndarray)):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=rel, atol=rel)
    elif isinstance(a, (int, float, np.number)) and not isinstance(a, bool):
        assert float(a) == pytest.approx(float(b), rel=rel, abs=rel)
    else:
        assert a == b


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("analysis", list(CASES))
def test_every_analysis_without_a_dealer_matches_the_dealer_mode(data, analysis, n):
    if n == 3 and analysis in ROW_LEVEL:
        pytest.skip("row-level fits run at two parties here (cost); three-party OT is covered by the others")
    if not FULL and analysis not in QUICK[n]:
        pytest.skip("in the full run only (TESSERA_OT_FULL=1)")
    params, which = CASES[analysis]
    frames, schema = data[which]
    frames = dict(list(frames.items())[:n])
    dealer = run_local(analysis, frames, schema, protocol="semi2k", runtime="threads", **params)
    ot = run_local(analysis, frames, schema, protocol="semi2k", preprocessing="ot", runtime="threads", **params)
    assert ot.job.roles.preprocessing.source == "ot" and ot.job.roles.endpoints == list(frames)
    assert set(ot.comm) == set(frames)  # no dealer endpoint took part
    if analysis.startswith("dp_"):
        close(set(dealer.outputs), set(ot.outputs), 0)  # fresh noise each run: the same release
        assert ot.outputs["guarantee"] == dealer.outputs["guarantee"]
    else:
        close(dealer.outputs, ot.outputs, 1e-3)


def test_preprocessing_is_refused_where_it_does_not_apply(data):
    frames, schema = data["bank"]
    with pytest.raises(PlanError, match="preprocessing"):
        run_local("describe", frames, schema, protocol="rep3", preprocessing="ot", columns=["hour"], runtime="threads")
    with pytest.raises(PlanError, match="preprocessing"):
        run_local("describe", frames, schema, protocol="semi2k", preprocessing="cloud", columns=["hour"],
                  runtime="threads")
    with pytest.raises(PlanError, match="unknown protocol"):
        run_local("describe", frames, schema, protocol="semi2k+ot", columns=["hour"], runtime="threads")


@pytest.mark.slow
def test_two_processes_over_tls_with_no_dealer(data):
    frames, schema = data["bank"]
    two = dict(list(frames.items())[:2])
    params = {"columns": ["amount", "merchant_risk", "hour"]}
    dealer = run_local("correlation", two, schema, protocol="semi2k", runtime="threads", **params)
    ot = run_local("correlation", two, schema, protocol="semi2k", preprocessing="ot", runtime="cluster", **params)
    assert set(ot.reports) == set(two)  # two processes, no dealer
    close(dealer.outputs, ot.outputs, 1e-3)
