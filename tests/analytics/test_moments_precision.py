"""Moments under conservative declared bounds (issue #14): the statisticians' cases.

Data whose spread is tiny next to its declared range (values near 1e5 with a spread of 1 to 10
under bounds [0, 1e6] or [-1e7, 1e7]; values in [0, 3] under [0, 1e4]) must come back within
the accuracy that each plan states (``plan.meta["accuracy"]``: ``|error| <= abs + rel * |value|``),
for rep3 and semi2k with two and three parties, against numpy/scipy on the pooled data. Edges:
an empty party, one row in total (variances NaN with the count, as numpy's ``ddof=1``), zero rows.
"""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tessera.data.schema import Column, Schema
from tessera.errors import PlanError
from tessera.execution.steps import plan_analysis as make_plan
from tessera.jobs.local import run_local

#: (protocol, number of parties)
SETUPS = [("rep3", 3), ("semi2k", 2), ("semi2k", 3)]
BOUNDS = [(0.0, 1e6), (-1e7, 1e7)]




def _split(df: pd.DataFrame, k: int, empty: bool = False) -> dict[str, pd.DataFrame]:
    """``k`` parties with unequal shares of the rows; with ``empty`` the last one has none."""
    n = len(df)
    if empty:
        cuts = [0, *[n * (i + 1) // (k - 1) for i in range(k - 1)], n]
    else:
        cuts = [0, *[n * (i + 2) // (k + 2) for i in range(k - 1)], n]
    return {f"p{i}": df.iloc[cuts[i]:cuts[i + 1]].reset_index(drop=True) for i in range(k)}


def _near_1e5(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = 1e5 + rng.uniform(1, 10, n)             # spread 1..10
    y = 1e5 + 0.7 * (x - 1e5) + rng.normal(0, 1, n)
    k = rng.integers(0, 10, n)                   # whole numbers 0..9
    return pd.DataFrame({"x": x, "y": y, "k": k})


def _schema(lo: float, hi: float) -> Schema:
    return Schema(columns=(Column(name="x", type="float", min=lo, max=hi),
                           Column(name="y", type="float", min=lo, max=hi),
                           Column(name="k", type="int", min=0, max=1000)))


def _acc(analysis: str, schema: Schema, parties: int, **params) -> dict:
    _, _, plan = make_plan(analysis, None, params, schema, "horizontal", [f"p{i}" for i in range(parties)])
    return plan.meta["accuracy"]


def _within(got: float, want: float, acc: dict, what: str) -> None:
    bound = acc["abs"] + acc["rel"] * abs(want)
    assert abs(got - want) <= bound, f"{what}: {got!r} vs {want!r}, error {abs(got - want):.3g} > stated {bound:.3g}"


@pytest.mark.parametrize("lo, hi", BOUNDS)
@pytest.mark.parametrize("protocol, k", SETUPS)
def test_describe_keeps_precision_under_wide_bounds(protocol, k, lo, hi):
    df = _near_1e5(3000, seed=k)
    schema = _schema(lo, hi)
    res = run_local("describe", _split(df, k), schema, columns=["x", "y", "k"], protocol=protocol, runtime="threads",
                    extremes=True)
    out = res.outputs
    acc = _acc("describe", schema, k, columns=["x", "y", "k"], extremes=True)
    assert out["count"] == len(df)
    for c in ("x", "y"):
        ref = df[c].to_numpy()
        for stat, want in [("mean", ref.mean()), ("var", ref.var(ddof=1)), ("std", ref.std(ddof=1)),
                           ("sum", ref.sum()), ("min", ref.min()), ("max", ref.max())]:
            _within(out[c][stat], want, acc[f"{stat}[{c}]"], f"{stat}[{c}]")
        # the stated bound is itself useful here: a variance of ~7 known to better than 1%
        assert acc[f"var[{c}]"]["abs"] < 0.01 * ref.var(ddof=1)
    assert out["k"]["min"] == 0 and out["k"]["max"] == 9  # whole numbers come back exact
    assert out["k"]["var"] == pytest.approx(df.k.var(), rel=1e-9)
    assert "accuracy" in res.plan_text


@pytest.mark.parametrize("lo, hi", BOUNDS)
@pytest.mark.parametrize("protocol, k", SETUPS)
def test_covariance_and_correlation_keep_precision(protocol, k, lo, hi):
    df = _near_1e5(3000, seed=10 + k)
    schema = _schema(lo, hi)
    frames = _split(df, k)
    cols = ["x", "y"]
    ref = df[cols].to_numpy()
    cov = run_local("covariance", frames, schema, columns=cols, protocol=protocol, runtime="threads")["covariance"]
    acc = _acc("covariance", schema, k, columns=cols)["covariance"]
    want = np.cov(ref.T)
    sd = np.sqrt(np.diag(want))  # the stated bound: abs + rel * (var_i + var_j) / 2 (equal half-ranges here)
    for i in range(2):
        for j in range(2):
            _within(cov[i][j], want[i, j], {"abs": acc["abs"], "rel": acc["rel_var"] * (sd[i] ** 2 + sd[j] ** 2) / 2 / max(abs(want[i, j]), 1e-300)},
                    f"cov[{i},{j}]")
    corr = np.asarray(run_local("correlation", frames, schema, columns=cols, protocol=protocol, runtime="threads")["correlation"])
    racc = _acc("correlation", schema, k, columns=cols)["correlation"]
    rwant = np.corrcoef(ref.T)
    # the correlation's bound depends on the columns' spread relative to their half-ranges
    rel_var = min(want[i, i] / ((hi - lo) / 2) ** 2 for i in range(2))
    bound = racc["abs"] + racc["per_relative_variance"] / rel_var + racc["per_relative_sd"] / math.sqrt(rel_var)
    assert np.abs(corr - rwant).max() <= bound, (corr, rwant, bound)
    assert bound < 1e-2  # sd ~2.6 under a half-range of 1e7: still known to better than 0.01
    np.testing.assert_array_equal(corr, corr.T)
    np.testing.assert_array_equal(np.diag(corr), 1.0)
    assert np.abs(corr).max() <= 1.0


@pytest.mark.parametrize("protocol, k", SETUPS)
def test_welch_ttest_on_small_values_under_wide_bounds(protocol, k):
    rng = np.random.default_rng(20 + k)
    n = 2000
    g = rng.random(n) < 0.4
    v = np.clip(rng.uniform(0, 3, n) + 0.1 * g, 0, 3)
    df = pd.DataFrame({"v": v, "g": g})
    schema = Schema(columns=(Column(name="v", type="float", min=0, max=1e4), Column(name="g", type="bool")))
    out = run_local("ttest", _split(df, k), schema, value="v", group="g", protocol=protocol, runtime="threads").outputs
    ref = stats.ttest_ind(v[g], v[~g], equal_var=False)
    acc = _acc("ttest", schema, k, value="v", group="g")
    s = (v[g].var(ddof=1) * (~g).sum() + v[~g].var(ddof=1) * g.sum()) / n / 5e3**2  # the plan's s
    t_bound = ((acc["t"]["rel"] + acc["t"]["rel_per_s"] / s) * abs(ref.statistic)
               + acc["t"]["abs_per_sqrt_s"] / math.sqrt(s))
    assert abs(out["t"] - ref.statistic) <= t_bound
    assert t_bound < 1e-3 * abs(ref.statistic)
    _within(out["df"], ref.df, {"abs": 0.0, "rel": acc["df"]["rel"] + acc["df"]["rel_per_s"] / s}, "df")
    assert out["p_value"] == pytest.approx(ref.pvalue, rel=1e-3)
    assert (out["n_true"], out["n_false"]) == (int(g.sum()), int((~g).sum()))


@pytest.mark.parametrize("protocol, k", SETUPS)
def test_an_empty_party_changes_nothing(protocol, k):
    df = _near_1e5(1500, seed=30 + k)
    schema = _schema(0.0, 1e6)
    frames = _split(df, k, empty=True)
    assert len(frames[f"p{k - 1}"]) == 0
    out = run_local("describe", frames, schema, columns=["x", "k"], protocol=protocol, runtime="threads",
                    extremes=True).outputs
    assert out["count"] == len(df)
    assert out["x"]["var"] == pytest.approx(df.x.var(), rel=1e-4)
    assert out["x"]["min"] == pytest.approx(df.x.min(), abs=1e-6)
    assert out["k"]["max"] == df.k.max()
    cov = run_local("covariance", frames, schema, columns=["x", "y"], protocol=protocol, runtime="threads")["covariance"]
    np.testing.assert_allclose(cov, np.cov(df[["x", "y"]].to_numpy().T), rtol=1e-4)
    corr = run_local("correlation", frames, schema, columns=["x", "y"], protocol=protocol, runtime="threads")["correlation"]
    np.testing.assert_allclose(corr, np.corrcoef(df[["x", "y"]].to_numpy().T), atol=1e-5)
    df2 = df.assign(g=df.k < 4)
    schema2 = Schema(columns=(*schema.columns, Column(name="g", type="bool")))
    out = run_local("ttest", _split(df2, k, empty=True), schema2, value="x", group="g", protocol=protocol,
                    runtime="threads").outputs
    ref = stats.ttest_ind(df2.x[df2.g], df2.x[~df2.g], equal_var=False)
    assert out["t"] == pytest.approx(ref.statistic, rel=1e-4, abs=1e-4)
    assert out["df"] == pytest.approx(ref.df, rel=1e-4)


@pytest.mark.parametrize("protocol, k", [("rep3", 3), ("semi2k", 2)])
def test_one_row_in_total_gives_nan_variances_with_the_count(protocol, k):
    """numpy's ddof=1 convention: one row has a mean but no sample variance (NaN), not 0."""
    df = _near_1e5(1, seed=1)
    schema = _schema(0.0, 1e6)
    frames = {f"p{i}": (df if i == 0 else df.iloc[:0]) for i in range(k)}
    out = run_local("describe", frames, schema, columns=["x", "k"], protocol=protocol, runtime="threads",
                    extremes=True).outputs
    assert out["count"] == 1
    assert out["x"]["mean"] == pytest.approx(df.x[0], abs=1e-6)
    assert out["x"]["min"] == pytest.approx(df.x[0], abs=1e-6) and out["x"]["max"] == pytest.approx(df.x[0], abs=1e-6)
    assert out["k"]["min"] == out["k"]["max"] == df.k[0]
    assert math.isnan(out["x"]["var"]) and math.isnan(out["x"]["std"])
    res = run_local("covariance", frames, schema, columns=["x", "y"], protocol=protocol, runtime="threads").outputs
    assert res["count"] == 1 and np.isnan(res["covariance"]).all()
    res = run_local("correlation", frames, schema, columns=["x", "y"], protocol=protocol, runtime="threads").outputs
    assert res["count"] == 1 and np.isnan(res["correlation"]).all()


@pytest.mark.parametrize("protocol, k", [("rep3", 3), ("semi2k", 2)])
def test_zero_rows_in_total_give_nan_with_the_count(protocol, k):
    df = _near_1e5(1, seed=1).iloc[:0]
    schema = _schema(0.0, 1e6)
    frames = {f"p{i}": df for i in range(k)}
    out = run_local("describe", frames, schema, columns=["x", "k"], protocol=protocol, runtime="threads",
                    extremes=True).outputs
    assert out["count"] == 0
    for c in ("x", "k"):
        assert out[c]["sum"] == 0.0
        for stat in ("mean", "var", "std", "min", "max"):
            assert math.isnan(out[c][stat]), (c, stat, out[c][stat])
    res = run_local("covariance", frames, schema, columns=["x", "y"], protocol=protocol, runtime="threads").outputs
    assert res["count"] == 0 and np.isnan(res["covariance"]).all()
    res = run_local("correlation", frames, schema, columns=["x", "y"], protocol=protocol, runtime="threads").outputs
    assert res["count"] == 0 and np.isnan(res["correlation"]).all()


@pytest.mark.parametrize("protocol, k", [("rep3", 3), ("semi2k", 2)])
def test_a_constant_column_has_zero_variance_and_nan_correlations(protocol, k):
    df = _near_1e5(600, seed=5).assign(y=123_456.0)
    schema = _schema(0.0, 1e6)
    frames = _split(df, k)
    out = run_local("describe", frames, schema, columns=["y"], protocol=protocol, runtime="threads",
                    extremes=True).outputs
    acc = _acc("describe", schema, k, columns=["y"])
    assert 0.0 <= out["y"]["var"] <= acc["var[y]"]["abs"]
    corr = np.asarray(run_local("correlation", frames, schema, columns=["x", "y"], protocol=protocol,
                                runtime="threads")["correlation"])
    assert corr[0, 0] == 1.0 and np.isnan(corr[1]).all() and np.isnan(corr[:, 1]).all()  # as numpy.corrcoef


@pytest.mark.parametrize("analysis, params", [
    ("describe", {"columns": ["x"], "extremes": True}), ("covariance", {"columns": ["x", "y"]}),
    ("correlation", {"columns": ["x", "y"]}), ("ttest", {"value": "x", "group": "g"})])
def test_explain_states_the_accuracy_of_every_release(analysis, params):
    schema = Schema(columns=(*_schema(0.0, 1e6).columns, Column(name="g", type="bool")))
    _, _, plan = make_plan(analysis, None, params, schema, "horizontal", ["a", "b", "c"])
    text = plan.explain()
    for r in plan.release:
        if r.name not in ("count", "n_true, n_false", "p_value"):
            assert "accuracy: |error| <=" in r.description, r
            assert r.description in text
    with pytest.raises(PlanError, match="at most 64 parties"):
        make_plan(analysis, None, params, schema, "horizontal", [f"p{i}" for i in range(65)])


@pytest.mark.parametrize("protocol", ["semi2k", "rep3"])
def test_vertical_describe_in_intersection_mode_keeps_precision(protocol):
    """Vertically (PSI intersection mode) each column's holder knows its aligned rows, so describe
    pools the holders' centred moments as horizontally; the plan states the weaker aligned-mode
    bound, and the result is as good as horizontally."""
    rng = np.random.default_rng(7)
    n = 1200
    ids = np.arange(n)
    names = ["a", "b", "c"][: 3 if protocol == "rep3" else 2]
    frames = {}
    for j, name in enumerate(names):
        keep = rng.random(n) < 0.8 if j else np.ones(n, dtype=bool)
        frames[name] = pd.DataFrame({"customer_id": ids[keep], f"x{j}": 1e5 + rng.uniform(1, 10, keep.sum())})
    schema = Schema(columns=(Column(name="customer_id", type="int", min=0, max=10**6),
                             *[Column(name=f"x{j}", type="float", min=-1e7, max=1e7) for j in range(len(names))]))
    cols = [f"x{j}" for j in range(len(names))]
    out = run_local("describe", frames, schema, partition="vertical", protocol=protocol, runtime="threads",
                    join_key="customer_id", psi_mode="intersection",
                    columns=cols, extremes=True).outputs
    join = frames[names[0]]
    for j, name in enumerate(names[1:], start=1):
        join = join.merge(frames[name], on="customer_id")
    assert out["count"] == len(join)
    for c in cols:
        assert out[c]["var"] == pytest.approx(join[c].var(), rel=1e-3)
        assert out[c]["mean"] == pytest.approx(join[c].mean(), abs=1e-6)
        assert out[c]["max"] == pytest.approx(join[c].max(), abs=1e-6)
