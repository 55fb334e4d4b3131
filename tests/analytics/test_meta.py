import numpy as np
import pytest
from statsmodels.stats.meta_analysis import combine_effects

from tessera.data.synthetic import hospital_trials
from tessera.errors import PlanError
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
