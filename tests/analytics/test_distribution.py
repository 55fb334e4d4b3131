import numpy as np
import pandas as pd
import pytest

from tessera.data.synthetic import bank_transactions
from tessera.jobs.local import run_local


@pytest.fixture(scope="module")
def banks():
    frames, schema, _ = bank_transactions(20_000, seed=2)
    return frames, schema, pd.concat(frames.values())


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_histogram_matches_numpy_and_suppresses_small_bins(banks, protocol):
    frames, schema, pooled = banks
    edges = [0, 50, 100, 200, 500, 1000, 5000, 10000]
    ref = np.histogram(pooled.amount, bins=edges)[0]
    out = run_local("histogram", frames, schema, column="amount", edges=edges, min_bin_count=100,
                    protocol=protocol, runtime="threads").outputs
    for got, want in zip(out["counts"], ref):
        assert got == (want if want >= 100 else None)
    assert out["suppressed"] == [bool(w < 100) for w in ref] and any(out["suppressed"])


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_quantiles_within_the_stated_precision(banks, protocol):
    frames, schema, pooled = banks
    q = [0.1, 0.5, 0.9, 0.99, 1.0]
    out = run_local("quantiles", frames, schema, column="amount", q=q, precision=0.01, protocol=protocol,
                    runtime="threads").outputs
    ref = np.quantile(pooled.amount, q, method="inverted_cdf")
    assert np.all(np.abs(np.array(out["quantiles"]) - ref) <= 0.01)
    assert out["n"] == len(pooled)


@pytest.mark.parametrize("mode", ["intersection", "aligned"])
def test_quantiles_vertically_after_a_psi_within_the_stated_precision(mode):
    """Over shared rows (each row's position on the bisection grid): the same precision."""
    from tessera.data.synthetic import vertical_fraud

    frames, schema, _, join = vertical_fraud(300, overlap=0.6, seed=3)
    q = [0.25, 0.5, 1.0]
    res = run_local("quantiles", frames, schema, column="amount", q=q, precision=0.5, partition="vertical",
                    psi_mode=mode, join_key="customer_id", protocol="semi2k", runtime="threads")
    ref = np.quantile(join.amount, q, method="inverted_cdf")
    assert np.all(np.abs(np.array(res["quantiles"]) - ref) <= 0.5)
    assert res["n"] == len(join)
