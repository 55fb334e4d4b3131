"""Categorical features one-hot encoded by the plan (Analysis.encode, tessera.data.onehot): indicator
columns col[level] for every level but the first declared one, checked against statsmodels on
pandas get_dummies(drop_first=True), horizontally and vertically."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from tessera.data import Column, ColumnType, Schema, load
from tessera.data.synthetic import bank_transactions
from tessera.errors import DataError, PlanError
from tessera.jobs.local import local_job, run_local
from tessera.jobs.planner import JobRequest, plan_job


def _dummies(df: pd.DataFrame, features: list[str], schema: Schema) -> pd.DataFrame:
    """pandas' one-hot encoding (first declared level dropped), columns named as Tessera names them."""
    cat = {c: pd.Categorical(df[c], categories=schema.column(c).levels) for c in features
           if schema.column(c).type is ColumnType.CATEGORY}
    x = pd.get_dummies(df[features].assign(**cat), drop_first=True, dtype=float, prefix_sep="\0")
    x.columns = [f"{c.split(chr(0))[0]}[{c.split(chr(0))[1]}]" if "\0" in c else c for c in x.columns]
    order = [n for f in features for n in ([f] if f not in cat else [f"{f}[{lv}]" for lv in schema.column(f).levels[1:]])]
    return x[order]


@pytest.fixture(scope="module")
def banks():
    return bank_transactions(3000, seed=11)


def test_linear_regression_on_a_categorical_feature_matches_statsmodels_on_get_dummies(banks):
    frames, schema, _ = banks
    feats = ["merchant_risk", "channel", "hour"]
    res = run_local("linear_regression", frames, schema, runtime="threads", features=feats, target="amount")
    df = pd.concat(frames.values())
    x = _dummies(df, feats, schema)
    assert list(x.columns) == ["merchant_risk", "channel[pos]", "channel[atm]", "hour"]
    ols = sm.OLS(df["amount"].to_numpy(), sm.add_constant(x.to_numpy())).fit()
    np.testing.assert_allclose(res["coefficients"], ols.params, rtol=1e-3, atol=1e-2)
    np.testing.assert_allclose(res["std_errors"], ols.bse, rtol=1e-3)
    assert res.job is not None and res.job.params["features"] == list(x.columns)
    assert res.job.plan["columns"] == [*x.columns, "amount"]
    assert ("note: feature 'channel' (categorical) is one-hot encoded as channel[pos], channel[atm]; reference "
            "level 'online' (the first declared level: its rows have every indicator 0)") in res.plan_text


def test_logistic_regression_on_a_categorical_feature_matches_statsmodels_logit(banks):
    frames, schema, _ = banks
    feats = ["channel", "merchant_risk"]
    res = run_local("logistic_regression", frames, schema, runtime="threads", features=feats, target="is_fraud")
    df = pd.concat(frames.values())
    x = _dummies(df, feats, schema)
    logit = sm.Logit(df["is_fraud"].astype(float).to_numpy(), sm.add_constant(x.to_numpy())).fit(disp=0)
    np.testing.assert_allclose(res["coefficients"], logit.params, atol=5e-3)


def test_vertical_regression_encodes_the_holders_categorical_column(banks):
    frames, schema, _ = banks
    df = frames["bank_a"].reset_index(drop=True).iloc[:400]
    a, b = df[["channel", "merchant_risk"]], df[["amount"]]  # aligned rows, split by columns
    res = run_local("linear_regression", {"bank_a": a, "bank_b": b}, schema, runtime="threads",
                    partition="vertical", features=["channel", "merchant_risk"], target="amount")
    x = _dummies(df, ["channel", "merchant_risk"], schema)
    ols = sm.OLS(df["amount"].to_numpy(), sm.add_constant(x.to_numpy())).fit()
    np.testing.assert_allclose(res["coefficients"], ols.params, rtol=2e-3, atol=0.5)
    assert res.job is not None
    assert res.job.holders == {"channel[pos]": ["bank_a"], "channel[atm]": ["bank_a"], "merchant_risk": ["bank_a"],
                               "amount": ["bank_b"]}


def test_the_local_engine_loads_indicators_after_checking_the_categorical_column():
    schema = Schema(columns=(Column(name="g", type=ColumnType.CATEGORY, levels=("a", "b", "c"), nullable=True),
                             Column(name="x", type=ColumnType.FLOAT, min=0, max=10)))
    df = pd.DataFrame({"g": ["b", None, "c", "a"], "x": [1.0, 2.0, 3.0, 4.0]})
    with load(df, schema, ["x", "g[b]", "g[c]"]) as t:
        assert t.columns == ["x", "g[b]", "g[c]"]
        assert t.schema.column("g[b]") == Column(name="g[b]", type=ColumnType.BOOL, nullable=True)
        got = t.arrays(nulls="keep")
        np.testing.assert_array_equal(got["g[b]"], [1.0, np.nan, 0.0, 0.0])
        np.testing.assert_array_equal(got["g[c]"], [0.0, np.nan, 1.0, 0.0])
        assert t.sums().count == 3 and t.sums().dropped == 1
    bad = pd.DataFrame({"g": ["b", "z"], "x": [1.0, 2.0]})
    with pytest.raises(DataError, match="column 'g': 1 row with a value that is not one of the 3 declared levels"):
        load(bad, schema, ["g[b]"])
    with pytest.raises(DataError, match=r"columns \['g\[z\]'\] are not in the schema"):
        load(df, schema, ["g[z]"])


def test_encoding_refusals_name_the_problem(banks):
    frames, schema, _ = banks
    one = Schema(columns=(*schema.columns, Column(name="region", type=ColumnType.CATEGORY, levels=("eu",))))
    with pytest.raises(PlanError, match="feature 'region' is categorical with one level \\('eu'\\)"):
        local_job("linear_regression", frames, one, protocol="semi2k", params={"features": ["region"], "target": "amount"})
    with pytest.raises(PlanError, match="column 'channel' is categorical; this analysis needs numeric columns"):
        local_job("describe", frames, schema, protocol="semi2k", params={"columns": ["channel"]})
    # a categorical target is not encoded (a regression's target stays one numeric column)
    with pytest.raises(PlanError, match="column 'channel' is categorical"):
        local_job("linear_regression", frames, schema, protocol="semi2k",
                  params={"features": ["amount"], "target": "channel"})


def test_a_contract_job_declares_the_categorical_column_not_its_indicators(banks):
    """The planner checks the columns an indicator reads (the contract's job declares ``channel``)."""
    frames, schema, _ = banks
    job = local_job("linear_regression", frames, schema, protocol="rep3",
                    params={"features": ["channel", "merchant_risk"], "target": "amount"})
    request = JobRequest(job_id="j1", analysis="linear_regression", version=None,
                         params={"features": ["channel", "merchant_risk"], "target": "amount"}, schema=schema,
                         partition="horizontal", protocol="rep3", roles=job.roles,
                         declared_columns=["channel", "merchant_risk", "amount"])
    planned = plan_job(request)
    assert planned.plan["columns"] == ["channel[pos]", "channel[atm]", "merchant_risk", "amount"]
    assert planned.schema_ == schema  # the parties load the dataset's own columns
    with pytest.raises(PlanError, match=r"the analysis reads columns \['channel'\] that the job does not declare"):
        plan_job(replace(request, declared_columns=["merchant_risk", "amount"]))
