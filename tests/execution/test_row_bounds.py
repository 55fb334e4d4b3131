"""The contract's bounds on a dataset's row count are enforced at the party's checked load (#15.10):
a dataset with too few or too many rows is refused naming its count, never a value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tessera.data.schema import Column, Schema
from tessera.errors import DataError
from tessera.jobs.local import run_local
from tessera.jobs.model import RowBounds

SCHEMA = Schema(columns=(Column(name="x", type="float", min=-1000.0, max=1000.0),))


def frames(sizes: dict[str, int]) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    return {n: pd.DataFrame({"x": rng.uniform(-10, 10, k).round(3) + 123.456}) for n, k in sizes.items()}


def test_too_few_rows_are_refused_with_the_count_threads():
    data = frames({"a": 12, "b": 300, "c": 300})
    bounds = {n: RowBounds(dataset=f"tx_{n}", min_rows=100) for n in data}
    with pytest.raises(DataError) as e:
        run_local("describe", data, SCHEMA, runtime="threads", row_bounds=bounds, columns=["x"])
    assert str(e.value) == "dataset 'tx_a' has 12 rows, the contract requires at least 100"
    assert "123" not in str(e.value)  # no value, only the count


def test_an_empty_dataset_is_refused_under_min_rows_dp_describe():
    data = frames({"a": 0, "b": 300, "c": 300})
    bounds = {n: RowBounds(dataset=f"tx_{n}", min_rows=100) for n in data}
    with pytest.raises(DataError, match=r"^dataset 'tx_a' has 0 rows, the contract requires at least 100$"):
        run_local("dp_describe", data, SCHEMA, runtime="threads", row_bounds=bounds, columns=["x"], epsilon=1.0)


def test_too_many_rows_are_refused_not_clipped_threads():
    data = frames({"a": 300, "b": 300, "c": 1001})
    bounds = {n: RowBounds(dataset=f"tx_{n}", max_rows=1000) for n in data}
    with pytest.raises(DataError, match=r"^dataset 'tx_c' has 1001 rows, the contract allows at most 1000$"):
        run_local("dp_describe", data, SCHEMA, runtime="threads", row_bounds=bounds, columns=["x"], epsilon=1.0)


def test_within_bounds_runs():
    data = frames({"a": 100, "b": 150, "c": 1000})
    bounds = {n: RowBounds(dataset=f"tx_{n}", min_rows=100, max_rows=1000) for n in data}
    res = run_local("describe", data, SCHEMA, runtime="threads", row_bounds=bounds, columns=["x"])
    assert res["count"] == 1250


@pytest.mark.slow
def test_bounds_are_checked_in_party_processes():
    data = frames({"a": 300, "b": 12, "c": 300})
    bounds = {n: RowBounds(dataset=f"tx_{n}", min_rows=100) for n in data}
    with pytest.raises(DataError, match=r"dataset 'tx_b' has 12 rows, the contract requires at least 100"):
        run_local("describe", data, SCHEMA, row_bounds=bounds, columns=["x"])


def test_vertical_bounds_count_the_dataset_before_the_psi():
    rng = np.random.default_rng(1)
    a = pd.DataFrame({"id": [str(i) for i in range(150)], "x": rng.uniform(-5, 5, 150)})
    b = pd.DataFrame({"id": [str(i) for i in range(100, 160)], "y": rng.uniform(-5, 5, 60)})
    schema = Schema(columns=(Column(name="x", type="float", min=-10.0, max=10.0),
                             Column(name="y", type="float", min=-10.0, max=10.0)))
    bounds = {"a": RowBounds(dataset="cust_a", min_rows=100), "b": RowBounds(dataset="fraud_b", min_rows=100)}
    with pytest.raises(DataError, match=r"^dataset 'fraud_b' has 60 rows, the contract requires at least 100$"):
        run_local("describe", {"a": a, "b": b}, schema, runtime="threads", partition="vertical",
                  psi_mode="intersection", join_key="id", row_bounds=bounds, columns=["x", "y"])
