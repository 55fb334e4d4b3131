"""The synthetic generators reproduce their stated ground truth and pass their own schemas."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats

from tessera.data import load
from tessera.data.synthetic import (
    TRUE_FRAUD_MODEL,
    bank_transactions,
    hospital_trials,
    split_sizes,
    vertical_fraud,
)


@pytest.fixture(scope="module")
def banks():
    return bank_transactions(600_000, seed=1)


def test_banks_are_split_unequally_and_disjointly(banks):
    frames, schema, _ = banks
    assert list(frames) == ["bank_a", "bank_b", "bank_c"]
    assert [len(f) for f in frames.values()] == [240_000, 210_000, 150_000]
    ids = [set(f["customer_id"]) for f in frames.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert split_sizes(10, (0.5, 0.3, 0.2)) == [5, 3, 2] and sum(split_sizes(1001, (3, 2, 2))) == 1001
    assert [len(f) for f in bank_transactions(1000, banks=("x", "y", "z", "w"))[0].values()] == [400, 300, 200, 100]
    with pytest.raises(ValueError, match="one weight per bank"):
        bank_transactions(100, banks=("x", "y"), weights=(0.5, 0.3, 0.2))


def test_every_generated_frame_passes_its_schema(banks):
    frames, schema, _ = banks
    for name, frame in frames.items():
        with load(frame, schema, key="customer_id", name=name) as t:
            assert t.n_rows == len(frame)
    hospitals, hschema, _ = hospital_trials()
    for frame in hospitals.values():
        load(frame, hschema).close()
    (vframes, vschema, _, _) = vertical_fraud(2_000)
    load(vframes["bank_a"], vschema, ["amount", "merchant_risk", "hour", "account_age_days"], key="customer_id").close()
    load(vframes["bank_b"], vschema, ["is_fraud"], key="customer_id").close()


def test_fraud_labels_follow_the_stated_logistic_model(banks):
    # an unpenalised fit on 600k rows (~10k frauds) lands within 4 standard errors of every true
    # coefficient (on features scaled to [-1, 1] by the declared bounds), and jointly passes a
    # Wald test at the 0.1% level
    frames, schema, truth = banks
    df = pd.concat(frames.values(), ignore_index=True)
    scaled = truth.bounds_scaled(schema)
    cols = truth.features
    x = np.column_stack([(df[c] - sum(schema.column(c).bounds) / 2) / (np.diff(schema.column(c).bounds)[0] / 2)
                         for c in cols])
    fit = sm.Logit(df["is_fraud"].to_numpy(float), sm.add_constant(x)).fit(disp=0)
    true = np.array([scaled.intercept] + [scaled.coefficients[c] for c in cols])
    assert np.all(np.abs(fit.params - true) < 4 * fit.bse), (fit.params, true, fit.bse)
    d = fit.params - true
    wald = d @ np.linalg.solve(fit.cov_params(), d)
    assert stats.chi2.sf(wald, len(true)) > 1e-3


def test_rescaled_truths_are_the_same_model(banks):
    frames, schema, truth = banks
    df = frames["bank_c"]
    p = truth.probability(df)
    for model, scaling in [(truth.bounds_scaled(schema), {c: (sum(schema.column(c).bounds) / 2,
                                                              np.diff(schema.column(c).bounds)[0] / 2) for c in truth.features}),
                           (truth.standardised(df), {c: (df[c].mean(), df[c].std(ddof=0)) for c in truth.features})]:
        z = pd.DataFrame({c: (df[c] - m) / h for c, (m, h) in scaling.items()})
        np.testing.assert_allclose(model.probability(z), p, rtol=1e-12)
    assert truth is TRUE_FRAUD_MODEL and 0.005 < p.mean() < 0.03


def test_vertical_scenario_overlap_and_true_join():
    frames, schema, truth, join = vertical_fraud(20_000, overlap=0.6, seed=4)
    a, b = frames["bank_a"], frames["bank_b"]
    assert list(a.columns) == ["customer_id", "amount", "merchant_risk", "hour", "account_age_days"]
    assert list(b.columns) == ["customer_id", "is_fraud"] and a["customer_id"].map(type).eq(str).all()
    common = set(a["customer_id"]) & set(b["customer_id"])
    assert abs(len(common) / len(a) - 0.6) < 4 * np.sqrt(0.24 / len(a))
    assert set(join["customer_id"]) == common and len(join) == len(common)
    merged = a.merge(b, on="customer_id").sort_values("customer_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(merged, join[merged.columns].sort_values("customer_id").reset_index(drop=True))
    assert not a["customer_id"].head(50).is_monotonic_increasing  # rows not in a telling order
    with pytest.raises(ValueError):
        vertical_fraud(100, overlap=1.5)


def test_each_hospital_shows_its_own_treatment_effect():
    sizes = {"big": 40_000, "mid": 20_000, "small": 8_000}
    frames, _, truth = hospital_trials(sizes, effect=-4.0, tau2=2.0, seed=3)
    assert [len(f) for f in frames.values()] == list(sizes.values())
    for name, df in frames.items():
        x = sm.add_constant(np.column_stack([df["treatment"].astype(float), df["age"], df["biomarker_1"],
                                             df["biomarker_2"], (df["sex"] == "M").astype(float)]))
        fit = sm.OLS(df["outcome"].to_numpy(), x).fit()
        assert abs(fit.params[1] - truth.study_effects[name]) < 4 * fit.bse[1]
        np.testing.assert_allclose(fit.params[2:5], [0.3, 2.0, 0.5], atol=4 * fit.bse[2:5].max())
        assert abs(fit.params[5]) < 4 * fit.bse[5]  # sex unrelated to the outcome
        assert abs(np.sqrt(fit.scale) - truth.noise_sd) < 0.2


def test_hospitals_are_heterogeneous_with_the_stated_tau2():
    # 300 hospitals: the realised effects have mean `effect` and variance `tau2`, and a
    # DerSimonian-Laird random-effects meta-analysis of the per-hospital estimates recovers both
    rng = np.random.default_rng(0)
    sizes = {f"h{i:03d}": int(n) for i, n in enumerate(rng.integers(150, 600, 300))}
    frames, _, truth = hospital_trials(sizes, effect=-4.0, tau2=2.0, seed=8)
    effects = np.array(list(truth.study_effects.values()))
    k = len(effects)
    assert abs(effects.mean() + 4.0) < 4 * np.sqrt(2.0 / k)
    assert abs(effects.var(ddof=1) - 2.0) < 4 * 2.0 * np.sqrt(2 / (k - 1))
    est, var = [], []
    for df in frames.values():
        t, y = df["treatment"].to_numpy(), df["outcome"].to_numpy()
        est.append(y[t].mean() - y[~t].mean())
        var.append(y[t].var(ddof=1) / t.sum() + y[~t].var(ddof=1) / (~t).sum())
    est, var = np.array(est), np.array(var)
    w = 1 / var
    q = np.sum(w * (est - np.sum(w * est) / w.sum()) ** 2)
    tau2 = max(0.0, (q - (k - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
    w_re = 1 / (var + tau2)
    pooled, se = np.sum(w_re * est) / w_re.sum(), np.sqrt(1 / w_re.sum())
    assert abs(pooled - truth.effect) < 4 * se
    assert 1.0 < tau2 < 3.0
