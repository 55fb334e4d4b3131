"""Every kind of schema violation is refused, naming the column and the count, never a value."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tessera.data import load, validate
from tessera.data.schema import Schema
from tessera.errors import DataError
from tests.data.common import SCHEMA, good_frame, write


def refuse(src, schema=SCHEMA, **kw) -> str:
    with pytest.raises(DataError) as e:
        load(src, schema, **kw)
    return str(e.value)


def test_missing_columns_are_all_named(tmp_path, kind):
    msg = refuse(write(good_frame().drop(columns=["count", "kind"]), tmp_path, kind))
    assert "missing columns ['count', 'kind']" in msg


def test_out_of_bounds(tmp_path, kind):
    df = good_frame()
    df.loc[[3, 7, 11], "amount"] = [1234.5678, -0.25, 98765.4321]
    msg = refuse(write(df, tmp_path, kind))
    assert "column 'amount': 3 rows with a value outside the declared bounds [0.0, 1000.0]" in msg
    for secret in ("1234.5678", "0.25", "98765"):
        assert secret not in msg


def test_text_in_a_number_column(tmp_path):
    df = good_frame().astype({"amount": object})
    df.loc[[1, 2], "amount"] = ["secret-text", "1,5"]
    for kind in ("frame", "csv", "parquet"):
        msg = refuse(write(df.astype({"amount": str}), tmp_path, kind))
        assert "column 'amount': 2 rows with a value that is not a number (declared float)" in msg
        assert "secret-text" not in msg and "1,5" not in msg


def test_late_text_in_a_large_csv_is_counted_not_fatal(tmp_path):
    # DuckDB samples CSV rows to guess types; the local engine reads CSV as text so a word far
    # down the file is a counted type error, not a conversion failure quoting it
    df = pd.DataFrame({"amount": np.full(50_000, 1.5)}).astype(object)
    df.loc[49_999, "amount"] = "needle-value"
    df.to_csv(tmp_path / "late.csv", index=False)
    msg = refuse(tmp_path / "late.csv", SCHEMA, columns=["amount"])
    assert "'amount': 1 row with a value that is not a number" in msg and "needle" not in msg


def test_nulls_in_non_nullable_columns(tmp_path, kind):
    df = good_frame()
    df.loc[[0, 5], "amount"] = np.nan
    df.loc[[9], "kind"] = None
    msg = refuse(write(df, tmp_path, kind))
    assert "column 'amount': 2 rows with NULL or NaN" in msg and "column 'kind': 1 row with NULL" in msg
    assert "score" not in msg  # nullable


def test_nan_in_parquet_is_caught_despite_statistics(tmp_path):
    # pyarrow writes min/max statistics that leave NaN out; DuckDB's optimiser would trust them
    values = np.linspace(1.0, 900.0, 1000)
    values[500] = np.nan
    pq.write_table(pa.table({"amount": pa.array(values, from_pandas=False)}), tmp_path / "nan.parquet")
    msg = refuse(tmp_path / "nan.parquet", columns=["amount"])
    assert "column 'amount': 1 row with NULL or NaN" in msg


def test_non_integers_in_an_int_column(tmp_path, kind):
    df = good_frame().astype({"count": float})
    df.loc[[4, 8, 15, 16], "count"] = [2.5, 3.25, 7.125, 49.875]
    msg = refuse(write(df, tmp_path, kind))
    assert "column 'count': 4 rows with a value that is not a whole number (declared int)" in msg
    assert "2.5" not in msg and "7.125" not in msg and "49.875" not in msg


def test_bool_values(tmp_path):
    ok = pd.DataFrame({"flag": ["0", "1", "TRUE", "false", " True "]})
    assert load(ok, SCHEMA, ["flag"]).arrays()["flag"].tolist() == [0, 1, 1, 0, 1]
    assert load(pd.DataFrame({"flag": [0, 1, 1]}), SCHEMA, ["flag"]).arrays()["flag"].tolist() == [0, 1, 1]
    msg = refuse(pd.DataFrame({"flag": ["yes", "1", "2"]}), columns=["flag"])
    assert "column 'flag': 2 rows with a value that is not a boolean" in msg and "yes" not in msg
    msg = refuse(pd.DataFrame({"flag": [0.0, 0.5, 17.0]}), columns=["flag"])
    assert "column 'flag': 2 rows with a value that is not a boolean" in msg and "17" not in msg


def test_unknown_category_levels(tmp_path, kind):
    df = good_frame()
    df.loc[[2, 3, 4], "kind"] = ["extreme", "LOW", "confidential-level"]
    msg = refuse(write(df, tmp_path, kind))
    assert "column 'kind': 3 rows with a value that is not one of the 3 declared levels" in msg
    for secret in ("extreme", "LOW", "confidential"):
        assert secret not in msg


def test_one_error_names_every_offending_column_with_its_counts(tmp_path, kind):
    df = good_frame().astype({"count": float, "flag": int})
    df.loc[[0, 1], "amount"] = [-1.0, 5000.0]
    df.loc[[2], "count"] = 1.5
    df.loc[[3, 4, 5], "flag"] = 7
    df.loc[[6], "kind"] = "nope"
    df = df.drop(columns=["score"])
    report = validate(write(df, tmp_path, kind), SCHEMA)
    found = {(v.column, v.kind): v.rows for v in report.violations}
    assert found == {("score", "missing"): 0, ("amount", "bounds"): 2, ("count", "integer"): 1,
                     ("flag", "bool"): 3, ("kind", "level"): 1}
    msg = refuse(write(df, tmp_path, kind))
    assert msg == report.message()
    assert all(f"'{c}'" in msg for c in ("amount", "count", "flag", "kind", "score"))


def test_key_column_must_exist_and_identify_every_row():
    df = good_frame()
    df.loc[[1, 2], "id"] = None
    msg = refuse(df, key="id")
    assert "column 'id': 2 rows with no identifier (NULL) in the key column" in msg
    assert "missing columns ['cust']" in refuse(good_frame(), key="cust")


def test_declared_row_bound():
    assert "50 rows beyond the declared bound of 150 rows" in refuse(good_frame(200), max_rows=150)
    assert load(good_frame(200), SCHEMA, max_rows=200).n_rows == 200


def test_infinities_are_out_of_bounds_and_wrong_types_are_counted():
    schema = Schema.from_dict({"x": {"type": "float", "min": 0, "max": 1}})
    pq_like = pd.DataFrame({"x": [0.5, np.inf, -np.inf]})
    assert "2 rows with a value outside" in refuse(pq_like, schema)
    dates = pd.DataFrame({"x": pd.to_datetime(["2020-01-01", "2021-06-30"])})
    assert "2 rows with a value that is not a number" in refuse(dates, schema)
