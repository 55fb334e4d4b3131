"""Noise drawn jointly inside MPC has the exact stated distribution; accounting is OpenDP's;
clipping holds against out-of-range inputs; DP analyses report their guarantee."""


import numpy as np
import opendp.prelude as dp
import pandas as pd
import pytest
from scipy import stats

from tessera.data.synthetic import bank_transactions
from tessera.dp.accounting import calibrate_scale, compose_rho, gaussian_rho, rho_for, rho_to_epsilon
from tessera.dp.noise import joint_noise
from tessera.execution.steps import plan_analysis as make_plan
from tessera.jobs.local import run_local
from tessera.jobs.model import LedgerRef
from tessera.runtime import run_threads

dp.enable_features("contrib")


def discrete_gaussian_pmf(scale, support):
    w = np.exp(-(support.astype(float) ** 2) / (2 * scale**2))
    return w / w.sum()


@pytest.mark.parametrize("protocol,parties", [("semi2k", 3), ("rep3", 3), ("semi2k", 2)])
def test_joint_noise_matches_the_exact_pmf_over_1e5_samples(protocol, parties):
    scale, n = 2.0, 100_000

    def prog(s):
        return joint_noise(s, scale, (n,), 0).reveal()

    noise = run_threads(prog, parties, protocol=protocol)["P0"]
    k = np.arange(-60, 61)
    pmf = discrete_gaussian_pmf(scale, k)
    total = pmf
    for _ in range(parties - 1):
        total = np.convolve(total, pmf)
    support = np.arange(-60 * parties, 60 * parties + 1)
    lo, hi = -12, 12  # pool the tails into the end cells
    expected = np.array([total[support <= lo].sum(), *[total[support == v][0] for v in range(lo + 1, hi)],
                         total[support >= hi].sum()]) * n
    observed = np.array([(noise <= lo).sum(), *[(noise == v).sum() for v in range(lo + 1, hi)], (noise >= hi).sum()])
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    assert np.var(noise) == pytest.approx(parties * scale**2, rel=0.03)
    # a wrong distribution fails the same test
    assert stats.chisquare(observed, np.roll(expected, 1)).pvalue < 1e-10


def test_accounting_is_opendps():
    meas = [dp.m.make_gaussian(dp.atom_domain(T=int), dp.absolute_distance(T=int), scale=s) for s in (2.0, 5.0, 9.5)]
    composed = dp.c.make_composition(meas)
    assert compose_rho([gaussian_rho(1, s) for s in (2.0, 5.0, 9.5)]) == pytest.approx(composed.map(1))
    assert gaussian_rho(3, 4.0) == pytest.approx(9 / 32)
    scale = calibrate_scale(1, 1.0, 1e-6)
    assert rho_to_epsilon(gaussian_rho(1, scale), 1e-6) == pytest.approx(1.0, abs=1e-6)
    assert rho_to_epsilon(rho_for(0.7, 1e-5), 1e-5) == pytest.approx(0.7, abs=1e-6)


@pytest.fixture(scope="module")
def banks():
    frames, schema, _ = bank_transactions(20_000, seed=21)
    return frames, schema, pd.concat(frames.values())


def test_dp_describe_reports_its_guarantee_and_is_close_to_the_truth(banks):
    frames, schema, pooled = banks
    out = run_local("dp_describe", frames, schema, columns=["merchant_risk", "hour"], epsilon=2.0, delta=1e-6,
                    runtime="threads").outputs
    g = out["guarantee"]
    assert g["epsilon"] == pytest.approx(2.0, abs=1e-6) and g["delta"] == 1e-6
    lo, hi = out["count_ci95"]
    assert lo < len(pooled) < hi or abs(out["noisy_count"] - len(pooled)) < 6 * g["noise_std_released"]["count"]
    for c in ("merchant_risk", "hour"):
        std = g["noise_std_released"][c]
        assert abs(out[c]["noisy_sum"] - pooled[c].sum()) < 6 * std + 0.01 * len(pooled)


def test_clipping_inside_mpc_stops_an_out_of_range_contribution(banks):
    _, schema, _ = banks
    analysis, params, plan = make_plan("dp_describe", None, {"columns": ["hour"], "epsilon": 1e4, "delta": 1e-6},
                                       schema, "horizontal", ["a", "b", "c"])
    res = plan.meta["resolution"]
    honest = {"stats": np.array([100, 100 * 12 * res])}
    liar = {"stats": np.array([100, 10**12])}  # claims a sum far beyond 100 rows * max 23

    def prog(s):
        return analysis.secure(s, liar if s.me == 1 else honest, params, plan, {})

    out = run_threads(prog, ["a", "b", "c"], protocol="rep3")["a"]
    assert out["noisy_count"] == pytest.approx(300, abs=5)
    assert out["hour"]["noisy_sum"] == pytest.approx(2 * 1200 + 100 * 23, abs=50)  # the liar is clipped to 2300


def test_dp_histogram_noise_has_the_stated_scale():
    edges = list(range(0, 2001))
    frame = pd.DataFrame({"amount": np.full(50, 5000.0)})  # no row falls in [0, 2000)
    _, schema, _ = bank_transactions(10)
    out = run_local("dp_histogram", {"a": frame, "b": frame}, schema, column="amount", edges=edges, epsilon=1.0,
                    protocol="semi2k", runtime="threads").outputs
    noise = np.array(out["noisy_counts"], dtype=float)
    std = out["guarantee"]["noise_std_released"]["count"]
    assert np.std(noise) == pytest.approx(std, rel=0.1)
    assert out["ci95_half_width"] == pytest.approx(1.96 * std, rel=1e-3)


def test_budget_is_reserved_spent_and_refused_per_data_owner(banks, tmp_path):
    from tessera.errors import BudgetExceeded
    from tessera.governance.ledger import SqliteLedger

    frames, schema, _ = banks
    ledgers = {}
    for bank in frames:
        path = str(tmp_path / f"{bank}.db")
        SqliteLedger(path).set_budget(f"tx_{bank}", 1.5, 1e-5)
        ledgers[bank] = path

    def job(job_id, epsilon):
        return run_local("dp_histogram", frames, schema, column="amount", edges=[0, 100, 1000, 10000],
                         epsilon=epsilon, delta=1e-6, runtime="threads",
                         job_id=job_id, ledgers={b: LedgerRef(path=ledgers[b], dataset=f"tx_{b}") for b in frames})

    job("j1", 1.0)
    for bank in frames:
        assert SqliteLedger(ledgers[bank]).remaining(f"tx_{bank}")[0] == pytest.approx(0.5)
    with pytest.raises(BudgetExceeded, match="remaining epsilon 0.5"):
        job("j2", 0.8)  # over budget: refused before any input is shared
    for bank in frames:  # nothing was spent by the refused job
        assert SqliteLedger(ledgers[bank]).remaining(f"tx_{bank}")[0] == pytest.approx(0.5)
        assert SqliteLedger(ledgers[bank]).state("j2") == []


def test_a_job_aborted_by_one_owner_returns_the_others_reservations(banks, tmp_path):
    from tessera.errors import BudgetExceeded
    from tessera.governance.ledger import SqliteLedger

    frames, schema, _ = banks
    ledgers = {b: str(tmp_path / f"{b}.db") for b in frames}
    for b, path in ledgers.items():
        SqliteLedger(path).set_budget(b, 0.1 if b == "bank_a" else 5.0)
    with pytest.raises(BudgetExceeded):
        run_local("dp_histogram", frames, schema, column="amount", edges=[0, 100, 10000], epsilon=1.0,
                  runtime="threads", job_id="j9", ledgers={b: LedgerRef(path=ledgers[b], dataset=b) for b in frames})
    for b in ("bank_b", "bank_c"):
        assert SqliteLedger(ledgers[b]).remaining(b)[0] == pytest.approx(5.0)
        assert SqliteLedger(ledgers[b]).state("j9") in ([], [(b, "released")])


def test_dp_linear_regression_from_noisy_sufficient_statistics():
    import statsmodels.api as sm

    from tessera.data.schema import Column, Schema

    rng = np.random.default_rng(11)
    n = 100_000
    x = np.column_stack([rng.uniform(0, 100, n), rng.normal(5, 2, n).clip(-5, 15)])
    y = (2 + 0.5 * x[:, 0] - 3 * x[:, 1] + rng.normal(0, 4, n)).clip(-100, 150)
    df = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y})
    schema = Schema(columns=(Column(name="x1", type="float", min=0, max=100),
                             Column(name="x2", type="float", min=-5, max=15),
                             Column(name="y", type="float", min=-100, max=150)))
    frames = {"a": df.iloc[:50_000], "b": df.iloc[50_000:80_000], "c": df.iloc[80_000:]}
    out = run_local("dp_linear_regression", frames, schema, features=["x1", "x2"], target="y", epsilon=8.0,
                    runtime="threads").outputs
    ref = sm.OLS(df.y, sm.add_constant(df[["x1", "x2"]])).fit().params.to_numpy()
    # at epsilon = 8 the noise on X'X/n is ~4e-5 in scaled units: slopes within a few percent
    np.testing.assert_allclose(out["coefficients"][1:], ref[1:], rtol=0.03)
    assert out["guarantee"]["epsilon"] == pytest.approx(8.0, abs=1e-6)


def test_dp_logistic_regression_output_perturbation(banks):
    frames, schema, pooled = banks
    feats = ["amount", "merchant_risk", "hour", "account_age_days"]
    weak = run_local("dp_logistic_regression", frames, schema, features=feats, target="is_fraud", C=1.0,
                     epsilon=2000.0, runtime="threads").outputs
    strong = run_local("dp_logistic_regression", frames, schema, features=feats, target="is_fraud", C=1.0,
                       epsilon=0.5, runtime="threads").outputs
    assert strong["guarantee"]["epsilon"] == pytest.approx(0.5, abs=1e-6)
    scale_ratio = strong["guarantee"]["noise_scale_per_party"]["scaled_coefficient"] / \
        weak["guarantee"]["noise_scale_per_party"]["scaled_coefficient"]
    assert scale_ratio > 500
    x = pooled[feats].astype(float).to_numpy()
    acc = np.mean(((weak["coefficients"][0] + x @ weak["coefficients"][1:]) > 0) == pooled["is_fraud"])
    assert acc >= 1 - pooled["is_fraud"].mean() - 0.01  # little noise: at least as good as the base rate


def test_pure_epsilon_uses_joint_discrete_laplace_noise():
    from tessera.dp.noise import discrete_laplace

    scale, n = 2.0, 100_000

    def prog(s):
        return joint_noise(s, scale, (n,), 0, "laplace").reveal()

    noise = run_threads(prog, 3, protocol="rep3")["P0"]
    k = np.arange(-80, 81)
    pmf = np.exp(-np.abs(k) / scale)
    pmf /= pmf.sum()
    total = np.convolve(np.convolve(pmf, pmf), pmf)
    support = np.arange(-240, 241)
    lo, hi = -15, 15
    expected = np.array([total[support <= lo].sum(), *[total[support == v][0] for v in range(lo + 1, hi)],
                         total[support >= hi].sum()]) * n
    observed = np.array([(noise <= lo).sum(), *[(noise == v).sum() for v in range(lo + 1, hi)], (noise >= hi).sum()])
    assert stats.chisquare(observed, expected).pvalue > 1e-4
    assert discrete_laplace(1.0, 10).dtype == np.int64


def test_dp_histogram_with_pure_epsilon(banks):
    frames, schema, pooled = banks
    out = run_local("dp_histogram", frames, schema, column="amount", edges=[0, 100, 1000, 10000], epsilon=0.5,
                    delta=0.0, runtime="threads").outputs
    g = out["guarantee"]
    assert g["mechanism"] == "laplace" and g["delta"] == 0.0 and g["epsilon"] == pytest.approx(0.5)
    true = np.histogram(pooled.amount, bins=[0, 100, 1000, 10000])[0]
    assert np.all(np.abs(np.array(out["noisy_counts"]) - true) < 10 * g["noise_std_released"]["count"])
