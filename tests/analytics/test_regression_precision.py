"""linear_regression is right within its stated accuracy under wide, conservative bounds, or
stopped by its declared guard (issue #14): the statisticians' cases as regression tests."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.linear_model import Ridge

from tessera.analytics import get
from tessera.analytics.regression import coefficient_accuracy
from tessera.data.schema import Column, Schema
from tessera.errors import GuardFailed, PlanError
from tessera.jobs.local import run_local

PROTOCOLS = ["rep3", "semi2k"]


def _frames(df: pd.DataFrame, cuts=(0.5, 0.8)) -> dict[str, pd.DataFrame]:
    n = len(df)
    a, b = int(cuts[0] * n), int(cuts[1] * n)
    return {"p0": df.iloc[:a], "p1": df.iloc[a:b], "p2": df.iloc[b:]}


def _schema(bounds: dict[str, tuple[float, float]]) -> Schema:
    return Schema(columns=tuple(Column(name=c, type="float", min=lo, max=hi) for c, (lo, hi) in bounds.items()))


def _fit(frames, schema, feats, protocol="rep3", **kw):
    return run_local("linear_regression", frames, schema, features=feats, target="y", protocol=protocol,
                     runtime="threads", **kw)


def _accuracy(schema, feats, **kw):
    a = get("linear_regression")
    return a.plan(schema, a.parse_params({"features": feats, "target": "y", **kw}), "horizontal",
                  ["p0", "p1", "p2"]).meta["accuracy"]


def _halves(schema: Schema) -> dict[str, float]:
    return {c.name: (c.max - c.min) / 2 for c in schema.columns}


def _check_against_statsmodels(out, df, feats, plan_acc, sd_rel=1e-3, se_frac=1e-3, halves=None):
    """Every release within its stated accuracy, and far better than it: ``se_frac`` of a
    standard error for the coefficients. ``halves``: the columns' declared half-ranges (1)."""
    ref = sm.OLS(df["y"], sm.add_constant(df[feats])).fit()
    eps = plan_acc["coefficients"]["per_sd_ratio"]
    sd_y = df["y"].std()
    for j, c in enumerate(feats, start=1):
        bound = eps * sd_y / df[c].std()
        assert abs(out["coefficients"][j] - ref.params[c]) <= bound, c
        # and far better than the worst case: a tiny fraction of a standard error
        assert abs(out["coefficients"][j] - ref.params[c]) <= se_frac * ref.bse[c], c
    assert abs(out["coefficients"][0] - ref.params["const"]) <= se_frac * ref.bse["const"]
    np.testing.assert_allclose(out["std_errors"], ref.bse.to_numpy(), rtol=sd_rel)
    # t = beta / se: its error is relative (from se) plus the coefficient's error over se, which
    # the checks above bound by 1e-3 (so an intercept with |t| < 1 is off by up to 1e-3 absolute)
    np.testing.assert_allclose(out["t"], ref.tvalues.to_numpy(), rtol=sd_rel, atol=1e-3)
    halves = halves or {}  # scaled units: the population variance over the half-range squared
    v_min = min(df[c].var(ddof=0) / halves.get(c, 1.0) ** 2 for c in [*feats, "y"])
    r2_acc = plan_acc["r2"]
    assert abs(out["r2"] - ref.rsquared) <= r2_acc["abs"] + r2_acc["per_min_variance"] / v_min
    assert out["r2"] == pytest.approx(ref.rsquared, abs=1e-4)
    assert out["n"] == len(df)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_feature_whose_spread_is_tiny_next_to_its_bounds(protocol):
    """x near 1e5 with spread 10, bounds [0, 1e6]: the slope was off by hundreds of SEs."""
    rng = np.random.default_rng(5)
    n = 20_000
    x1 = 1e5 + rng.uniform(0, 10, n)
    x2 = rng.normal(50, 20, n).clip(0, 100)
    y = 7 + 3 * x1 - 0.5 * x2 + rng.normal(0, 1, n)
    df = pd.DataFrame({"x1": x1, "x2": x2, "y": y})
    schema = _schema({"x1": (0, 1e6), "x2": (0, 100), "y": (0, 4e6)})
    res = _fit(_frames(df), schema, ["x1", "x2"], protocol)
    _check_against_statsmodels(res.outputs, df, ["x1", "x2"], _accuracy(schema, ["x1", "x2"]), halves=_halves(schema))


def test_spreads_down_to_a_millionth_of_the_half_range():
    rng = np.random.default_rng(8)
    n = 5_000
    for spread in (1e-2, 1e-4, 1e-6):
        x = 0.3 + spread * rng.normal(size=n)
        y = 0.1 + 2.0 * (x - 0.3) / spread * 1e-3 + 1e-3 * rng.normal(size=n)  # y's spread ~ 1e-3 of its range
        df = pd.DataFrame({"x": x, "y": y})
        schema = _schema({"x": (-1, 1), "y": (-1, 1)})
        res = _fit(_frames(df), schema, ["x"])
        # at a millionth of the half-range the pooled moments' 2^-58 resolution is ~1e-5 of the
        # variance: coefficients were measured up to 0.7e-3 standard errors off (0.18 of the stated bound)
        _check_against_statsmodels(res.outputs, df, ["x"], _accuracy(schema, ["x"]), se_frac=3e-3,
                                   halves=_halves(schema))


def test_ridge_under_wide_bounds_matches_sklearn():
    rng = np.random.default_rng(2)
    n = 10_000
    x1 = 500 + rng.normal(0, 3, n)
    x2 = rng.uniform(0, 1000, n)
    y = 1 + 4 * x1 + 0.01 * x2 + rng.normal(0, 2, n)
    df = pd.DataFrame({"x1": x1, "x2": x2, "y": y})
    schema = _schema({"x1": (0, 1e4), "x2": (0, 1000), "y": (-1e5, 1e5)})
    out = _fit(_frames(df), schema, ["x1", "x2"], ridge=50.0).outputs
    ref = Ridge(alpha=50.0).fit(df[["x1", "x2"]], df["y"])
    np.testing.assert_allclose(out["coefficients"][1:], ref.coef_, rtol=1e-5)
    # the intercept is extrapolated 500 units from the data: far below its standard error (about 3)
    assert out["coefficients"][0] == pytest.approx(ref.intercept_, abs=1e-2)


def _collinear():
    rng = np.random.default_rng(1)
    n = 3_000
    x1 = rng.normal(size=n).clip(-4, 4)
    return pd.DataFrame({"x1": x1, "x2": 2 * x1 + 1e-5 * rng.normal(size=n), "x3": rng.normal(size=n).clip(-4, 4),
                         "y": x1 + rng.normal(size=n)})


def test_collinear_features_stop_the_job_with_the_cause_and_the_remedy():
    df = _collinear()
    schema = _schema({"x1": (-5, 5), "x2": (-11, 11), "x3": (-5, 5), "y": (-20, 20)})
    with pytest.raises(GuardFailed, match="collinear.*ridge") as err:
        _fit(_frames(df), schema, ["x1", "x2", "x3"])
    assert err.value.guard == "conditioning"
    # ridge is the remedy the message names: it runs
    out = _fit(_frames(df), schema, ["x1", "x2", "x3"], ridge=300.0).outputs
    ref = Ridge(alpha=300.0).fit(df[["x1", "x2", "x3"]], df["y"])
    np.testing.assert_allclose(out["coefficients"], np.concatenate([[ref.intercept_], ref.coef_]), rtol=1e-3, atol=1e-4)


def test_a_constant_feature_or_target_stops_the_job():
    rng = np.random.default_rng(3)
    n = 2_000
    df = pd.DataFrame({"x1": rng.normal(size=n).clip(-4, 4), "x2": np.full(n, 2.0), "y": rng.normal(size=n).clip(-4, 4)})
    schema = _schema({"x1": (-5, 5), "x2": (-5, 5), "y": (-5, 5)})
    with pytest.raises(GuardFailed, match="no variance"):
        _fit(_frames(df), schema, ["x1", "x2"])
    df["y"] = 1.5
    with pytest.raises(GuardFailed, match="target has no variance") as err:
        _fit(_frames(df), schema, ["x1"])
    assert err.value.guard == "target_variance"


def test_too_few_rows_give_nan_and_the_count():
    df = pd.DataFrame({"x1": [1.0, 2.0], "x2": [0.5, 0.1], "y": [3.0, 4.0]})
    schema = _schema({"x1": (-5, 5), "x2": (-5, 5), "y": (-5, 5)})
    out = run_local("linear_regression", {"p0": df.iloc[:1], "p1": df.iloc[1:], "p2": df.iloc[:0]}, schema,
                    features=["x1", "x2"], target="y", runtime="threads").outputs
    assert out["n"] == 2 and np.isnan(out["coefficients"]).all() and np.isnan(out["r2"])


def test_an_empty_party_and_a_single_row_party():
    rng = np.random.default_rng(4)
    n = 4_000
    x = rng.uniform(0, 10, n)
    df = pd.DataFrame({"x": x, "y": 2 * x + rng.normal(size=n)})
    frames = {"p0": df.iloc[:0], "p1": df.iloc[:1], "p2": df.iloc[1:]}
    schema = _schema({"x": (0, 10), "y": (-10, 40)})
    res = run_local("linear_regression", frames, schema, features=["x"], target="y", runtime="threads")
    _check_against_statsmodels(res.outputs, df, ["x"], _accuracy(schema, ["x"]), halves=_halves(schema))


def test_explain_states_the_accuracy_and_the_guard():
    schema = _schema({"x": (0, 1e6), "y": (0, 1e6)})
    plan = get("linear_regression").plan(schema, get("linear_regression").parse_params(
        {"features": ["x"], "target": "y"}), "horizontal", ["a", "b", "c"])
    text = plan.explain()
    assert "guard" in text and "accuracy" in text and "sd(y) / sd(x_j)" in text
    assert plan.meta["accuracy"]["coefficients"]["per_sd_ratio"] == coefficient_accuracy(1, 100.0)


def test_bounds_far_from_zero_are_refused_with_the_remedy():
    schema = _schema({"x": (1e5, 1e5 + 20), "y": (0, 1)})
    a = get("linear_regression")
    with pytest.raises(PlanError, match="shift the column"):
        a.plan(schema, a.parse_params({"features": ["x"], "target": "y"}), "horizontal", ["a", "b", "c"])
