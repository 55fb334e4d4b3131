"""Synthetic data with known ground truth, for demos, tests and benchmarks.

This is test data, not secret randomness: it uses numpy's seeded generator on purpose, so a
seed reproduces the same data everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tessera.data.schema import Column, ColumnType, Schema

__all__ = ["FraudTruth", "bank_transactions", "BANK_SCHEMA", "split_sizes", "TrialTruth", "hospital_trials",
           "HOSPITAL_SCHEMA", "vertical_fraud"]

BANK_SCHEMA = Schema(
    columns=(
        Column(name="amount", type=ColumnType.FLOAT, min=0.0, max=10_000.0),
        Column(name="merchant_risk", type=ColumnType.FLOAT, min=0.0, max=1.0),
        Column(name="hour", type=ColumnType.INT, min=0, max=23),
        Column(name="account_age_days", type=ColumnType.INT, min=0, max=3650),
        Column(name="is_fraud", type=ColumnType.BOOL),
        Column(name="channel", type=ColumnType.CATEGORY, levels=("online", "pos", "atm")),
    )
)


@dataclass(frozen=True)
class FraudTruth:
    """The logistic model the fraud labels were drawn from: logit = intercept + sum(coef * column)."""

    intercept: float
    coefficients: dict[str, float] = field(default_factory=dict)


TRUE_FRAUD_MODEL = FraudTruth(
    intercept=-4.0,
    coefficients={"amount": 0.0006, "merchant_risk": 3.0, "hour": -0.05, "account_age_days": -0.0004},
)


def split_sizes(n: int, weights: tuple[float, ...]) -> list[int]:
    """Integer sizes proportional to ``weights`` that add up to ``n``."""
    w = np.asarray(weights, dtype=float) / sum(weights)
    sizes = np.floor(w * n).astype(int)
    sizes[0] += n - sizes.sum()
    return sizes.tolist()


def bank_transactions(
    n_rows: int = 30_000,
    banks: tuple[str, ...] = ("bank_a", "bank_b", "bank_c"),
    weights: tuple[float, ...] = (0.40, 0.35, 0.25),
    seed: int = 7,
) -> tuple[dict[str, pd.DataFrame], Schema, FraudTruth]:
    """Card transactions for several banks (each its own rows, unequal sizes) with fraud labels
    drawn from :data:`TRUE_FRAUD_MODEL`. Returns the frames by bank, their schema, and the truth."""
    rng = np.random.default_rng(seed)
    n = n_rows
    amount = np.clip(rng.lognormal(4.5, 1.1, n), 0.0, 10_000.0).round(2)
    risk = rng.beta(2.0, 5.0, n).round(4)
    hour = rng.integers(0, 24, n)
    age = rng.integers(0, 3651, n)
    t = TRUE_FRAUD_MODEL
    logit = t.intercept + sum(t.coefficients[c] * v for c, v in
                              (("amount", amount), ("merchant_risk", risk), ("hour", hour), ("account_age_days", age)))
    fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    # the channel depends on fraud a little (fraud is more often online)
    channel = np.where(rng.random(n) < np.where(fraud, 0.7, 0.45), "online",
                       np.where(rng.random(n) < 0.8, "pos", "atm"))
    ids = np.array([f"c{seed}-{i:08d}" for i in range(n)])
    frame = pd.DataFrame({"customer_id": ids, "amount": amount, "merchant_risk": risk, "hour": hour,
                          "account_age_days": age, "is_fraud": fraud, "channel": channel})
    out, start = {}, 0
    for bank, size in zip(banks, split_sizes(n, weights[: len(banks)] if len(weights) >= len(banks) else (1.0,) * len(banks))):
        out[bank] = frame.iloc[start : start + size].reset_index(drop=True)
        start += size
    return out, BANK_SCHEMA, t


@dataclass(frozen=True)
class TrialTruth:
    """The treatment effect the hospitals' outcomes were drawn from, and its heterogeneity."""

    effect: float
    tau2: float
    study_effects: dict[str, float] = field(default_factory=dict)


HOSPITAL_SCHEMA = Schema(
    columns=(
        Column(name="treatment", type=ColumnType.BOOL),
        Column(name="outcome", type=ColumnType.FLOAT, min=0.0, max=300.0),
        Column(name="age", type=ColumnType.INT, min=18, max=95),
        Column(name="biomarker_1", type=ColumnType.FLOAT, min=-10.0, max=10.0),
        Column(name="biomarker_2", type=ColumnType.FLOAT, min=0.0, max=50.0),
        Column(name="sex", type=ColumnType.CATEGORY, levels=("F", "M")),
    )
)


def hospital_trials(
    sizes: dict[str, int] | None = None, effect: float = -4.0, tau2: float = 2.0, seed: int = 11
) -> tuple[dict[str, pd.DataFrame], Schema, TrialTruth]:
    """One randomised study per hospital (unequal sizes): the outcome falls by ``effect`` plus a
    hospital-specific deviation of variance ``tau2`` under treatment, and depends on age and the
    biomarkers. Returns the frames by hospital, their schema and the truth."""
    sizes = sizes or {"hospital_north": 1800, "hospital_south": 1200, "hospital_east": 700}
    rng = np.random.default_rng(seed)
    frames, effects = {}, {}
    for name, n in sizes.items():
        study_effect = effect + rng.normal(0.0, np.sqrt(tau2))
        effects[name] = float(study_effect)
        treat = rng.random(n) < 0.5
        age = rng.integers(18, 96, n)
        b1 = rng.normal(0, 2, n).clip(-10, 10)
        b2 = rng.gamma(4.0, 3.0, n).clip(0, 50)
        outcome = 120 + study_effect * treat + 0.3 * (age - 50) + 2.0 * b1 + 0.5 * b2 + rng.normal(0, 8, n)
        frames[name] = pd.DataFrame({
            "treatment": treat, "outcome": outcome.clip(0, 300), "age": age, "biomarker_1": b1.round(3),
            "biomarker_2": b2.round(3), "sex": np.where(rng.random(n) < 0.5, "F", "M"),
        })
    return frames, HOSPITAL_SCHEMA, TrialTruth(effect, tau2, effects)


def vertical_fraud(
    n_customers: int = 20_000, overlap: float = 0.6, seed: int = 5
) -> tuple[dict[str, pd.DataFrame], Schema, FraudTruth, pd.DataFrame]:
    """Two banks keyed by ``customer_id``: bank A holds transaction features of its customers,
    bank B holds fraud outcomes for an overlapping set (``overlap`` of A's customers, plus its
    own others), rows in unrelated orders. Returns the frames, the schema, the truth, and the
    true join (for checking only)."""
    frames, schema, truth = bank_transactions(n_customers, banks=("all",), weights=(1.0,), seed=seed)
    full = frames["all"]
    rng = np.random.default_rng(seed + 1)
    common = rng.random(n_customers) < overlap
    a = full[["customer_id", "amount", "merchant_risk", "hour", "account_age_days"]].sample(frac=1.0, random_state=seed)
    extra = pd.DataFrame({"customer_id": [f"b-only-{i:07d}" for i in range(n_customers // 4)],
                          "is_fraud": rng.random(n_customers // 4) < 0.03})
    b = pd.concat([full.loc[common, ["customer_id", "is_fraud"]], extra]).sample(frac=1.0, random_state=seed + 2)
    join = full.loc[common].reset_index(drop=True)
    return {"bank_a": a.reset_index(drop=True), "bank_b": b.reset_index(drop=True)}, schema, truth, join
