"""The local engine's reductions match numpy on the same rows (relative 1e-9), NULLs dropped."""

import numpy as np
import pandas as pd
import pytest

from tessera.data import load
from tessera.data.schema import Schema
from tessera.errors import DataError
from tests.data.common import SCHEMA, good_frame

RTOL = 1e-9
NUMERIC = ["amount", "count", "flag", "score"]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return good_frame(20_000, seed=3)


@pytest.fixture(scope="module")
def table(frame, tmp_path_factory):
    path = tmp_path_factory.mktemp("red") / "d.parquet"
    frame.to_parquet(path)
    with load(path, SCHEMA) as t:
        yield t


def numpy_matrix(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    x = frame[cols].astype(float).to_numpy()
    return x[~np.isnan(x).any(axis=1)]


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)


def test_sums_match_numpy_and_report_dropped_rows(table, frame):
    s = table.sums(NUMERIC)
    x = numpy_matrix(frame, NUMERIC)
    assert s.count == len(x) and s.dropped == frame["score"].isna().sum() > 0
    close(s.sum, x.sum(axis=0))
    close(s.sum_sq, (x * x).sum(axis=0))
    close(s.min, x.min(axis=0))
    close(s.max, x.max(axis=0))
    # a reduction that does not use the nullable column keeps every row
    full = table.sums(["amount"])
    assert full.count == len(frame) and full.dropped == 0
    close(full.sum, [frame["amount"].sum()])


def test_sums_with_scaling(table, frame):
    s = table.sums(["amount", "count"], scaling={"amount": (500.0, 500.0)})
    z = (frame["amount"].to_numpy() - 500.0) / 500.0
    close(s.sum, [z.sum(), frame["count"].sum()])
    close(s.sum_sq[:1], [(z * z).sum()])


def test_cross_products_match_numpy(table, frame):
    cp = table.cross_products(NUMERIC)
    x = numpy_matrix(frame, NUMERIC)
    assert cp.count == len(x) and cp.dropped == len(frame) - len(x)
    close(cp.sum, x.sum(axis=0))
    close(cp.xtx, x.T @ x)
    z = np.column_stack([np.ones(len(x)), x])
    close(cp.gram(), z.T @ z)
    scaled = table.cross_products(["amount", "score"], scaling={"amount": (500.0, 500.0), "score": (0.0, 5.0)})
    zs = (numpy_matrix(frame, ["amount", "score"]) - [500.0, 0.0]) / [500.0, 5.0]
    close(scaled.xtx, zs.T @ zs)


def test_group_counts_are_contingency_tables(table, frame):
    g = table.group_counts("kind", "flag")
    want = pd.crosstab(frame["kind"], frame["flag"]).reindex(index=["low", "mid", "high"], columns=[False, True])
    np.testing.assert_array_equal(g.table, want.to_numpy())
    assert g.levels == (("low", "mid", "high"), ("false", "true")) and g.count == len(frame) and g.dropped == 0
    one = table.group_counts("kind")
    np.testing.assert_array_equal(one.table, frame["kind"].value_counts().reindex(["low", "mid", "high"]).to_numpy())
    with pytest.raises(DataError, match="category or bool"):
        table.group_counts("amount")


def test_group_counts_keep_empty_levels_and_drop_nulls():
    schema = Schema.from_dict({"c": {"type": "category", "levels": ["a", "b", "c"], "nullable": True}})
    with load(pd.DataFrame({"c": ["a", None, "a", "c"]}), schema) as t:
        g = t.group_counts("c")
        assert g.table.tolist() == [2, 0, 1] and g.count == 3 and g.dropped == 1


@pytest.mark.parametrize("edges", [np.linspace(0, 1000, 11), np.linspace(100, 900, 200),
                                   np.array([-1.0, 0.5, 250.0, 251.0, 999.0])])
def test_histogram_matches_numpy(table, frame, edges):
    h = table.histogram("amount", edges)
    x = frame["amount"].to_numpy()
    counts, _ = np.histogram(x, bins=edges)
    np.testing.assert_array_equal(h.counts, counts)
    assert h.below == (x < edges[0]).sum() and h.above == (x > edges[-1]).sum()
    assert h.counts.sum() + h.below + h.above == h.count == len(frame)


def test_histogram_edges_are_exact_both_ways():
    # values on the edges: bins are [e_i, e_i+1) except the last, which is closed
    schema = Schema.from_dict({"x": {"type": "float", "min": 0, "max": 10, "nullable": True}})
    x = [0.0, 0.1, 0.2, 0.30000000000000004, 1.0, 1.0, 10.0, None]
    with load(pd.DataFrame({"x": x}), schema) as t:
        for edges in ([0.1, 0.2, 0.3, 1.0], np.linspace(0.0, 1.0, 101)):
            h = t.histogram("x", edges)
            want, _ = np.histogram(np.array(x[:-1], dtype=float), bins=np.asarray(edges))
            np.testing.assert_array_equal(h.counts, want)
            assert h.dropped == 1
        with pytest.raises(DataError, match="strictly increasing"):
            t.histogram("x", [1.0, 1.0])


def test_null_policy_is_listwise_per_reduction():
    schema = Schema.from_dict({"a": {"type": "float", "min": 0, "max": 9, "nullable": True},
                               "b": {"type": "float", "min": 0, "max": 9, "nullable": True}, "id": "bool"})
    df = pd.DataFrame({"a": [1.0, None, 3.0, 4.0], "b": [1.0, 2.0, None, 4.0], "k": ["w", "x", "y", "z"],
                       "id": [1, 0, 1, 0]})
    with load(df, schema, key="k") as t:
        assert t.sums(["a"]).count == 3 and t.sums(["a"]).dropped == 1
        both = t.cross_products(["a", "b"])
        assert both.count == 2 and both.dropped == 2 and both.xtx[0, 1] == 1 + 16
        assert t.arrays(["a", "b"])["a"].tolist() == [1.0, 4.0]
        keep = t.arrays(["a"], nulls="keep")["a"]
        assert np.isnan(keep[1]) and keep[2] == 3.0
        assert t.mask(["a", "b"]).tolist() == [True, False, False, True]
        assert t.ids(["a", "b"]).tolist() == ["w", "z"] and t.ids().tolist() == ["w", "x", "y", "z"]
        assert t.count() == 2 and t.count(["b"]) == 3
        assert t.aggregate(['sum("a")']).tolist() == [5.0]  # rows complete in every column
        assert t.aggregate(['sum("a")', 'max("b")'], columns=["a"]).tolist() == [8.0, 4.0]


def test_unknown_columns_are_refused(table):
    with pytest.raises(DataError, match="not loaded"):
        table.sums(["nope"])
