"""Vertical jobs in PSI ``aligned`` mode: the joined rows exist only as secret shares.

Every result is compared with its plaintext reference on the true join (numpy, statsmodels,
scikit-learn; tolerances stated per check). The PSI results are intercepted to check that no
party was told which of its rows are common.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn.linear_model import LogisticRegression

import tessera.psi as psi_api
from tessera import analytics
from tessera.data.synthetic import vertical_fraud
from tessera.errors import PlanError
from tessera.jobs.local import run_local

FEATS = ["amount", "merchant_risk", "hour", "account_age_days"]


@pytest.fixture(scope="module")
def banks():
    return vertical_fraud(3_000, overlap=0.6, seed=3)


@pytest.fixture
def psi_results(monkeypatch):
    """Every PsiResult the party programs got (threads runtime: same process)."""
    seen = []
    real = psi_api.run_psi  # imported where a PSI runs (tessera.execution.psi.align)

    def spy(*args, **kwargs):
        res = real(*args, **kwargs)
        seen.append(res)
        return res

    monkeypatch.setattr(psi_api, "run_psi", spy)
    return seen


def run(frames, analysis, schema, *, protocol="semi2k", runtime="threads", mode="aligned", **params):
    return run_local(analysis, frames, schema, partition="vertical", protocol=protocol, runtime=runtime,
                     join_key="customer_id", psi_mode=mode, **params)


def close_to(got, ref, rel, se):
    """|got - ref| <= rel |ref| + 0.01 standard errors, elementwise (poorly determined coefficients are judged
    by their SE: the intersection-mode path is off by the same amount, 24-bit fixed point)."""
    got, ref, se = np.asarray(got), np.asarray(ref), np.asarray(se)
    assert (np.abs(got - ref) <= rel * np.abs(ref) + 1e-2 * se).all(), (got, ref)


def check_describe(out, join, cols):
    assert out["count"] == len(join)
    for c in cols:
        ref = join[c].astype(float)
        lo, hi = ref.min(), ref.max()
        half = max(hi - lo, 1.0)
        # sums and means exact up to the 28-bit encoding; variance and std (secure sqrt) to 1e-4
        assert out[c]["sum"] == pytest.approx(ref.sum(), rel=1e-6, abs=1e-3), c
        assert out[c]["mean"] == pytest.approx(ref.mean(), rel=1e-6, abs=1e-6 * half), c
        assert out[c]["var"] == pytest.approx(ref.var(), rel=1e-4, abs=1e-6 * half**2), c
        assert out[c]["std"] == pytest.approx(ref.std(), rel=1e-4, abs=1e-6 * half), c
        assert out[c]["min"] == pytest.approx(lo, abs=1e-6 * half), c
        assert out[c]["max"] == pytest.approx(hi, abs=1e-6 * half), c


def test_aligned_psi_reveals_no_rows_and_the_join_is_right(banks, psi_results):
    frames, schema, _, join = banks
    cols = ["amount", "merchant_risk", "is_fraud"]
    res = run(frames, "correlation", schema, columns=cols)
    # correlation to 1e-4 absolute (28-bit moments, secure inverse square root)
    np.testing.assert_allclose(res["correlation"], np.corrcoef(join[cols].astype(float).to_numpy().T), atol=1e-4)
    assert len(psi_results) == 2
    for r, name in zip(sorted(psi_results, key=lambda r: r.n_rows), ["bank_b", "bank_a"]):
        assert r.mode == "aligned" and r.rows is None  # nobody learns its matching rows
        assert r.size == len(join)  # ... only the count
        al = r.alignment
        assert al is not None and len(al.input_rows) == r.n_distinct == len(frames[name])
        assert all(len(s) == len(join) for s in al.select.values())
    for name in frames:
        assert res.per_party[name]["psi_size"] == len(join)
        assert set(res.per_party[name]) == {"count", "columns", "correlation", "psi_size"}


def test_aligned_linear_regression_matches_statsmodels(banks):
    frames, schema, _, join = banks
    x = ["merchant_risk", "hour", "is_fraud"]
    out = run(frames, "linear_regression", schema, features=x, target="amount").outputs
    ref = sm.OLS(join["amount"], sm.add_constant(join[x].astype(float))).fit()
    assert out["n"] == len(join)
    # 24-bit fixed point and Newton-Schulz: coefficients to 1e-3 relative (or 0.01 SE), SEs to 1e-3
    close_to(out["coefficients"], ref.params.to_numpy(), 1e-3, ref.bse.to_numpy())
    np.testing.assert_allclose(out["std_errors"], ref.bse.to_numpy(), rtol=1e-3)
    assert out["r2"] == pytest.approx(ref.rsquared, abs=1e-4)


def test_aligned_describe_and_logistic_regression(banks):
    frames, schema, _, join = banks
    cols = ["amount", "hour", "is_fraud"]
    check_describe(run(frames, "describe", schema, columns=cols, extremes=True).outputs, join, cols)
    res = run(frames, "logistic_regression", schema, features=FEATS, target="is_fraud")
    ref = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(join[FEATS].astype(float), join["is_fraud"])
    # 20-bit fixed point, 8 Newton steps, secure sigmoid: 1% relative (as the intersection-mode test)
    np.testing.assert_allclose(res["coefficients"], np.concatenate([ref.intercept_, ref.coef_[0]]), rtol=1e-2)
    assert res["n"] == len(join)


def test_describe_is_vertical_in_intersection_mode_too(banks):
    frames, schema, _, join = banks
    cols = ["amount", "merchant_risk", "is_fraud"]
    check_describe(run(frames, "describe", schema, mode="intersection", columns=cols, extremes=True).outputs, join, cols)


@pytest.fixture(scope="module")
def three_banks(banks):
    """Bank A's features split with a third bank C that knows 90% of A's customers plus some of
    its own; the true join is the customers all three know."""
    frames, schema, _, join = banks
    a = frames["bank_a"]
    rng = np.random.default_rng(8)
    c = a[rng.random(len(a)) < 0.9][["customer_id", "hour", "account_age_days"]]
    extra = pd.DataFrame({"customer_id": [f"c-only-{i}" for i in range(300)],
                          "hour": rng.integers(0, 24, 300), "account_age_days": rng.integers(0, 3651, 300)})
    c = pd.concat([c, extra]).sample(frac=1.0, random_state=1).reset_index(drop=True)
    three = {"bank_a": a[["customer_id", "amount", "merchant_risk"]], "bank_b": frames["bank_b"], "bank_c": c}
    truth = join[join["customer_id"].isin(set(c["customer_id"]))].reset_index(drop=True)
    return three, schema, truth


def test_three_parties_rep3(three_banks, psi_results):
    frames, schema, join = three_banks
    x = ["merchant_risk", "hour", "account_age_days"]
    out = run(frames, "linear_regression", schema, protocol="rep3", features=x, target="amount").outputs
    ref = sm.OLS(join["amount"], sm.add_constant(join[x].astype(float))).fit()
    assert out["n"] == len(join)
    close_to(out["coefficients"], ref.params.to_numpy(), 1e-3, ref.bse.to_numpy())
    assert all(r.rows is None and r.size == len(join) for r in psi_results)
    cols = ["amount", "hour", "is_fraud"]
    check_describe(run(frames, "describe", schema, protocol="rep3", columns=cols, extremes=True).outputs, join, cols)


def test_aligned_mode_is_refused_where_it_cannot_run(banks):
    frames, schema, _, _ = banks
    with pytest.raises(PlanError, match="supports horizontal partitioning"):
        run(frames, "dp_describe", schema, columns=["amount"], epsilon=1.0)
    # every analysis with a vertical path can take secret-shared rows, so aligned mode covers them all
    vertical_ones = [n for n in analytics.available() if "vertical" in analytics.get(n).partitions]
    assert {"describe", "correlation", "covariance", "linear_regression", "logistic_regression"} <= set(vertical_ones)
    assert all(analytics.get(n).takes_shared_rows() for n in vertical_ones)
    with pytest.raises(PlanError, match="partition='vertical'"):
        run_local("correlation", frames, schema, psi_mode="aligned", runtime="threads", columns=["amount", "hour"])
    with pytest.raises(PlanError, match="unknown PSI mode"):
        run(frames, "correlation", schema, mode="hidden", columns=["amount", "is_fraud"])


@pytest.mark.slow
def test_aligned_correlation_over_real_processes(banks):
    frames, schema, _, join = banks
    cols = ["amount", "account_age_days", "is_fraud"]
    res = run(frames, "correlation", schema, runtime="cluster", columns=cols)
    np.testing.assert_allclose(res["correlation"], np.corrcoef(join[cols].astype(float).to_numpy().T), atol=1e-4)
    assert res.per_party["bank_b"]["psi_size"] == len(join)
