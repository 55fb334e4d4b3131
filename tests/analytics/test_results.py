"""Result objects against statsmodels and scipy on the same data: values AND labels."""

import json

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from tessera import analytics
from tessera.analytics.logistic import INVERSE_TOLERANCE
from tessera.analytics.results import INTERCEPT, LogitResult, RegressionResult, Result, plain
from tessera.data.synthetic import bank_transactions, hospital_trials
from tessera.execution.steps import plan_analysis
from tessera.jobs.local import run_local

FEATS = ["amount", "merchant_risk", "hour", "account_age_days"]


@pytest.fixture(scope="module")
def banks():
    frames, schema, _ = bank_transactions(4000, seed=9)
    return frames, schema, pd.concat(frames.values(), ignore_index=True)


@pytest.fixture(scope="module")
def logit(banks):
    return _run(banks, "logistic_regression", features=FEATS, target="is_fraud")


def _run(banks, analysis, **params):
    frames, schema, _ = banks
    return run_local(analysis, frames, schema, runtime="threads", protocol="rep3", **params)


def _fact_labels(sm_summary):
    """The labels of statsmodels' facts block (its first table, two label/value pairs a row)."""
    return {cell.strip().rstrip(":") for row in sm_summary.tables[0].data for cell in row[::2] if cell.strip()}


def _coef_header(sm_summary):
    return sm_summary.tables[1].data[0][1:], [row[0].strip() for row in sm_summary.tables[1].data[1:]]


def test_linear_regression_result_matches_statsmodels_ols(banks):
    _, _, pooled = banks
    feats = ["merchant_risk", "hour", "account_age_days"]
    res = _run(banks, "linear_regression", features=feats, target="amount")
    r = res.result
    assert isinstance(r, RegressionResult)
    ols = sm.OLS(pooled["amount"], sm.add_constant(pooled[feats].astype(float))).fit()
    assert list(r.params.index) == list(ols.params.index) == [INTERCEPT, *feats]
    # the stated accuracy: a coefficient within a small fraction of its standard error
    assert np.max(np.abs((r.params - ols.params) / ols.bse)) < 1e-4
    pd.testing.assert_series_equal(r.bse, ols.bse, rtol=1e-4, check_names=False)
    np.testing.assert_allclose(r.tvalues, ols.tvalues, atol=1e-4)
    np.testing.assert_allclose(r.pvalues, ols.pvalues, rtol=1e-3, atol=1e-6)
    assert list(r.conf_int().columns) == list(ols.conf_int().columns) == [0, 1]
    assert np.max(np.abs((r.conf_int() - ols.conf_int()).to_numpy() / ols.bse.to_numpy()[:, None])) < 1e-3
    assert r.nobs == ols.nobs and r.df_resid == ols.df_resid and r.df_model == ols.df_model
    assert r.rsquared == pytest.approx(ols.rsquared, abs=1e-5)
    assert r.rsquared_adj == pytest.approx(ols.rsquared_adj, abs=1e-5)
    assert r.fvalue == pytest.approx(ols.fvalue, rel=1e-3)
    assert r.f_pvalue == pytest.approx(ols.f_pvalue, rel=1e-2)
    # labels: the coefficient table's header and rows are statsmodels'
    mine = r.summary().tables[0]
    assert (mine.columns, mine.index) == _coef_header(ols.summary())
    assert {k for k, _ in r.summary().info} <= _fact_labels(ols.summary())
    text = str(res.summary())
    for label in ("OLS Regression Results", "Dep. Variable:", "amount", "No. Observations:", "4000",
                  "R-squared:", "Adj. R-squared:", "F-statistic:", "P>|t|", "[0.025", "0.975]", "const"):
        assert label in text, label
    frame = res.to_frame()
    assert list(frame.columns) == ["coef", "std err", "t", "P>|t|", "[0.025", "0.975]"]
    assert frame.loc["hour", "coef"] == r.params["hour"]
    # the raw outputs keep working for existing callers
    assert res["coefficients"][0] == res.outputs["coefficients"][0] == r.params["const"]


def test_logistic_regression_standard_errors_match_statsmodels_logit(banks, logit):
    _, _, pooled = banks
    res = logit
    r = res.result
    assert isinstance(r, LogitResult)
    assert "std_errors -> all recipients" in res.revealed
    assert "std_errors" in res.plan_text and "diag of the inverse Hessian" in res.plan_text
    logit = sm.Logit(pooled["is_fraud"].astype(float), sm.add_constant(pooled[FEATS].astype(float))).fit(disp=0)
    assert list(r.params.index) == list(logit.params.index) == [INTERCEPT, *FEATS]
    np.testing.assert_allclose(r.params, logit.params, rtol=5e-3)  # as tests/analytics/test_logistic.py
    # the stated accuracy of the standard errors: relative INVERSE_TOLERANCE (the guarded inverse
    # of the last Newton step's Hessian, at 20 bits; the skewed, wide-bounded amount measured 1.02%)
    np.testing.assert_allclose(r.bse, logit.bse, rtol=INVERSE_TOLERANCE)
    np.testing.assert_allclose(r.tvalues, logit.tvalues, rtol=INVERSE_TOLERANCE + 5e-3)  # t = b / se
    np.testing.assert_allclose(r.pvalues, logit.pvalues, rtol=0.1, atol=1e-4)
    # b -/+ 1.96 se: the coefficient's error (5e-3 relative, above) plus 1.96 times the se's
    slack = 5e-3 * np.abs(logit.params.to_numpy()) + 1.96 * INVERSE_TOLERANCE * logit.bse.to_numpy()
    assert (np.abs(r.conf_int().to_numpy() - logit.conf_int().to_numpy()) <= slack[:, None] + 1e-9).all()
    assert r.nobs == logit.nobs and r.df_resid == logit.df_resid and r.df_model == logit.df_model
    mine = r.summary().tables[0]
    assert (mine.columns, mine.index) == _coef_header(logit.summary())
    ours = {k for k, _ in r.summary().info}
    assert ours - _fact_labels(logit.summary()) == {"Iterations", "Penalty (C)"}  # statsmodels' labels, and two more
    text = str(r.summary())
    assert "Logit Regression Results" in text and "P>|z|" in text and "log-likelihood" in text  # a note: not released


def test_logistic_inference_false_releases_no_standard_errors(banks):
    frames, schema, _ = banks
    small = {n: df.iloc[:600] for n, df in frames.items()}
    res = run_local("logistic_regression", small, schema, features=["merchant_risk"], target="is_fraud",
                    inference=False, C=1.0, iterations=6, runtime="threads", protocol="rep3")
    assert "std_errors" not in res.outputs and not any(r.startswith("std_errors") for r in res.revealed)
    assert res.result.bse is None and res.result.pvalues is None
    assert list(res.to_frame().columns) == ["coef"]
    assert "standard errors were not released" in str(res.summary())
    # the DP variant never releases them (they would carry no noise): it has no such parameter
    _, _, plan = plan_analysis("dp_logistic_regression", None, {"features": ["merchant_risk"], "target": "is_fraud",
                                                                 "epsilon": 1.0}, banks[1], "horizontal", ["a", "b"])
    assert "std_errors" not in [r.name for r in plan.release]


def test_ttest_result_matches_scipy(banks):
    _, _, pooled = banks
    res = _run(banks, "ttest", value="amount", group="is_fraud")
    r = res.result
    a, b = pooled.amount[pooled.is_fraud], pooled.amount[~pooled.is_fraud]
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-5)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-4)
    assert r.df == pytest.approx(ref.df, rel=1e-4)
    assert r.mean_true == pytest.approx(a.mean(), rel=1e-9) and r.mean_false == pytest.approx(b.mean(), rel=1e-9)
    ci, ref_ci = r.confidence_interval(0.9), ref.confidence_interval(0.9)
    assert ci.low == pytest.approx(ref_ci.low, rel=1e-4) and ci.high == pytest.approx(ref_ci.high, rel=1e-4)
    assert "mean_true, mean_false -> all recipients" in res.revealed
    text = str(r.summary())
    assert "is_fraud = True" in text and "[0.025" in text and "Welch" in text


def test_chi2_result_matches_scipy_with_the_expected_table(banks):
    _, schema, pooled = banks
    res = _run(banks, "chi2", row="channel", column="is_fraud")
    r = res.result
    levels = list(schema.column("channel").levels)
    table = pd.crosstab(pooled.channel, pooled.is_fraud).reindex(levels)  # the schema's level order
    ref = stats.chi2_contingency(table.to_numpy(), correction=False)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-4)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-3)
    assert r.dof == ref.dof
    np.testing.assert_allclose(r.expected_freq, ref.expected_freq, rtol=1e-12)
    expected = r.expected()
    assert list(expected.index) == levels and list(expected.columns) == ["False", "True"]
    pd.testing.assert_frame_equal(expected, pd.DataFrame(ref.expected_freq, index=levels, columns=["False", "True"]),
                                  check_names=False)
    assert "row_totals, column_totals -> all recipients" in res.revealed
    assert "Expected counts under independence" in str(r.summary())


def test_correlation_covariance_and_describe_are_frames_like_pandas(banks):
    _, _, pooled = banks
    cols = ["amount", "hour"]
    corr = _run(banks, "correlation", columns=cols)
    pd.testing.assert_frame_equal(corr.to_frame(), pooled[cols].astype(float).corr(), atol=1e-5)
    cov = _run(banks, "covariance", columns=cols).result
    pd.testing.assert_frame_equal(cov.matrix, pooled[cols].astype(float).cov(), rtol=1e-5)
    assert repr(cov) == "<MatrixResult covariance v1.0: 2 x 2, n=4000>"
    desc = _run(banks, "describe", columns=cols).to_frame()
    ref = pooled[cols].astype(float).describe()
    pd.testing.assert_frame_equal(desc.loc[["count", "mean", "std"]], ref.loc[["count", "mean", "std"]], rtol=1e-6)


def test_meta_analysis_result_has_the_pooled_models_only():
    frames, schema, _ = hospital_trials(seed=12)
    res = run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", runtime="threads")
    f = res.to_frame()
    assert list(f.index) == ["fixed (inverse variance)", "random (DerSimonian-Laird)"]
    assert list(f.columns) == ["effect", "std err", "z", "P>|z|", "[0.025", "0.975]"]
    assert f.iloc[0, 0] == res["fixed_effect"] and tuple(f.iloc[1, 4:]) == pytest.approx(res["random_ci"])
    assert not any(name in str(res.summary()) for name in frames)  # no study is named, none estimated


def test_results_are_json_plain_short_and_html(logit):
    res = logit
    d = res.to_dict()
    text = json.dumps(d, allow_nan=False)
    assert "__ndarray__" not in text and isinstance(d["outputs"]["coefficients"], list)
    assert d["revealed"] == res.revealed
    for shown in (repr(res), repr(res.result)):
        assert "\n" not in shown and len(shown) < 160 and "secure stage" not in shown
    assert res.result.plan == res.plan_text and res.result.revealed == res.revealed
    assert "<table" in res._repr_html_() and "P&gt;|z|" in res._repr_html_()
    assert plain({"a": np.array([1.0, np.nan]), "b": (np.int64(2), float("inf"))}) == {"a": [1.0, None], "b": [2, None]}


def test_every_registered_analysis_has_a_result_type_and_a_generic_default():
    for name in analytics.available():
        assert issubclass(analytics.get(name).result_type, Result), name
    generic = Result("x", "1.0", {"n": 3, "stats": {"a": 1.5}}, {}, revealed=["n -> all recipients"])
    assert "stats.a" in str(generic.summary()) and repr(generic) == "<Result x v1.0: n=3, stats.a=1.5000>"
    assert generic.to_frame().loc["n", "value"] == 3
