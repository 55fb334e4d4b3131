"""Analyses over horizontally partitioned rows match their plaintext references on the pooled data."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.linear_model import Ridge

from tessera.data.schema import Column, Schema
from tessera.data.synthetic import bank_transactions
from tessera.errors import PlanError
from tessera.jobs.local import run_local

PROTOCOLS = ["rep3", "semi2k"]


@pytest.fixture(scope="module")
def banks():
    frames, schema, _ = bank_transactions(100_000, seed=3)
    return frames, schema, pd.concat(frames.values(), ignore_index=True)


@pytest.fixture(scope="module")
def linear_data():
    """Three parties with unequal sizes; y = 2 + 0.5 x1 - 3 x2 + 0.01 x3 + noise."""
    rng = np.random.default_rng(11)
    n = 100_000
    x = np.column_stack([rng.uniform(0, 100, n), rng.normal(5, 2, n).clip(-5, 15), rng.integers(0, 1000, n)])
    y = 2 + 0.5 * x[:, 0] - 3 * x[:, 1] + 0.01 * x[:, 2] + rng.normal(0, 4, n)
    df = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "x3": x[:, 2], "y": y.clip(-100, 150)})
    schema = Schema(columns=(Column(name="x1", type="float", min=0, max=100),
                             Column(name="x2", type="float", min=-5, max=15),
                             Column(name="x3", type="int", min=0, max=999),
                             Column(name="y", type="float", min=-100, max=150)))
    cuts = [0, 50_000, 80_000, n]
    frames = {f"p{i}": df.iloc[cuts[i]:cuts[i + 1]] for i in range(3)}
    return frames, schema, df


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_describe(banks, protocol):
    frames, schema, pooled = banks
    cols = ["amount", "merchant_risk", "hour"]
    out = run_local("describe", frames, schema, columns=cols, protocol=protocol, runtime="threads",
                    extremes=True).outputs
    assert out["count"] == len(pooled)
    for c in cols:
        ref = pooled[c].astype(float)
        for stat, want in [("sum", ref.sum()), ("mean", ref.mean()), ("var", ref.var()), ("std", ref.std()),
                           ("min", ref.min()), ("max", ref.max())]:
            assert out[c][stat] == pytest.approx(want, rel=1e-3, abs=1e-6), (c, stat)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_covariance_and_correlation(banks, protocol):
    frames, schema, pooled = banks
    cols = ["amount", "merchant_risk", "account_age_days", "is_fraud"]
    ref = pooled[cols].astype(float).to_numpy()
    cov = run_local("covariance", frames, schema, columns=cols, protocol=protocol, runtime="threads")["covariance"]
    corr = run_local("correlation", frames, schema, columns=cols, protocol=protocol, runtime="threads")["correlation"]
    np.testing.assert_allclose(cov, np.cov(ref.T), rtol=1e-3, atol=1e-3 * np.abs(np.cov(ref.T)).max())
    np.testing.assert_allclose(corr, np.corrcoef(ref.T), atol=1e-4)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_linear_regression_matches_statsmodels(linear_data, protocol):
    frames, schema, df = linear_data
    feats = ["x1", "x2", "x3"]
    out = run_local("linear_regression", frames, schema, features=feats, target="y", protocol=protocol,
                    runtime="threads").outputs
    ref = sm.OLS(df["y"], sm.add_constant(df[feats].astype(float))).fit()
    np.testing.assert_allclose(out["coefficients"], ref.params.to_numpy(), rtol=1e-3)
    np.testing.assert_allclose(out["std_errors"], ref.bse.to_numpy(), rtol=1e-3)
    np.testing.assert_allclose(out["t"], ref.tvalues.to_numpy(), rtol=1e-3)
    np.testing.assert_allclose(out["p_values"], ref.pvalues.to_numpy(), atol=1e-3)
    assert out["r2"] == pytest.approx(ref.rsquared, abs=1e-3)
    assert out["n"] == len(df)


def test_ridge_matches_sklearn(linear_data):
    frames, schema, df = linear_data
    feats = ["x1", "x2", "x3"]
    out = run_local("linear_regression", frames, schema, features=feats, target="y", ridge=5000.0,
                    runtime="threads").outputs
    ref = Ridge(alpha=5000.0).fit(df[feats].astype(float), df["y"])
    np.testing.assert_allclose(out["coefficients"], np.concatenate([[ref.intercept_], ref.coef_]), rtol=1e-3)
    assert "std_errors" not in out


def test_results_go_only_to_the_recipients(banks):
    frames, schema, _ = banks
    res = run_local("describe", frames, schema, columns=["amount"], recipients=["bank_b"], runtime="threads")
    assert "amount" in res.per_party["bank_b"]
    assert set(res.per_party["bank_a"]) == {"count"} and set(res.per_party["bank_c"]) == {"count"}


def test_a_job_that_could_overflow_is_refused_before_it_runs(banks):
    frames, schema, _ = banks
    with pytest.raises(PlanError, match="row-count bound"):
        run_local("describe", frames, schema, columns=["amount"], max_rows=10**12, runtime="threads")
    with pytest.raises(PlanError, match="max_inverse"):
        run_local("linear_regression", frames, schema, features=["hour"], target="amount", max_inverse=1e9,
                  runtime="threads")
    with pytest.raises(PlanError, match="no analysis named"):
        run_local("kmeans", frames, schema, runtime="threads")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_vertical_correlation_over_aligned_rows(banks, protocol):
    _, schema, pooled = banks
    cols = ["amount", "merchant_risk", "hour", "is_fraud"]
    parts = {"bank_a": pooled[["amount"]], "bank_b": pooled[["merchant_risk", "hour"]], "bank_c": pooled[["is_fraud"]]}
    if protocol == "semi2k":
        parts = {"bank_a": pooled[["amount", "merchant_risk"]], "bank_b": pooled[["hour", "is_fraud"]]}
    res = run_local("correlation", parts, schema, columns=cols, partition="vertical", protocol=protocol,
                    runtime="threads")
    np.testing.assert_allclose(res["correlation"], np.corrcoef(pooled[cols].astype(float).to_numpy().T), atol=1e-4)
    assert res["count"] == len(pooled)


def test_vertical_linear_regression(linear_data):
    _, schema, df = linear_data
    parts = {"p0": df[["x1", "x2"]], "p1": df[["x3", "y"]]}
    out = run_local("linear_regression", parts, schema, features=["x1", "x2", "x3"], target="y",
                    partition="vertical", protocol="semi2k", runtime="threads").outputs
    ref = sm.OLS(df["y"], sm.add_constant(df[["x1", "x2", "x3"]].astype(float))).fit()
    np.testing.assert_allclose(out["coefficients"], ref.params.to_numpy(), rtol=1e-3)
    np.testing.assert_allclose(out["std_errors"], ref.bse.to_numpy(), rtol=1e-2)
