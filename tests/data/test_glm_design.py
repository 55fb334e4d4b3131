"""The hybrid GLMs' in-memory passes (``GlmDesign``) equal the engine's SQL scan of the same sums,
across block boundaries and with NULLs dropped; the design is read once, with the row count and
target sum, and every later iterate reads no rows from the engine."""

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tessera.data import load
from tessera.data.reductions import GLM_BLOCK, GlmDesign, glm_result, glm_sql
from tessera.data.schema import Schema

SCHEMA = Schema.from_dict({
    "a": {"type": "float", "min": -10, "max": 10}, "b": {"type": "float", "min": 0, "max": 4, "nullable": True},
    "y": {"type": "bool"}, "k": {"type": "int", "min": 0, "max": 50}})
SCALING = {"a": (0.0, 10.0), "b": (2.0, 2.0)}
N = 2 * GLM_BLOCK + 123  # two full blocks and a partial one


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    a = np.clip(rng.normal(size=N) * 3, -10, 10)
    b = rng.uniform(0, 4, N)
    b[rng.random(N) < 0.05] = np.nan  # NULLs: those rows are left out of every sum
    return pd.DataFrame({"a": a, "b": b, "y": rng.random(N) < 1 / (1 + np.exp(-a / 3)),
                         "k": np.minimum(rng.poisson(np.exp(0.5 + 0.1 * a)), 50)})


def count_queries(table: Any) -> list[str]:
    """The queries the table's engine runs from now on (its DuckDB engine, instrumented)."""
    queries: list[str] = []
    engine = table._engine
    fetch, numpy = engine.fetch, engine.numpy
    engine.fetch = lambda sql, label: queries.append(sql) or fetch(sql, label)
    engine.numpy = lambda sql, label: queries.append(sql) or numpy(sql, label)
    return queries


@pytest.mark.parametrize("family, target, scale, offset", [("logistic", "y", 1.0, 0.0), ("poisson", "k", 50.0, 0.4)])
def test_in_memory_passes_equal_the_sql_scan(frame, family, target, scale, offset):
    with load(frame, SCHEMA) as t:
        beta = [0.3, -1.2, 0.7]
        design = t.glm_derivatives(["a", "b"], target, beta, family, scaling=SCALING, target_scale=scale,
                                   offset=offset)
        (row,) = t._fetch(glm_sql(t._relation, ["a", "b"], target, beta, family, SCALING, scale, offset,
                                  t._where(["a", "b", target])))
        scan = glm_result(row, 3)
    complete = int(frame["b"].notna().sum())
    assert design.n == scan.n == complete < N
    np.testing.assert_allclose(design.gradient, scan.gradient, rtol=1e-10)
    np.testing.assert_allclose(design.hessian, scan.hessian, rtol=1e-10)
    np.testing.assert_array_equal(design.hessian, design.hessian.T)


def test_the_design_is_read_once_with_its_count_and_target_sum(frame):
    with load(frame, SCHEMA) as t:
        queries = count_queries(t)
        n, y_sum = t.glm_totals(["a", "b"], "k", scaling=SCALING, target_scale=50.0)
        for beta in ([0.0, 0.0, 0.0], [0.1, 0.2, -0.3], [0.2, 0.1, 0.0]):
            t.glm_derivatives(["a", "b"], "k", beta, "poisson", scaling=SCALING, target_scale=50.0, offset=0.1)
        assert len(queries) == 1  # one read of the scaled columns; no sums scan, no scan per iterate
    kept = frame[frame["b"].notna()]
    assert n == len(kept)
    np.testing.assert_allclose(y_sum, kept["k"].sum() / 50.0, rtol=1e-12)


def test_no_rows_give_zero_derivatives():
    d = GlmDesign([np.empty(0), np.empty(0)], np.empty(0)).derivatives([0.1, 0.2, 0.3], "logistic")
    assert d.n == 0 and not d.gradient.any() and not d.hessian.any() and d.hessian.shape == (3, 3)
