"""The scikit-learn-style front against scikit-learn fitted on the pooled rows."""

import numpy as np
import pandas as pd
import pytest
from sklearn import linear_model
from sklearn.base import clone

import tessera
from tessera.data.synthetic import bank_transactions
from tessera.errors import PlanError, TesseraError
from tessera.estimators import LinearRegression, LogisticRegression, NotFittedError

FEATS = ["amount", "merchant_risk", "hour", "account_age_days"]


@pytest.fixture(scope="module")
def banks():
    frames, schema, _ = bank_transactions(4000, seed=5)
    train = {n: df.iloc[: len(df) * 3 // 4] for n, df in frames.items()}
    holdout = {n: df.iloc[len(df) * 3 // 4:] for n, df in frames.items()}
    return train, holdout, schema, pd.concat(train.values(), ignore_index=True)


@pytest.fixture(scope="module")
def fitted(banks):
    train, _, schema, _ = banks
    return LogisticRegression(C=1.0).fit(train, schema, features=FEATS, target="is_fraud", runtime="threads")


def test_logistic_regression_predicts_as_sklearn_on_a_partys_own_rows(banks, fitted):
    _, holdout, _, pooled = banks
    sk = linear_model.LogisticRegression(C=1.0, max_iter=10_000, tol=1e-10).fit(pooled[FEATS], pooled["is_fraud"])
    np.testing.assert_allclose(fitted.coef_, sk.coef_, rtol=5e-3)
    np.testing.assert_allclose(fitted.intercept_, sk.intercept_, rtol=5e-3)
    assert fitted.coef_.shape == sk.coef_.shape and fitted.intercept_.shape == sk.intercept_.shape
    assert list(fitted.classes_) == list(sk.classes_) == [False, True]
    assert fitted.n_features_in_ == sk.n_features_in_ == 4
    assert list(fitted.feature_names_in_) == list(sk.feature_names_in_)
    mine = holdout["bank_b"]  # one party scores its own rows, locally
    x, y = mine[FEATS], mine["is_fraud"]
    # tolerance: the secure fit's coefficients agree to 5e-3 relative, so probabilities to about 1e-3
    np.testing.assert_allclose(fitted.predict_proba(x), sk.predict_proba(x), atol=2e-3)
    np.testing.assert_allclose(fitted.decision_function(x), sk.decision_function(x), atol=2e-2)
    assert np.mean(fitted.predict(x) == sk.predict(x)) >= 0.999
    assert fitted.score(x, y) == pytest.approx(sk.score(x, y), abs=2e-3)
    np.testing.assert_allclose(fitted.predict_proba(x.to_numpy()), fitted.predict_proba(x))  # arrays too
    assert fitted.result_.bse is not None and "std_errors -> all recipients" in fitted.result_.revealed
    assert "Logit Regression Results" in str(fitted.summary())


def test_linear_regression_predicts_as_sklearn(banks):
    train, holdout, schema, pooled = banks
    feats = ["merchant_risk", "hour"]
    model = tessera.LinearRegression().fit(train, schema, features=feats, target="amount", runtime="threads")
    sk = linear_model.LinearRegression().fit(pooled[feats], pooled["amount"])
    # tolerance: the plan's accuracy, a few 1e-6 of sd(y) per unit of sd(x_j); predictions to 1e-5 sd(y)
    sd = pooled["amount"].std()
    np.testing.assert_allclose(model.coef_ * pooled[feats].std(), sk.coef_ * pooled[feats].std(), atol=1e-5 * sd)
    x, y = holdout["bank_a"][feats], holdout["bank_a"]["amount"]
    np.testing.assert_allclose(model.predict(x), sk.predict(x), atol=1e-5 * sd)
    assert model.score(x, y) == pytest.approx(sk.score(x, y), abs=1e-5)


def test_params_follow_sklearn_conventions_and_clone_works():
    model = LogisticRegression(C=0.5, max_iter=10)
    assert model.get_params() == {"penalty": "l2", "C": 0.5, "max_iter": 10, "inference": True, "max_inverse": 1e4}
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    assert model.set_params(C=2.0) is model and model.C == 2.0
    assert repr(model) == "LogisticRegression(C=2.0, max_iter=10)"
    with pytest.raises(PlanError, match="has no parameter 'c'; its parameters are penalty, C"):
        model.set_params(c=1.0)
    assert clone(LinearRegression(alpha=3.0)).alpha == 3.0
    assert tessera.LogisticRegression is LogisticRegression


def test_predicting_before_fit_or_on_the_wrong_rows_names_the_problem(fitted):
    with pytest.raises(NotFittedError, match="not fitted yet; call fit first") as e:
        LogisticRegression().predict(np.zeros((2, 4)))
    assert isinstance(e.value, TesseraError)
    with pytest.raises(PlanError, match="the rows have no column 'hour'"):
        fitted.predict(pd.DataFrame({"amount": [1.0], "merchant_risk": [0.1], "account_age_days": [3]}))
    with pytest.raises(PlanError, match=r"expected rows of 4 features, got an array of shape \(2, 3\)"):
        fitted.predict(np.zeros((2, 3)))
