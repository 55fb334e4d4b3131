"""Vertical jobs over unaligned rows: PSI on the join key, then the analysis on the common rows."""

import numpy as np
import pytest
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression

from tessera.data.synthetic import vertical_fraud
from tessera.jobs.local import run_local

FEATS = ["amount", "merchant_risk", "hour", "account_age_days"]


@pytest.fixture(scope="module")
def banks():
    return vertical_fraud(8_000, overlap=0.6, seed=3)


def run(frames, schema, analysis, **params):
    return run_local(analysis, frames, schema, partition="vertical", protocol="semi2k", runtime="threads",
                     psi_mode="intersection", join_key="customer_id", **params)


def test_psi_then_logistic_regression_matches_the_model_on_the_true_join(banks):
    frames, schema, _, join = banks
    res = run(frames, schema, "logistic_regression", features=FEATS, target="is_fraud")
    ref = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(join[FEATS].astype(float), join["is_fraud"])
    np.testing.assert_allclose(res["coefficients"], np.concatenate([ref.intercept_, ref.coef_[0]]), rtol=5e-3)
    assert res.per_party["bank_a"]["psi_size"] == res.per_party["bank_b"]["psi_size"] == len(join)


def test_psi_then_correlation_and_linear_regression(banks):
    frames, schema, _, join = banks
    cols = ["amount", "merchant_risk", "is_fraud"]
    corr = run(frames, schema, "correlation", columns=cols)["correlation"]
    np.testing.assert_allclose(corr, np.corrcoef(join[cols].astype(float).to_numpy().T), atol=1e-4)
    lin = run(frames, schema, "linear_regression", features=["merchant_risk", "hour"], target="amount").outputs
    ref = sm.OLS(join["amount"], sm.add_constant(join[["merchant_risk", "hour"]].astype(float))).fit()
    np.testing.assert_allclose(lin["coefficients"][0], ref.params.iloc[0], rtol=1e-3)


def test_a_missing_join_key_is_a_clear_error(banks):
    from tessera.errors import DataError

    frames, schema, _, _ = banks
    with pytest.raises(DataError, match="no join-key column 'customer_id'"):
        run({k: v.drop(columns=["customer_id"]) for k, v in frames.items()}, schema, "correlation",
            columns=["amount", "is_fraud"])
