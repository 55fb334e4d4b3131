import numpy as np
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from tessera.data.schema import Column, Schema
from tessera.data.synthetic import hospital_trials
from tessera.errors import DataError, PlanError
from tessera.jobs.local import run_local


def reference(frames):
    effs, variances = [], []
    for df in frames.values():
        t, y = df.treatment, df.outcome
        effs.append(y[t].mean() - y[~t].mean())
        variances.append(y[t].var() / t.sum() + y[~t].var() / (~t).sum())
    return combine_effects(np.array(effs), np.array(variances), method_re="dl")


@pytest.mark.parametrize("protocol,seed", [("rep3", 12), ("semi2k", 13), ("rep3", 13)])
def test_meta_analysis_matches_statsmodels(protocol, seed):
    frames, schema, _ = hospital_trials(seed=seed)
    ref = reference(frames)
    assert ref.tau2 > 0  # heterogeneous studies: no truncation at zero
    out = run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", protocol=protocol,
                    runtime="threads").outputs
    assert out["fixed_effect"] == pytest.approx(ref.mean_effect_fe, abs=1e-3)
    assert out["fixed_se"] == pytest.approx(ref.sd_eff_w_fe, abs=1e-3)
    assert out["random_effect"] == pytest.approx(ref.mean_effect_re, abs=1e-3)
    assert out["random_se"] == pytest.approx(ref.sd_eff_w_re, abs=1e-3)
    assert out["q"] == pytest.approx(ref.q, abs=1e-2)
    assert out["i2"] == pytest.approx(ref.i2, abs=1e-3)
    assert out["tau2"] == pytest.approx(ref.tau2, rel=1e-3)
    ci = ref.conf_int()
    assert out["fixed_ci"] == pytest.approx(tuple(ci[0]), abs=2e-3)
    assert "hospital_north" not in str(out)  # no study's own estimate is part of the result


def test_homogeneous_studies_truncate_tau2_at_zero():
    frames, schema, _ = hospital_trials(seed=11)
    ref = reference(frames)
    assert ref.q < len(frames) - 1
    out = run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", runtime="threads").outputs
    assert out["tau2"] == pytest.approx(0.0, abs=1e-6) and out["i2"] == pytest.approx(0.0, abs=1e-6)
    assert out["random_effect"] == pytest.approx(out["fixed_effect"], abs=1e-3)
    assert out["fixed_effect"] == pytest.approx(ref.mean_effect_fe, abs=1e-3)


def test_a_study_with_a_too_small_arm_is_refused():
    frames, schema, _ = hospital_trials(sizes={"a": 500, "b": 30}, seed=1)
    with pytest.raises(PlanError, match="fewer than 20 rows"):
        run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", min_arm_rows=20,
                  protocol="semi2k", runtime="threads")


def _studies(sizes, effect=-4.0, tau2=2.0, seed=3):
    return hospital_trials(sizes=sizes, effect=effect, tau2=tau2, seed=seed)


def _close(out, ref, rel=1e-6):
    """Within the stated accuracy of statsmodels' DerSimonian-Laird (whose tau^2 is not truncated
    at 0 when Q < df: Tessera truncates, as DerSimonian and Laird do, so then RE = FE)."""
    truncated = ref.tau2 < 0
    assert out["fixed_effect"] == pytest.approx(ref.mean_effect_fe, rel=rel, abs=1e-9)
    assert out["fixed_se"] == pytest.approx(ref.sd_eff_w_fe, rel=1e-5)
    re, re_se = (ref.mean_effect_fe, ref.sd_eff_w_fe) if truncated else (ref.mean_effect_re, ref.sd_eff_w_re)
    assert out["random_effect"] == pytest.approx(re, rel=1e-5, abs=1e-9)
    assert out["random_se"] == pytest.approx(re_se, rel=1e-5)
    assert out["q"] == pytest.approx(ref.q, rel=1e-6, abs=1e-5)
    assert out["tau2"] == pytest.approx(max(ref.tau2, 0.0), rel=1e-5, abs=1e-9)
    assert out["i2"] == pytest.approx(max(ref.i2, 0.0), abs=1e-6)


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_precise_studies_keep_their_precision(protocol):
    """Issue #14: total inverse-variance weight above ~1e5 lost precision, above 2^20 the fixed
    effect was exactly 0. Three large trials: W is about 2e6 here."""
    frames, schema, _ = _studies({"a": 150_000, "b": 120_000, "c": 100_000}, tau2=0.5)
    # the outcome in other units (divided by 300, bounds [0, 1]): the weights grow by 9e4
    frames = {k: v.assign(outcome=v.outcome / 300) for k, v in frames.items()}
    schema = Schema(columns=tuple(Column(name="outcome", type="float", min=0.0, max=1.0) if c.name == "outcome" else c
                                  for c in schema.columns))
    ref = reference(frames)
    assert 1 / ref.sd_eff_w_fe**2 > 2**20
    out = run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", protocol=protocol,
                    runtime="threads").outputs
    _close(out, ref)


def test_thirty_hospitals_with_and_without_heterogeneity():
    rng = np.random.default_rng(5)
    sizes = {f"h{i:02d}": int(n) for i, n in enumerate(rng.integers(60, 3000, 30))}
    for tau2 in (0.0, 3.0):
        frames, schema, _ = _studies(sizes, tau2=tau2, seed=int(10 * tau2) + 1)
        ref = reference(frames)
        out = run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment",
                        protocol="semi2k", runtime="threads").outputs
        _close(out, ref)
        assert out["studies"] == 30


def test_one_dominant_study():
    frames, schema, _ = _studies({"big": 200_000, "s1": 3000, "s2": 2000}, tau2=4.0, seed=9)
    ref = reference(frames)
    assert ref.tau2 > 0
    out = run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", runtime="threads").outputs
    _close(out, ref, rel=1e-5)


def test_a_study_without_variance_is_refused_without_its_values():
    frames, schema, _ = _studies({"a": 300, "b": 300})
    frames["b"] = frames["b"].assign(outcome=42.0)
    with pytest.raises(DataError, match="variance below the resolution") as err:
        run_local("meta_analysis", frames, schema, outcome="outcome", treatment="treatment", runtime="threads")
    assert "42" not in str(err.value)
