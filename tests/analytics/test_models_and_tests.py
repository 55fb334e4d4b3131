"""Logistic regression, Welch's t-test and the chi-square test against scikit-learn and scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from tessera.analytics.logistic import auc, holdout_split
from tessera.data.synthetic import bank_transactions
from tessera.errors import PlanError
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
    assert res.revealed == ["coefficients -> all recipients", "n -> all recipients"]


def test_auc_helper_matches_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random(500) < 0.3
    s = np.round(rng.normal(size=500) + y, 1)  # with ties
    assert auc(y.astype(float), s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_welch_ttest_matches_scipy(banks, protocol):
    frames, schema, _, pooled = banks
    out = run_local("ttest", frames, schema, value="amount", group="is_fraud", protocol=protocol, runtime="threads").outputs
    ref = stats.ttest_ind(pooled.amount[pooled.is_fraud], pooled.amount[~pooled.is_fraud], equal_var=False)
    assert out["t"] == pytest.approx(ref.statistic, abs=1e-3)
    assert out["p_value"] == pytest.approx(ref.pvalue, abs=1e-3)
    assert out["df"] == pytest.approx(ref.df, rel=1e-3)
    assert out["n_true"] == int(pooled.is_fraud.sum())


def test_ttest_refuses_a_too_small_group(banks):
    frames, schema, _, _ = banks
    with pytest.raises(PlanError, match="fewer than 100000 rows"):
        run_local("ttest", frames, schema, value="amount", group="is_fraud", min_group_rows=100_000, runtime="threads")


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_chi2_independence_matches_scipy(banks, protocol):
    frames, schema, _, pooled = banks
    out = run_local("chi2", frames, schema, row="is_fraud", column="channel", protocol=protocol, runtime="threads").outputs
    table = pd.crosstab(pooled.is_fraud, pooled.channel.map({"online": 0, "pos": 1, "atm": 2})).to_numpy()
    ref = stats.chi2_contingency(table, correction=False)
    assert out["chi2"] == pytest.approx(ref.statistic, abs=1e-3)
    assert out["p_value"] == pytest.approx(ref.pvalue, abs=1e-3)
    assert out["dof"] == ref.dof and out["n"] == len(pooled)
