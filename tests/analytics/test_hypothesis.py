"""Welch's t-test and the chi-square test of independence (tessera.analytics.hypothesis) against scipy."""

import pandas as pd
import pytest
from scipy import stats

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
