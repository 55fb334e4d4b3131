"""Logistic regression against scikit-learn."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from tessera.analytics.logistic import auc, holdout_split
from tessera.data.synthetic import bank_transactions
from tessera.jobs.local import run_local

FEATS = ["amount", "merchant_risk", "hour", "account_age_days"]


@pytest.fixture(scope="module")
def banks():
    frames, schema, truth = bank_transactions(30_000, seed=9)
    return frames, schema, truth, pd.concat(frames.values(), ignore_index=True)


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_logistic_regression_horizontal_matches_sklearn_on_each_holdout(banks, protocol):
    frames, schema, _, _ = banks
    res = run_local("logistic_regression", frames, schema, features=FEATS, target="is_fraud", protocol=protocol,
                    holdout_fraction=0.2, runtime="threads")
    train = pd.concat([df[~holdout_split(len(df), 0.2)] for df in frames.values()])
    sk = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(train[FEATS].astype(float), train["is_fraud"])
    np.testing.assert_allclose(res["coefficients"], np.concatenate([sk.intercept_, sk.coef_[0]]), rtol=5e-3)
    for bank, df in frames.items():
        hold = df[holdout_split(len(df), 0.2)]
        mine = res.per_party[bank]
        assert abs(mine["holdout_accuracy"] - sk.score(hold[FEATS].astype(float), hold["is_fraud"])) <= 0.01
        assert abs(mine["holdout_auc"] - roc_auc_score(hold["is_fraud"], sk.decision_function(hold[FEATS].astype(float)))) <= 0.01


def test_logistic_regression_vertical_with_l2(banks):
    frames, schema, _, pooled = banks
    vertical = {"bank_a": pooled[["amount", "merchant_risk"]], "bank_b": pooled[["hour", "account_age_days", "is_fraud"]]}
    res = run_local("logistic_regression", vertical, schema, features=FEATS, target="is_fraud", C=0.5,
                    partition="vertical", protocol="semi2k", runtime="threads")
    sk = LogisticRegression(C=0.5, max_iter=10_000, tol=1e-10).fit(pooled[FEATS].astype(float), pooled["is_fraud"])
    np.testing.assert_allclose(res["coefficients"], np.concatenate([sk.intercept_, sk.coef_[0]]), rtol=5e-3)
    assert res.revealed == ["guard -> all recipients", "coefficients -> all recipients",
                            "std_errors -> all recipients", "n -> all recipients"]


def test_auc_helper_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = np.round(rng.normal(size=500) + y, 1)  # with ties
    assert auc(y.astype(float), s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_a_separable_fit_is_stopped_by_the_convergence_guard():
    """Issue #14: a perfectly separable logistic regression returned finite coefficients."""
    from tessera.data.schema import Column, Schema
    from tessera.errors import GuardFailed

    rng = np.random.default_rng(3)
    x = rng.uniform(-5, 5, 3000)
    df = pd.DataFrame({"x": x, "y": x > 0.5})
    schema = Schema(columns=(Column(name="x", type="float", min=-5, max=5), Column(name="y", type="bool")))
    frames = {"a": df.iloc[:1000], "b": df.iloc[1000:2000], "c": df.iloc[2000:]}
    with pytest.raises(GuardFailed, match="separable") as err:
        run_local("logistic_regression", frames, schema, features=["x"], target="y", iterations=10, runtime="threads")
    assert err.value.guard in ("convergence", "conditioning")
    # with L2 the estimate exists, and the guard passes
    res = run_local("logistic_regression", frames, schema, features=["x"], target="y", iterations=10, C=0.1,
                    runtime="threads")
    sk = LogisticRegression(C=0.1, max_iter=10_000, tol=1e-10).fit(df[["x"]], df["y"])
    np.testing.assert_allclose(res["coefficients"], np.concatenate([sk.intercept_, sk.coef_[0]]), rtol=2e-2)


def test_vertical_holdout_with_the_owners_pair_products(banks):
    """Each party shares the products of its own columns' pairs on the training rows (the
    Hessian's; a wrong row would leave the coefficients right but not the standard errors): the
    fit and its standard errors match the plaintext ones on those rows."""
    _, schema, _, pooled = banks
    pooled = pooled.iloc[:6000]
    vertical = {"a": pooled[["amount", "merchant_risk", "hour"]], "b": pooled[["account_age_days"]],
                "c": pooled[["is_fraud"]]}
    res = run_local("logistic_regression", vertical, schema, features=FEATS, target="is_fraud",
                    partition="vertical", protocol="rep3", runtime="threads", holdout_fraction=0.25)
    train = pooled[~holdout_split(len(pooled), 0.25)]
    x = train[FEATS].to_numpy(dtype=float)
    sk = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(x, train["is_fraud"])
    # amount is nearly constant against its declared range (0..10^4) once scaled to [-1, 1], so the
    # Hessian's rounding (2^-20) is amplified by its condition: within 2e-2 (slope) and 5e-2 (its
    # standard error) at 4,500 rows, where rows paired wrongly are off by far more (or the guard stops)
    np.testing.assert_allclose(res["coefficients"], np.concatenate([sk.intercept_, sk.coef_[0]]), rtol=2e-2)
    xi = np.column_stack([np.ones(len(x)), x])
    s = sk.predict_proba(x)[:, 1]
    cov = np.linalg.inv(xi.T @ (xi * (s * (1 - s))[:, None]))
    np.testing.assert_allclose(res["std_errors"], np.sqrt(np.diag(cov)), rtol=5e-2)
