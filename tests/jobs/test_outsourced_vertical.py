"""Vertical jobs whose data owners only input (#17): the owners align their rows by a PSI among
themselves, secret-share their columns of the common rows to the compute parties once and leave;
the compute parties run the analysis on the shared rows."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats
from sklearn.linear_model import LogisticRegression

from tessera.data.synthetic import vertical_fraud
from tessera.errors import DataError, PlanError
from tessera.jobs.budget import CRASH_AT_BARRIER_ENV
from tessera.jobs.local import local_job, run_local

C3 = ["c1", "c2", "c3"]
FEATS = ["amount", "merchant_risk", "hour", "account_age_days"]


@pytest.fixture(scope="module")
def banks():
    frames, schema, _, join = vertical_fraud(1_200, overlap=0.6, seed=3)
    return frames, schema, join


def run(frames, schema, analysis, protocol="rep3", compute=C3, **params):
    return run_local(analysis, frames, schema, partition="vertical", protocol=protocol, compute=compute,
                     psi_mode="intersection", join_key="customer_id", runtime="threads", **params)


def test_logistic_regression_of_two_owners_on_three_compute_parties_matches_sklearn(banks):
    frames, schema, join = banks
    res = run(frames, schema, "logistic_regression", features=FEATS, target="is_fraud")
    sk = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(join[FEATS].astype(float), join["is_fraud"])
    ref = np.concatenate([sk.intercept_, sk.coef_[0]])
    np.testing.assert_allclose(res["coefficients"], ref, rtol=5e-3)
    # far inside the statistical uncertainty (the fixed-point error is measured in standard errors)
    np.testing.assert_array_less(np.abs(res["coefficients"] - ref) / res["std_errors"], 0.01)
    assert res["n"] == res["psi_size"] == len(join)
    # each bank learned the intersection size from its PSI and nothing else; it computed nothing
    assert res.per_party["bank_a"] == res.per_party["bank_b"] == {"psi_size": len(join)}
    assert res.job is not None and res.job.roles.input_only == ["bank_a", "bank_b"]
    assert set(res.comm["bank_a"]["bytes_sent_to"]) == {"bank_b", *C3}  # its PSI peer and the compute parties
    assert "data owners that only input (bank_a, bank_b) align their rows by a PSI among themselves" in res.plan_text


def test_linear_regression_of_two_owners_on_two_compute_parties_and_the_dealer_matches_statsmodels(banks):
    frames, schema, join = banks
    feats = ["merchant_risk", "hour", "is_fraud"]  # the target is bank_a's, one feature bank_b's
    res = run(frames, schema, "linear_regression", protocol="semi2k", compute=["c1", "c2"], features=feats,
              target="amount")
    ols = sm.OLS(join["amount"], sm.add_constant(join[feats].astype(float))).fit()
    np.testing.assert_array_less(np.abs(res["coefficients"] - ols.params.to_numpy()) / ols.bse.to_numpy(), 0.01)
    np.testing.assert_allclose(res["std_errors"], ols.bse.to_numpy(), rtol=1e-3)
    assert res["n"] == len(join)


def test_ttest_across_two_owners_columns_matches_scipy(banks):
    """The value at one owner, the group at the other: neither could run the test alone."""
    frames, schema, join = banks
    res = run(frames, schema, "ttest", value="amount", group="is_fraud")
    g = join.is_fraud.astype(bool)
    ref = stats.ttest_ind(join.amount[g], join.amount[~g], equal_var=False)
    assert res["t"] == pytest.approx(ref.statistic, rel=1e-4)
    assert res["df"] == pytest.approx(ref.df, rel=1e-4)
    assert (res["n_true"], res["n_false"]) == (int(g.sum()), int((~g).sum()))


def test_what_cannot_run_vertically_with_owners_that_only_input_is_refused(banks):
    frames, schema, _ = banks
    common = {"schema": schema, "protocol": "rep3", "partition": "vertical", "join_key": "customer_id"}
    with pytest.raises(PlanError, match="PSI aligned mode .* is not built for data owners that only input"):
        local_job("describe", frames, psi_mode="aligned", compute=C3, params={"columns": ["amount"]}, **common)
    with pytest.raises(PlanError, match="every owner must only input; bank_a computes too"):
        local_job("describe", frames, psi_mode="intersection", compute=["bank_a", "c2", "c3"],
                  params={"columns": ["amount"]}, **common)
    with pytest.raises(PlanError, match="chi2 cannot run on secret-shared rows"):
        local_job("chi2", frames, psi_mode="intersection", compute=C3,
                  params={"row": "is_fraud", "column": "is_fraud"}, **common)


def test_an_owner_with_duplicated_join_keys_refuses_before_its_psi(banks):
    frames, schema, _ = banks
    a = frames["bank_a"]
    dup = {**frames, "bank_a": a.assign(customer_id=a.customer_id.where(a.index % 50 != 1, a.customer_id.iloc[0]))}
    with pytest.raises(DataError, match=r"the data of 'bank_a': 1 join-key value repeats \(\d+ rows in all\)"):
        run(dup, schema, "describe", columns=["amount"])


@pytest.mark.slow
def test_over_processes_an_owner_that_exits_right_after_sending_does_not_stop_the_job(monkeypatch):
    """Real processes over mutual TLS: each bank process runs its PSI with the other bank and
    sends its shares; bank_b's process then ends at once (no report, its links cut), and the
    compute parties finish the fit without it."""
    monkeypatch.setenv(CRASH_AT_BARRIER_ENV, "bank_b:sent")
    frames, schema, _, join = vertical_fraud(500, overlap=0.6, seed=3)
    feats = ["amount", "merchant_risk"]
    res = run_local("logistic_regression", frames, schema, partition="vertical", protocol="rep3", compute=C3,
                    psi_mode="intersection", join_key="customer_id", features=feats, target="is_fraud",
                    runtime="cluster", timeout=300)
    sk = LogisticRegression(C=np.inf, max_iter=10_000, tol=1e-10).fit(join[feats].astype(float), join["is_fraud"])
    ref = np.concatenate([sk.intercept_, sk.coef_[0]])
    np.testing.assert_array_less(np.abs(res["coefficients"] - ref) / res["std_errors"], 0.01)
    assert "bank_b" not in res.reports  # its process ended without a report
    report = res.reports["bank_a"]
    assert report.ok and report.result is not None and report.result.outputs == {"psi_size": len(join)}
    assert all(res.reports[c].ok for c in C3) and res["psi_size"] == len(join)
