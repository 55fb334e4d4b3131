# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A meta-analysis of three hospitals' trials
#
# Three hospitals ran the same randomised trial. Together they want the pooled treatment effect
# (fixed and random effects, heterogeneity), but no hospital may reveal its patients' rows, and
# the contract does not even release any single hospital's estimate. Tessera computes each
# study's effect and variance locally, pools them over secret shares, and reveals only the
# pooled figures.
#
# Every hospital runs here in one Python process (`runtime="threads"`). Open this file in
# Jupyter with `jupytext --to notebook hospital_meta.py`, or run it: `python
# docs/tutorials/hospital_meta.py`.

# %%
import numpy as np
import pandas as pd

import tessera
from tessera.data import Schema
from tessera.data.synthetic import hospital_trials

frames, _, truth = hospital_trials({"hospital_north": 600, "hospital_south": 450, "hospital_east": 300}, seed=4)
print({h: len(f) for h, f in frames.items()})
print(list(frames["hospital_north"].columns))

# %% [markdown]
# ## 1. The schema
#
# `tessera.draft_schema` proposes a schema from the three hospitals' frames; its bounds are
# widened to round numbers, and the hospitals review them because they become public. Here they
# widen the outcome to the range of the scale it is measured on (0..300) and ages to 18..100.

# %%
schema = tessera.draft_schema(frames)
print(schema.names)
reviewed = schema.to_dict()
reviewed["outcome"].update(min=0, max=300)
reviewed["age"].update(min=18, max=100)
schema = Schema.from_dict(reviewed)
print(schema.column("outcome").bounds, schema.column("sex").levels)

# %% [markdown]
# ## 2. The pooled effect
#
# `meta_analysis` treats every party as one study: the difference in mean outcome between its
# treated and control patients, with its variance. The inverse-variance (fixed effect) and
# DerSimonian-Laird (random effects) estimates are computed on secret shares.

# %%
res = tessera.run_local("meta_analysis", frames, schema, runtime="threads", outcome="outcome",
                        treatment="treatment")
for line in res.revealed:
    print("revealed:", line)
print("studies:", res["studies"])
for kind in ("fixed", "random"):
    lo, hi = res[f"{kind}_ci"]
    print(f"{kind:>6} effect {res[f'{kind}_effect']:.3f}  se {res[f'{kind}_se']:.3f}  95% CI [{lo:.3f}, {hi:.3f}]")
print(f"Q {res['q']:.3f}  p {res['q_p_value']:.3f}  I2 {res['i2']:.3f}  tau2 {res['tau2']:.3f}")

# %% [markdown]
# ## 3. Checked against statsmodels
#
# A tutorial can compute what the secure job never reveals: each study's own estimate. On them,
# statsmodels' `combine_effects` gives the same pooled figures.

# %%
from statsmodels.stats.meta_analysis import combine_effects  # noqa: E402

effects, variances = [], []
for f in frames.values():
    t, c = f.loc[f["treatment"], "outcome"], f.loc[~f["treatment"], "outcome"]
    effects.append(t.mean() - c.mean())
    variances.append(t.var() / len(t) + c.var() / len(c))
plain = combine_effects(np.array(effects), np.array(variances), method_re="dl")
print(f"statsmodels fixed {plain.mean_effect_fe:.3f}  random {plain.mean_effect_re:.3f}")

# %% [markdown]
# ## 4. Adjusting for covariates in one pooled regression
#
# The same rows also fit one regression of the outcome on the treatment and the covariates;
# `sex` is categorical and the plan one-hot encodes it (reference level `F`, its first level).

# %%
reg = tessera.run_local("linear_regression", frames, schema, runtime="threads",
                        features=["treatment", "age", "biomarker_1", "sex"], target="outcome")
names = ["intercept", *reg.job.params["features"]]
table = pd.DataFrame({"coef": reg["coefficients"], "se": reg["std_errors"]}, index=names)
print(table.round(2).to_string())
print(f"R^2 {reg['r2']:.3f}")

# %% [markdown]
# ## Expected output
#
# `tests/test_docs.py` runs this notebook and compares what it prints with this block (numbers
# within 1%, or one unit of their last printed digit).
#
# ```text
# {'hospital_north': 600, 'hospital_south': 450, 'hospital_east': 300}
# ['treatment', 'outcome', 'age', 'biomarker_1', 'biomarker_2', 'sex']
# ['treatment', 'outcome', 'age', 'biomarker_1', 'biomarker_2', 'sex']
# (0.0, 300.0) ('F', 'M')
# revealed: fixed_effect, fixed_se -> all recipients
# revealed: random_effect, random_se -> all recipients
# revealed: q, i2, tau2 -> all recipients
# revealed: confidence intervals, p-values -> all recipients
# studies: 3
#  fixed effect -5.442  se 0.631  95% CI [-6.679, -4.205]
# random effect -5.398  se 0.861  95% CI [-7.085, -3.712]
# Q 3.609  p 0.165  I2 0.446  tau2 0.992
# statsmodels fixed -5.442  random -5.398
#                coef    se
# intercept    111.71  0.70
# treatment     -5.66  0.46
# age            0.30  0.01
# biomarker_1    2.07  0.12
# sex[M]        -1.15  0.46
# R^2 0.501
# ```
