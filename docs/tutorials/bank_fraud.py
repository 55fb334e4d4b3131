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
# # A fraud model over three banks' transactions
#
# Three banks want one fraud model trained on all their transactions, but none may see another's
# rows. Tessera fits a logistic regression over secret shares: each bank reduces its own rows
# locally, the model is fitted on shares, and only the coefficients (and the row count) are
# revealed, to the banks the job names.
#
# This notebook runs every bank in one Python process (`runtime="threads"`); with nodes each bank
# runs the same job beside its own data. Open it in Jupyter with `jupytext --to notebook
# bank_fraud.py`, or run it as a script: `python docs/tutorials/bank_fraud.py`.

# %%
import numpy as np
import pandas as pd

import tessera
from tessera.data import Schema
from tessera.data.draft import draft
from tessera.data.synthetic import bank_transactions

frames, _, truth = bank_transactions(4000, seed=3)  # {"bank_a": DataFrame, "bank_b": ..., "bank_c": ...}
print({bank: len(f) for bank, f in frames.items()})
print(list(frames["bank_a"].columns))

# %% [markdown]
# ## 1. A schema, drafted from the data and reviewed by the owners
#
# Every job runs against a *schema*: the columns, their types, their declared bounds (which fix
# the fixed-point encodings and refuse jobs that could overflow) and the levels of categorical
# columns. Bounds and levels are **public** once they are in a contract, so Tessera only
# *drafts* them: `draft` (or `tessera schema draft FILE...` on the command line) proposes
# bounds widened to round numbers and marks the result as a draft to review.

# %%
proposal = draft(frames, exclude=["customer_id"])  # the identifier is the banks' own business
print(proposal.to_toml().split("\n\n")[0].splitlines()[0])
for col in proposal.schema.columns:
    print(col.name, col.type.value, col.to_dict())

# %% [markdown]
# The owners review it: hours are 0..23 (the grid rounded them up to 40), accounts can be up
# to ten years old, and the reference level of `channel` should be `online` (the first
# declared level is the one a one-hot encoding leaves out).

# %%
reviewed = proposal.schema.to_dict()
reviewed["hour"]["max"] = 23
reviewed["account_age_days"]["max"] = 3650
reviewed["channel"]["levels"] = ["online", "pos", "atm"]
schema = Schema.from_dict(reviewed)

# %% [markdown]
# ## 2. The secure fit
#
# `channel` is categorical: the plan one-hot encodes it as `channel[pos]` and `channel[atm]`
# (the plan text says so), so the model reads like statsmodels' `C(channel)`.

# %%
features = ["amount", "merchant_risk", "hour", "channel"]
res = tessera.run_local("logistic_regression", frames, schema, runtime="threads",
                        features=features, target="is_fraud")
print(res["n"], "rows")
for line in res.revealed:
    print("revealed:", line)
print(next(note for note in res.plan_text.splitlines() if "one-hot" in note))

names = ["intercept", *res.job.params["features"]]
coef = pd.Series(res["coefficients"], index=names)
print(coef.round(4).to_string())

# %% [markdown]
# ## 3. Checked against the plaintext fit
#
# Only a tutorial can pool the rows; statsmodels on the pooled rows gives the same model.

# %%
import statsmodels.api as sm  # noqa: E402

pooled = pd.concat(frames.values(), ignore_index=True)
x = pooled[["amount", "merchant_risk", "hour"]].assign(
    **{f"channel[{lv}]": (pooled["channel"] == lv).astype(float) for lv in ("pos", "atm")})
plain = sm.Logit(pooled["is_fraud"].astype(float), sm.add_constant(x)).fit(disp=0)
print("agrees with statsmodels within 0.01:", bool(np.allclose(plain.params.to_numpy(), coef.to_numpy(), atol=0.01)))

# %% [markdown]
# ## 4. Scoring a bank's own transactions
#
# The coefficients are the banks' shared output; each bank scores its own rows locally.

# %%
own = frames["bank_a"]
z = coef["intercept"] + sum(coef[c] * own[c] for c in ["amount", "merchant_risk", "hour"])
z = z + sum(coef[f"channel[{lv}]"] * (own["channel"] == lv) for lv in ("pos", "atm"))
p = 1 / (1 + np.exp(-z))
y = own["is_fraud"].to_numpy()
ranks = pd.Series(p).rank().to_numpy()  # AUC by the rank-sum (Mann-Whitney) formula
auc = (ranks[y].sum() - y.sum() * (y.sum() + 1) / 2) / (y.sum() * (~y).sum())
print(f"bank_a AUC: {auc:.2f}")

# %% [markdown]
# ## Expected output
#
# `tests/test_docs.py` runs this notebook and compares what it prints with this block (numbers
# within 1%, or one unit of their last printed digit).
#
# ```text
# {'bank_a': 1600, 'bank_b': 1400, 'bank_c': 1000}
# ['customer_id', 'amount', 'merchant_risk', 'hour', 'account_age_days', 'is_fraud', 'channel']
# # DRAFT schema proposed by `tessera schema draft` from bank_a, bank_b, bank_c.
# amount float {'type': 'float', 'min': 0.0, 'max': 10000.0}
# merchant_risk float {'type': 'float', 'min': 0.0, 'max': 1.0}
# hour int {'type': 'int', 'min': 0.0, 'max': 40.0}
# account_age_days int {'type': 'int', 'min': 0.0, 'max': 4000.0}
# is_fraud bool {'type': 'bool'}
# channel category {'type': 'category', 'levels': ['atm', 'online', 'pos']}
# 4000 rows
# revealed: guard -> all recipients
# revealed: coefficients -> all recipients
# revealed: std_errors -> all recipients
# revealed: n -> all recipients
# note: feature 'channel' (categorical) is one-hot encoded as channel[pos], channel[atm]; reference level 'online' (the first declared level: its rows have every indicator 0)
# intercept       -3.6297
# amount           0.0006
# merchant_risk    2.8297
# hour            -0.0987
# channel[pos]    -1.2907
# channel[atm]    -0.5898
# agrees with statsmodels within 0.01: True
# bank_a AUC: 0.80
# ```
