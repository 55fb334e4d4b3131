"""Welch's t-test and the chi-square test of independence (tessera.analytics.hypothesis) against scipy."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from tessera.analytics.hypothesis import chi2_accuracy
from tessera.data.schema import Column, Schema
from tessera.data.synthetic import bank_transactions
from tessera.errors import PlanError
from tessera.jobs.local import run_local


@pytest.fixture(scope="module")
def banks():
    frames, schema, truth = bank_transactions(30_000, seed=9)
    return frames, schema, truth, pd.concat(frames.values(), ignore_index=True)


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


def _categorical(n_levels_a: int, n_levels_b: int) -> Schema:
    return Schema(columns=(Column(name="a", type="category", levels=[f"a{i}" for i in range(n_levels_a)]),
                           Column(name="b", type="category", levels=[f"b{i}" for i in range(n_levels_b)])))


def _codes_frames(a: np.ndarray, b: np.ndarray, schema: Schema) -> dict[str, pd.DataFrame]:
    la = schema.column("a").levels
    lb = schema.column("b").levels
    df = pd.DataFrame({"a": pd.Categorical.from_codes(a, categories=la), "b": pd.Categorical.from_codes(b, categories=lb)})
    n = len(df)
    return {"p0": df.iloc[: n // 2], "p1": df.iloc[n // 2: 3 * n // 4], "p2": df.iloc[3 * n // 4:]}


@pytest.mark.parametrize("n", [100_000, 400_000])
def test_chi2_of_a_strong_association_in_many_rows(n):
    """Issue #14: a strong association in 100k-400k rows came back small or negative with p = 1."""
    rng = np.random.default_rng(n)
    a = rng.integers(0, 3, n)
    b = np.where(rng.random(n) < 0.7, a, rng.integers(0, 4, n))  # b mostly follows a
    schema = _categorical(3, 4)
    res = run_local("chi2", _codes_frames(a, b, schema), schema, row="a", column="b", runtime="threads")
    table = np.zeros((3, 4))
    np.add.at(table, (a, b), 1)
    ref = stats.chi2_contingency(table, correction=False)
    acc = chi2_accuracy(10**9, 3, 4)
    assert ref.statistic > 1e5
    assert abs(res["chi2"] - ref.statistic) <= acc["rel"] * ref.statistic + n * 12 * 2.0**-26
    assert res["dof"] == 6 and res["p_value"] == pytest.approx(ref.pvalue, abs=1e-12)


def test_chi2_leaves_out_levels_that_never_occur_as_scipy_requires():
    rng = np.random.default_rng(4)
    n = 20_000
    a = rng.integers(0, 3, n)  # level a3 never occurs
    b = (a + rng.integers(0, 2, n)) % 3  # level b3 never occurs
    schema = _categorical(4, 4)
    res = run_local("chi2", _codes_frames(a, b, schema), schema, row="a", column="b", runtime="threads")
    table = np.zeros((3, 3))
    np.add.at(table, (a, b), 1)
    ref = stats.chi2_contingency(table, correction=False)
    assert res["levels"] == (3, 3) and res["dof"] == ref.dof == 4
    assert res["chi2"] == pytest.approx(ref.statistic, rel=1e-5)
    assert res["p_value"] == pytest.approx(ref.pvalue, rel=1e-4, abs=1e-300)


def test_chi2_of_a_single_occurring_level_is_no_test():
    n = 1_000
    schema = _categorical(2, 2)
    res = run_local("chi2", _codes_frames(np.zeros(n, dtype=int), np.arange(n) % 2, schema), schema, row="a",
                    column="b", runtime="threads")
    assert res["dof"] == 0 and res["chi2"] == 0.0 and res["p_value"] == 1.0


def test_welch_ttest_vertically_after_a_psi_matches_scipy():
    """The value at one bank, the group at the other: the secure stage runs on their shared
    columns of the common rows (``secure_rows``, 28 bits) within the vertical plan's accuracy."""
    from tessera.data.synthetic import vertical_fraud

    frames, schema, _, join = vertical_fraud(1_500, overlap=0.6, seed=3)
    res = run_local("ttest", frames, schema, value="amount", group="is_fraud", partition="vertical",
                    psi_mode="intersection", join_key="customer_id", protocol="semi2k", runtime="threads")
    g = join.is_fraud.astype(bool)
    x1, x0 = join.amount[g], join.amount[~g]
    ref = stats.ttest_ind(x1, x0, equal_var=False)
    acc = res.job.analysis_plan().meta["accuracy"]
    n = len(join)
    s = (x1.var() * len(x0) + x0.var() * len(x1)) / n / 5000.0**2
    tol = acc["t"]["rel"] * abs(ref.statistic) + acc["t"]["rel_per_s"] * abs(ref.statistic) / s + \
        acc["t"]["abs_per_sqrt_s"] / np.sqrt(s)
    assert abs(res["t"] - ref.statistic) <= tol
    assert res["df"] == pytest.approx(ref.df, rel=acc["df"]["rel"] + acc["df"]["rel_per_s"] / s)
    assert abs(res["mean_true"] - x1.mean()) <= acc["means"]["abs"]
    assert res.per_party["bank_a"]["psi_size"] == n
