"""Shared data for the data-layer tests: a schema covering every column type, and writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tessera.data.schema import Schema

SCHEMA = Schema.from_dict({
    "amount": {"type": "float", "min": 0.0, "max": 1000.0},
    "count": {"type": "int", "min": 0, "max": 50},
    "flag": "bool",
    "kind": {"type": "category", "levels": ["low", "mid", "high"]},
    "score": {"type": "float", "min": -5.0, "max": 5.0, "nullable": True},
})


def good_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    score = rng.uniform(-5, 5, n)
    score[rng.random(n) < 0.1] = np.nan
    return pd.DataFrame({
        "id": [f"{i:06d}" for i in range(n)],  # leading zeros must survive
        "amount": rng.uniform(0, 1000, n).round(3),
        "count": rng.integers(0, 51, n),
        "flag": rng.random(n) < 0.3,
        "kind": rng.choice(["low", "mid", "high"], n),
        "score": score,
        "extra": "ignored",
    })


def write(df: pd.DataFrame, tmp_path: Path, kind: str) -> object:
    """``df`` as the source ``kind``: the DataFrame itself, a CSV or a Parquet file."""
    if kind == "frame":
        return df
    path = tmp_path / f"data.{kind}"
    if kind == "csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path)
    return path
