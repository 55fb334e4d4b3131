"""Loading a party's rows from every kind of source gives the same checked values."""

import os

import numpy as np
import pandas as pd
import pytest

from tessera.data import LocalTable, SqlSource, load, validate
from tessera.data.schema import Schema
from tessera.errors import DataError
from tests.data.common import SCHEMA, good_frame, write

LEVELS = {"low": 0, "mid": 1, "high": 2}


def expected(df: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        "amount": df["amount"].to_numpy(float), "count": df["count"].to_numpy(float),
        "flag": df["flag"].to_numpy(float), "kind": df["kind"].map(LEVELS).to_numpy(np.int64),
        "score": df["score"].to_numpy(float),
    }


def test_every_source_kind_gives_the_same_values(tmp_path, kind):
    df = good_frame()
    with load(write(df, tmp_path, kind), SCHEMA, key="id") as t:
        assert isinstance(t, LocalTable) and t.n_rows == len(df) and t.columns == SCHEMA.names
        got, want = t.arrays(nulls="keep"), expected(df)
        for c in SCHEMA.names:
            np.testing.assert_array_equal(got[c], want[c])
        assert got["kind"].dtype == np.int64 and got["amount"].dtype == np.float64
        assert t.ids().tolist() == df["id"].tolist()  # row order and leading zeros kept


def test_sql_source_over_files_and_frames(tmp_path):
    df = good_frame()
    df.drop(columns=["kind"]).to_parquet(tmp_path / "tx.parquet")
    kinds = df[["id", "kind"]].rename(columns={"kind": "k"})
    src = SqlSource("SELECT tx.*, kinds.k AS kind FROM tx JOIN kinds USING (id) ORDER BY id;",
                    tables={"tx": tmp_path / "tx.parquet", "kinds": kinds})
    with load(src, SCHEMA, key="id") as t:
        np.testing.assert_array_equal(t.arrays(nulls="keep")["kind"], expected(df)["kind"])
        assert t.n_rows == len(df) and t.name == "SQL source"


def test_only_the_chosen_columns_are_read_and_checked():
    df = good_frame().assign(count=-1)  # invalid, but not selected
    with load(df, SCHEMA, ["amount", "kind"]) as t:
        assert t.columns == ["amount", "kind"] and t.schema.names == ["amount", "kind"]
    with pytest.raises(DataError, match="not in the schema"):
        load(df, SCHEMA, ["amount", "nope"])


def test_materialized_and_scanned_tables_agree(tmp_path):
    df = good_frame()
    for kind in ("csv", "parquet"):
        src = write(df, tmp_path, kind)
        with load(src, SCHEMA, materialize=True) as a, load(src, SCHEMA, materialize=False) as b:
            for c in SCHEMA.names:
                np.testing.assert_array_equal(a.arrays()[c], b.arrays()[c])


def test_mapping_view_lines_columns_up():
    df = good_frame()
    with load(df, SCHEMA) as t:
        complete = df["score"].notna().to_numpy()
        assert len(t) == len(SCHEMA.names) and list(t) == SCHEMA.names
        np.testing.assert_array_equal(t["amount"], df["amount"].to_numpy()[complete])
        assert all(len(t[c]) == complete.sum() for c in t)
        assert list(dict(t)) == SCHEMA.names  # a real Mapping: dict() and ** work
        with pytest.raises(KeyError):
            t["nope"]


def test_readable_errors_for_unreadable_sources(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nope.csv", SCHEMA)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(DataError, match="suffix"):
        load(tmp_path / "x.json", SCHEMA)
    with pytest.raises(DataError, match="ParserException"):
        load(SqlSource("SELEC amount"), SCHEMA)
    with pytest.raises(DataError, match="cannot read a list"):
        load([1, 2], SCHEMA)  # type: ignore[arg-type]


def test_engine_errors_that_may_quote_data_are_withheld():
    src = SqlSource("SELECT CAST(v AS INTEGER) AS amount FROM (SELECT 'top-secret-42' AS v)")
    with pytest.raises(DataError) as e:
        load(src, SCHEMA, ["amount"])
    assert "top-secret" not in str(e.value) and "withheld" in str(e.value)


def test_validate_reports_without_loading():
    report = validate(good_frame(), SCHEMA)
    assert report.ok and report.n_rows == 200 and report.message().endswith("valid")


def test_awkward_names_pandas_extension_types_and_integer_keys():
    schema = Schema.from_dict({
        'odd "name"': {"type": "float", "min": 0, "max": 1},
        "cat": {"type": "category", "levels": ["O'Brien", "x"]},
        "n": {"type": "int", "min": 0, "max": 9, "nullable": True},
        "b": {"type": "bool", "nullable": True},
    })
    df = pd.DataFrame({'odd "name"': [0.5, 1.0], "cat": pd.Categorical(["O'Brien", "x"]),
                       "n": pd.array([1, None], dtype="Int64"), "b": pd.array([True, None], dtype="boolean"),
                       "k": [10, 11]})
    with load(df, schema, key="k") as t:
        got = t.arrays(nulls="keep")
        assert got['odd "name"'].tolist() == [0.5, 1.0] and got["cat"].tolist() == [0, 1]
        assert np.isnan(got["n"][1]) and np.isnan(got["b"][1]) and t.ids().tolist() == ["10", "11"]


def test_an_empty_source_gives_empty_reductions():
    with load(good_frame().iloc[:0], SCHEMA) as t:
        s = t.sums()
        assert t.n_rows == 0 and s.count == 0 and not s.sum.any() and np.isnan(s.min).all()
        assert t.arrays()["amount"].size == 0 and t.count() == 0 and len(t["kind"]) == 0


def test_a_file_replaced_after_its_check_is_refused(tmp_path):
    path = write(good_frame(), tmp_path, "parquet")
    with load(path, SCHEMA) as t:
        assert t.sums(["amount"]).count == 200
        bad = good_frame().assign(amount=1e9)
        bad.to_parquet(path)
        os.utime(path, ns=(0, 12345))  # a different modification time, whatever the clock
        with pytest.raises(DataError, match="changed after it was loaded"):
            t.sums(["amount"])
    with load(good_frame(), SCHEMA, materialize=True) as frozen:
        assert frozen.count() == good_frame()["score"].notna().sum()


def test_bad_query_sql_is_a_data_error_naming_its_class():
    query = SqlSource('SELECT sum("nope") AS amount FROM t', tables={"t": good_frame()})
    with pytest.raises(DataError, match="BinderException"):
        load(query, SCHEMA, ["amount"])
