"""The local engine's sums match numpy on the same rows (relative 1e-9), NULLs dropped listwise."""

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


def test_null_policy_is_listwise_per_reduction():
    schema = Schema.from_dict({"a": {"type": "float", "min": 0, "max": 9, "nullable": True},
                               "b": {"type": "float", "min": 0, "max": 9, "nullable": True}, "id": "bool"})
    df = pd.DataFrame({"a": [1.0, None, 3.0, 4.0], "b": [1.0, 2.0, None, 4.0], "k": ["w", "x", "y", "z"],
                       "id": [1, 0, 1, 0]})
    with load(df, schema, key="k") as t:
        assert t.sums(["a"]).count == 3 and t.sums(["a"]).dropped == 1
        both = t.arrays(["a", "b"])
        assert both["a"].tolist() == [1.0, 4.0] and float(both["a"] @ both["b"]) == 1 + 16
        keep = t.arrays(["a"], nulls="keep")["a"]
        assert np.isnan(keep[1]) and keep[2] == 3.0
        assert t.mask(["a", "b"]).tolist() == [True, False, False, True]
        assert t.ids(["a", "b"]).tolist() == ["w", "z"] and t.ids().tolist() == ["w", "x", "y", "z"]
        assert t.count() == 2 and t.count(["b"]) == 3
        assert t["a"].sum() == 5.0  # the mapping view: rows complete in every column
        assert t.sums(["a"]).sum.tolist() == [8.0] and t.arrays(["a"])["a"].sum() == 8.0


def test_unknown_columns_are_refused(table):
    with pytest.raises(DataError, match="not loaded"):
        table.sums(["nope"])
