"""Many data owners on few compute parties (#17): input-only owners secret-share what the secure
stage needs of them and leave; the compute parties combine their contributions."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.linear_model import LogisticRegression

from tessera.analytics.logistic import STEP_TOLERANCE
from tessera.data.synthetic import many_banks, many_hospitals
from tessera.errors import PlanError, SessionError
from tessera.jobs.local import local_job, run_local
from tests.analytics.test_meta import reference

C3 = ["c1", "c2", "c3"]


@pytest.fixture(scope="module")
def hospitals30():
    return many_hospitals(30, rows=(60, 200))


@pytest.fixture(scope="module")
def hospitals12():
    frames, schema, _ = many_hospitals(12, rows=(40, 120), seed=4)
    return frames, schema, pd.concat(frames.values(), ignore_index=True)


@pytest.mark.parametrize("protocol,compute", [("rep3", C3), ("semi2k", ["c1", "c2"])])
def test_meta_analysis_of_30_hospitals_on_compute_parties_matches_statsmodels(hospitals30, protocol, compute):
    frames, schema, _ = hospitals30
    ref = reference(frames)
    res = run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", protocol=protocol,
                    compute=compute, runtime="threads")
    out = res.outputs
    assert out["fixed_effect"] == pytest.approx(ref.mean_effect_fe, abs=1e-6)
    assert out["fixed_se"] == pytest.approx(ref.sd_eff_w_fe, rel=1e-5)
    assert out["random_effect"] == pytest.approx(ref.mean_effect_re, abs=1e-6)
    assert out["random_se"] == pytest.approx(ref.sd_eff_w_re, rel=1e-5)
    assert out["tau2"] == pytest.approx(ref.tau2, rel=1e-5)
    assert out["q"] == pytest.approx(ref.q, rel=1e-5)
    # the compute parties received the outputs; every hospital only sent its shares and got nothing
    assert set(res.per_party) == set(compute) | set(frames)
    assert all(res.per_party[h] == {} for h in frames)
    # one study row of three ring elements: under semi2k one share (24 bytes) and one seed per
    # other party, under rep3 two shares and two seeds, plus a short header to each party
    sent = res.comm["hospital_01"]["bytes_sent"]
    assert sent < (3 * 80 + 2 * 24 + 2 * 16 if protocol == "rep3" else 2 * 80 + 24 + 16)
    assert set(res.comm["hospital_01"]["bytes_sent_to"]) == set(compute)


def test_describe_correlation_and_regression_with_12_owners_match_numpy_and_statsmodels(hospitals12):
    frames, schema, pooled = hospitals12
    cols = ["age", "biomarker_1", "outcome"]
    d = run_local("describe", frames, schema, columns=cols, compute=C3, runtime="threads").outputs
    assert d["count"] == len(pooled)
    for c in cols:
        assert d[c]["mean"] == pytest.approx(pooled[c].mean(), rel=1e-4)
        assert d[c]["var"] == pytest.approx(pooled[c].var(), rel=1e-3)
    r = run_local("correlation", frames, schema, columns=cols, compute=["c1", "c2"], runtime="threads").outputs
    np.testing.assert_allclose(r["correlation"], pooled[cols].corr().to_numpy(), atol=1e-4)
    lr = run_local("linear_regression", frames, schema, features=cols[:2], target="outcome", compute=C3,
                   runtime="threads").outputs
    ols = sm.OLS(pooled["outcome"], sm.add_constant(pooled[cols[:2]].astype(float))).fit()
    np.testing.assert_allclose(lr["coefficients"], ols.params.to_numpy(), rtol=1e-3)
    assert lr["n"] == len(pooled)


def test_logistic_regression_on_10_banks_rows_matches_sklearn():
    frames, schema, _ = many_banks(10, 2500)
    feats = ["amount", "merchant_risk", "hour", "account_age_days"]
    res = run_local("logistic_regression", frames, schema, features=feats, target="is_fraud", compute=C3,
                    holdout_fraction=0.0, runtime="threads")
    pooled = pd.concat(frames.values(), ignore_index=True)
    sk = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(pooled[feats].astype(float), pooled["is_fraud"])
    ref = np.concatenate([sk.intercept_, sk.coef_[0]])
    half = np.array([1.0, 5000.0, 0.5, 11.5, 1825.0])  # the features' declared half-widths
    # the stated accuracy: within STEP_TOLERANCE in the fit's scaled units
    np.testing.assert_array_less(np.abs(res["coefficients"] - ref) * half, STEP_TOLERANCE)
    # and far inside the statistical uncertainty: the fixed-point error grows with the inverse
    # Hessian just as the standard error does (amount's skewed column: up to 0.5% relative, yet
    # under 0.005 standard errors in repeated runs), so it is measured in standard errors
    np.testing.assert_array_less(np.abs(res["coefficients"] - ref) / res["std_errors"], 0.02)
    assert res["n"] == len(pooled)


def test_an_owner_may_also_compute(hospitals30):
    frames, schema, _ = hospitals30
    few = dict(list(frames.items())[:6])
    ref = reference(few)
    res = run_local("meta_analysis", few, schema, outcome="outcome", treatment="treatment",
                    compute=["hospital_01", "c2", "c3"], runtime="threads")
    assert res["fixed_effect"] == pytest.approx(ref.mean_effect_fe, abs=1e-6)
    assert res.job is not None and res.job.roles.input_only == [h for h in few if h != "hospital_01"]


def test_the_plan_says_who_computes_and_what_owners_send(hospitals12):
    frames, schema, _ = hospitals12
    job = local_job("meta_analysis", frames, schema, protocol="rep3", compute=C3,
                    params={"outcome": "outcome", "treatment": "treatment"})
    assert "compute parties c1, c2, c3 run the secure stage" in job.plan_text
    assert "hospital_01" in job.plan_text and "leave" in job.plan_text
    rows = local_job("describe", frames, schema, protocol="rep3", compute=C3, params={"columns": ["age"]})
    assert "their scaled rows of age (each owner's row count is public)" in rows.plan_text


def test_compute_parties_are_checked():
    frames, schema, _ = many_hospitals(4, rows=(40, 60))
    with pytest.raises(PlanError, match="rep3 runs on exactly three compute parties, not 2"):
        run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", protocol="rep3",
                  compute=["c1", "c2"], runtime="threads")
    # the hybrid GLMs reveal each iterate to the owners, which compute their derivatives at it
    with pytest.raises(PlanError, match="logistic_regression_hybrid reveals each iterate to the data owners, which "
                                        "compute their derivatives at it: every data owner must compute"):
        local_job("logistic_regression_hybrid", frames, schema, protocol="rep3", compute=C3,
                  params={"features": ["age"], "target": "treatment"})


def _welch_tolerance(acc, value, s):
    """The plan's stated accuracy of t or df: abs + rel |v| + rel_per_s |v| / s + abs_per_sqrt_s / sqrt(s)."""
    return (acc.get("abs", 0.0) + acc.get("rel", 0.0) * abs(value) + acc.get("rel_per_s", 0.0) * abs(value) / s
            + acc.get("abs_per_sqrt_s", 0.0) / np.sqrt(s))


@pytest.mark.parametrize("protocol,compute", [("rep3", C3), ("semi2k", ["c1", "c2"])])
def test_ttest_with_owners_that_only_input_matches_scipy(hospitals12, protocol, compute):
    """ttest was refused with input-only owners; now they share their rows once and leave."""
    frames, schema, pooled = hospitals12
    res = run_local("ttest", frames, schema, value="outcome", group="treatment", protocol=protocol, compute=compute,
                    runtime="threads")
    g = pooled.treatment.astype(bool)
    x1, x0 = pooled.outcome[g], pooled.outcome[~g]
    ref = stats.ttest_ind(x1, x0, equal_var=False)
    acc = res.job.analysis_plan().meta["accuracy"]
    half = 150.0  # outcome's declared half-range
    n, n1, n0 = len(pooled), len(x1), len(x0)
    s = (x1.var() * n0 + x0.var() * n1) / n / half**2
    assert abs(res["t"] - ref.statistic) <= _welch_tolerance(acc["t"], ref.statistic, s)
    assert abs(res["df"] - ref.df) <= _welch_tolerance(acc["df"], ref.df, s)
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-4)
    assert abs(res["mean_true"] - x1.mean()) <= acc["means"]["abs"]
    assert (res["n_true"], res["n_false"]) == (n1, n0)
    assert all(res.per_party[h] == {} for h in frames)  # the owners sent their rows and left
    assert "their scaled rows of outcome, treatment" in res.plan_text


@pytest.mark.parametrize("protocol,compute", [("rep3", C3), ("semi2k", ["c1", "c2"])])
def test_quantiles_with_owners_that_only_input_within_the_stated_precision(hospitals12, protocol, compute):
    frames, schema, pooled = hospitals12
    q = [0.1, 0.5, 0.9, 1.0]
    res = run_local("quantiles", frames, schema, column="biomarker_2", q=q, precision=0.01, protocol=protocol,
                    compute=compute, runtime="threads")
    ref = np.quantile(pooled.biomarker_2, q, method="inverted_cdf")
    assert np.all(np.abs(np.array(res["quantiles"]) - ref) <= 0.01)
    assert res["n"] == len(pooled)
    assert all(res.per_party[h] == {} for h in frames)


def test_every_analysis_of_the_registry_plans_with_owners_that_only_input(hospitals12):
    """No analysis is refused with input-only owners horizontally except the hybrid GLMs, which
    reveal each iterate to the owners (the owners compute their derivatives at it)."""
    from tessera.analytics import available, get

    frames, schema, _ = hospitals12
    params = {"chi2": {"row": "sex", "column": "treatment"}, "histogram": {"column": "age", "edges": [18, 50, 95]},
              "dp_histogram": {"column": "age", "edges": [18, 50, 95], "epsilon": 1.0},
              "meta_analysis": {"outcome": "outcome", "treatment": "treatment"},
              "quantiles": {"column": "age", "q": [0.5]}, "ttest": {"value": "outcome", "group": "treatment"}}
    refused = []
    for name, versions in available().items():
        a = get(name, versions[-1])
        p = params.get(name)
        if p is None:
            fields = a.params_model.model_fields
            p = ({"features": ["age", "biomarker_1"], "target": "treatment" if "logistic" in name else "outcome"}
                 if "features" in fields else {"columns": ["age", "biomarker_1"]})
            if "epsilon" in fields:
                p["epsilon"] = 1.0
        try:
            local_job(name, frames, schema, protocol="rep3", compute=C3, params=p)
        except PlanError as e:
            refused.append((name, str(e)))
    assert sorted(n for n, _ in refused) == ["logistic_regression_hybrid", "poisson_regression_hybrid"], refused


def test_an_owner_that_ran_another_job_is_refused(hospitals12):
    """The compute parties check every input an owner sent against what the job expects."""
    from tessera.mpc.session import Received, Session
    from tessera.runtime.inprocess import run_threads

    def program(s: Session):
        s.set_owners(["x"], {"x": [Received(np.zeros((s.protocol.components, 2), dtype=np.uint64), 0, None)]})
        s.owner_inputs(None, shape=(3,), frac_bits=0)

    with pytest.raises(SessionError, match=r"data owner 'x' sent an input of shape \(2,\)"):
        run_threads(program, ["a", "b", "c"], protocol="rep3")


@pytest.mark.slow
def test_over_processes_the_owners_leave_after_sending_and_the_job_goes_on(hospitals30):
    """Real processes over mutual TLS: every hospital process exits once its shares are sent
    (its links to the compute parties close), and the compute parties finish without it."""
    frames, schema, _ = hospitals30
    few = dict(list(frames.items())[:4])
    res = run_local("meta_analysis", few, schema, outcome="outcome", treatment="treatment", compute=C3,
                    runtime="cluster", timeout=300)
    assert res["fixed_effect"] == pytest.approx(reference(few).mean_effect_fe, abs=1e-6)
    for h in few:
        report = res.reports[h]
        assert report.ok and report.bytes_sent == 205
        assert report.seconds < min(res.reports[c].seconds for c in C3)  # gone before the computation ended
