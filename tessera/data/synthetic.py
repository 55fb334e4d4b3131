"""Synthetic data with known ground truth, for demos, tests and benchmarks.

This is test data, not secret randomness: it uses numpy's seeded generator on purpose, so a
seed reproduces the same data everywhere.

* :func:`bank_transactions` — card transactions split across banks (unequal sizes, each bank its
  own rows), fraud labels drawn from the known logistic model :data:`TRUE_FRAUD_MODEL`;
* :func:`vertical_fraud` — bank A holds customers' features, bank B fraud labels for an
  overlapping set of customers, keyed by string identifiers; with the true join;
* :func:`hospital_trials` — one randomised study per hospital with a known treatment effect and
  between-hospital heterogeneity ``tau2`` (a random effect).

Each returns pandas DataFrames, their :class:`~tessera.data.schema.Schema` (the identifier
column ``customer_id`` is a key, outside the schema) and the truth as a small frozen dataclass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tessera.data.schema import Column, ColumnType, Schema

__all__ = ["FraudTruth", "TRUE_FRAUD_MODEL", "bank_transactions", "BANK_SCHEMA", "split_sizes", "TrialTruth",
           "hospital_trials", "HOSPITAL_SCHEMA", "vertical_fraud", "DEFAULT_BANK_WEIGHTS", "hospital_sizes",
           "many_hospitals", "many_banks"]

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

#: The banks' shares of the rows when none are given: unequal on purpose.
DEFAULT_BANK_WEIGHTS = (0.40, 0.35, 0.25)


@dataclass(frozen=True)
class FraudTruth:
    """The logistic model the fraud labels were drawn from:
    ``P(is_fraud) = sigmoid(intercept + sum(coefficients[c] * frame[c]))`` on the raw columns.

    :meth:`scaled` gives the same model on affinely scaled features, e.g. on the features
    scaled to ``[-1, 1]`` by their declared bounds (:meth:`bounds_scaled`, the scaling the
    analytics use) or standardised to mean 0 and variance 1 (:meth:`standardised`).
    """

    intercept: float
    coefficients: dict[str, float] = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        return list(self.coefficients)

    def logit(self, frame: pd.DataFrame) -> np.ndarray:
        """The true log-odds of fraud for each row of ``frame``."""
        out = np.full(len(frame), self.intercept, dtype=np.float64)
        for c, b in self.coefficients.items():
            out += b * frame[c].to_numpy(dtype=np.float64)
        return out

    def probability(self, frame: pd.DataFrame) -> np.ndarray:
        """The true probability of fraud for each row of ``frame``."""
        return np.asarray(1.0 / (1.0 + np.exp(-self.logit(frame))), dtype=np.float64)

    def scaled(self, scaling: Mapping[str, tuple[float, float]]) -> FraudTruth:
        """The same model for features ``z = (x - center) / scale`` given per column as
        ``(center, scale)``: ``b_z = b * scale`` and the intercept absorbs ``b * center``."""
        coef = {c: b * scaling[c][1] for c, b in self.coefficients.items()}
        icpt = self.intercept + sum(b * scaling[c][0] for c, b in self.coefficients.items())
        return FraudTruth(float(icpt), coef)

    def bounds_scaled(self, schema: Schema) -> FraudTruth:
        """The model on features scaled to ``[-1, 1]`` by their declared bounds (center
        ``(min + max) / 2``, scale ``(max - min) / 2``)."""
        scaling = {}
        for c in self.coefficients:
            lo, hi = schema.column(c).bounds
            scaling[c] = ((lo + hi) / 2, (hi - lo) / 2 or 1.0)
        return self.scaled(scaling)

    def standardised(self, frame: pd.DataFrame) -> FraudTruth:
        """The model on features standardised by ``frame``'s means and (population) standard
        deviations, as scikit-learn's ``StandardScaler`` does."""
        return self.scaled({c: (float(frame[c].mean()), float(frame[c].std(ddof=0)) or 1.0)
                            for c in self.coefficients})


TRUE_FRAUD_MODEL = FraudTruth(
    intercept=-4.0,
    coefficients={"amount": 0.0006, "merchant_risk": 3.0, "hour": -0.05, "account_age_days": -0.0004},
)


def split_sizes(n: int, weights: Sequence[float]) -> list[int]:
    """Integer sizes proportional to ``weights`` that add up to ``n`` (the rounding remainder
    goes to the first part)."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or w.size == 0 or not np.all(w > 0):
        raise ValueError("weights must be one or more positive numbers")
    w = w / w.sum()
    sizes = np.floor(w * n).astype(int)
    sizes[0] += n - sizes.sum()
    return [int(k) for k in sizes]


def _bank_weights(banks: Sequence[str], weights: Sequence[float] | None) -> Sequence[float]:
    if weights is None:
        k = len(banks)
        # 40/35/25 for three banks (a prefix for fewer); more banks get k, k-1, ..., 1 shares
        return DEFAULT_BANK_WEIGHTS[:k] if k <= len(DEFAULT_BANK_WEIGHTS) else tuple(range(k, 0, -1))
    if len(weights) != len(banks):
        raise ValueError(f"{len(weights)} weights for {len(banks)} banks; give one weight per bank")
    return weights


def bank_transactions(
    n_rows: int = 30_000,
    banks: tuple[str, ...] = ("bank_a", "bank_b", "bank_c"),
    weights: Sequence[float] | None = None,
    seed: int = 7,
) -> tuple[dict[str, pd.DataFrame], Schema, FraudTruth]:
    """Card transactions for several banks with fraud labels drawn from :data:`TRUE_FRAUD_MODEL`.

    Columns: ``customer_id`` (string key, one transaction per customer), ``amount`` (lognormal,
    clipped to the declared ``[0, 10000]``, cents), ``merchant_risk`` (Beta(2, 5) in ``[0, 1]``),
    ``hour`` (0..23), ``account_age_days`` (0..3650), ``is_fraud`` (bool, about 1.3% true) and
    ``channel`` (online/pos/atm, online more often for fraud). Rows are split across ``banks``
    in proportion to ``weights`` (default 40/35/25%), each bank its own rows. Returns the frames
    by bank, :data:`BANK_SCHEMA` and the truth.
    """
    if n_rows < len(banks):
        raise ValueError(f"{n_rows} rows cannot be split across {len(banks)} banks")
    sizes = split_sizes(n_rows, _bank_weights(banks, weights))
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
    for bank, size in zip(banks, sizes):
        out[bank] = frame.iloc[start : start + size].reset_index(drop=True)
        start += size
    return out, BANK_SCHEMA, t


@dataclass(frozen=True)
class TrialTruth:
    """How the hospitals' outcomes were drawn. In hospital ``h``, for a patient::

        outcome = baseline + study_effects[h] * treatment + sum(coefficients[c] * (x_c - centers[c]))
                  + Normal(0, noise_sd^2)

    with ``study_effects[h] = effect + Normal(0, tau2)`` (the random effect), treatment assigned
    with probability 1/2, and sex unrelated to the outcome.
    """

    effect: float
    tau2: float
    study_effects: dict[str, float] = field(default_factory=dict)
    baseline: float = 120.0
    coefficients: dict[str, float] = field(
        default_factory=lambda: {"age": 0.3, "biomarker_1": 2.0, "biomarker_2": 0.5})
    centers: dict[str, float] = field(default_factory=lambda: {"age": 50.0, "biomarker_1": 0.0, "biomarker_2": 0.0})
    noise_sd: float = 8.0


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

DEFAULT_HOSPITALS = {"hospital_north": 1800, "hospital_south": 1200, "hospital_east": 700}


def hospital_trials(
    sizes: dict[str, int] | None = None, effect: float = -4.0, tau2: float = 2.0, seed: int = 11
) -> tuple[dict[str, pd.DataFrame], Schema, TrialTruth]:
    """One randomised study per hospital (``sizes``: rows per hospital, default 1800/1200/700).

    The outcome shifts by the hospital's own treatment effect (``effect`` plus a deviation of
    variance ``tau2``) under treatment and depends on age and the two biomarkers, as
    :class:`TrialTruth` states. Columns: ``treatment`` (bool), ``outcome`` (float), ``age``
    (18..95), ``biomarker_1`` (Normal(0, 2) clipped to ±10), ``biomarker_2`` (Gamma(4, 3)
    clipped to [0, 50]), ``sex`` (F/M). Returns the frames by hospital, :data:`HOSPITAL_SCHEMA`
    and the truth (with every hospital's realised effect in ``study_effects``).
    """
    sizes = sizes or dict(DEFAULT_HOSPITALS)
    if tau2 < 0 or any(n < 2 for n in sizes.values()):
        raise ValueError("tau2 must be >= 0 and every hospital needs at least 2 patients")
    truth = TrialTruth(effect, tau2)
    b, m = truth.coefficients, truth.centers
    rng = np.random.default_rng(seed)
    frames, effects = {}, {}
    for name, n in sizes.items():
        study_effect = effect + rng.normal(0.0, np.sqrt(tau2))
        effects[name] = float(study_effect)
        treat = rng.random(n) < 0.5
        age = rng.integers(18, 96, n)
        b1 = rng.normal(0, 2, n).clip(-10, 10)
        b2 = rng.gamma(4.0, 3.0, n).clip(0, 50)
        outcome = (truth.baseline + study_effect * treat + b["age"] * (age - m["age"])
                   + b["biomarker_1"] * (b1 - m["biomarker_1"]) + b["biomarker_2"] * (b2 - m["biomarker_2"])
                   + rng.normal(0, truth.noise_sd, n))
        frames[name] = pd.DataFrame({
            "treatment": treat, "outcome": outcome.clip(0, 300), "age": age, "biomarker_1": b1.round(3),
            "biomarker_2": b2.round(3), "sex": np.where(rng.random(n) < 0.5, "F", "M"),
        })
    return frames, HOSPITAL_SCHEMA, TrialTruth(effect, tau2, effects)


def vertical_fraud(
    n_customers: int = 20_000, overlap: float = 0.6, seed: int = 5
) -> tuple[dict[str, pd.DataFrame], Schema, FraudTruth, pd.DataFrame]:
    """Two banks keyed by the string ``customer_id``, rows in unrelated orders.

    ``bank_a`` holds the transaction features (amount, merchant_risk, hour, account_age_days)
    of ``n_customers`` customers; ``bank_b`` holds ``is_fraud`` for each of them with
    probability ``overlap`` (drawn from :data:`TRUE_FRAUD_MODEL`), plus ``n_customers // 4``
    customers of its own that A does not know (labels at a 3% rate). Returns the frames, the
    schema, the truth and the true join (every column of the shared customers, for checking
    only, in customer-id order).
    """
    if not 0.0 <= overlap <= 1.0:
        raise ValueError("overlap is a fraction of bank A's customers, in [0, 1]")
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


def hospital_sizes(n: int, rows: tuple[int, int] = (60, 400), seed: int = 5) -> dict[str, int]:
    """Rows per hospital for ``n`` hospitals (``hospital_01`` ...), unequal: uniform in ``rows``."""
    if n < 1 or rows[0] < 2 or rows[1] < rows[0]:
        raise ValueError("at least one hospital, and at least 2 rows each")
    rng = np.random.default_rng(seed)
    return {f"hospital_{i + 1:02d}": int(v) for i, v in enumerate(rng.integers(rows[0], rows[1] + 1, n))}


def many_hospitals(n: int = 30, rows: tuple[int, int] = (60, 400), effect: float = -4.0, tau2: float = 2.0,
                   seed: int = 11) -> tuple[dict[str, pd.DataFrame], Schema, TrialTruth]:
    """:func:`hospital_trials` for ``n`` hospitals (default 30) of :func:`hospital_sizes` rows: a
    consortium of many small studies (input-only data owners of an outsourced meta-analysis)."""
    return hospital_trials(hospital_sizes(n, rows, seed), effect=effect, tau2=tau2, seed=seed)


def many_banks(n: int = 10, n_rows: int = 5000, seed: int = 7) -> tuple[dict[str, pd.DataFrame], Schema, FraudTruth]:
    """:func:`bank_transactions` split across ``n`` banks (default 10, ``bank_01`` ...), unequal sizes."""
    return bank_transactions(n_rows, banks=tuple(f"bank_{i + 1:02d}" for i in range(n)), seed=seed)
