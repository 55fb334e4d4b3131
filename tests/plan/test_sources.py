import pandas as pd
import pytest

from tessera.data.schema import Column, Schema
from tessera.errors import DataError
from tessera.plan.sources import load_columns

SCHEMA = Schema(columns=(Column(name="a", type="float", min=0, max=10), Column(name="b", type="int", min=0, max=5)))


def test_csv_and_parquet_load(tmp_path):
    df = pd.DataFrame({"a": [1.5, 2.5, 9.0], "b": [0, 5, 3]})
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    for f in ("d.csv", "d.parquet"):
        cols = load_columns(str(tmp_path / f), SCHEMA, ["a", "b"])
        assert cols["a"].tolist() == [1.5, 2.5, 9.0] and cols["b"].tolist() == [0, 5, 3]


def test_violations_name_column_and_count_never_values(tmp_path):
    pd.DataFrame({"a": [1.0, 12345.678, 99999.5], "b": [1, None, 2]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(DataError) as e:
        load_columns(str(tmp_path / "bad.csv"), SCHEMA, ["a", "b"])
    msg = str(e.value)
    assert "'a': 2 rows outside" in msg and "'b': 1 rows are NULL" in msg
    assert "12345" not in msg and "99999" not in msg


def test_missing_file_and_column(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_columns(str(tmp_path / "nope.csv"), SCHEMA, ["a"])
    pd.DataFrame({"a": [1.0]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(DataError, match="missing columns \\['b'\\]"):
        load_columns(str(tmp_path / "x.csv"), SCHEMA, ["a", "b"])


def test_wrong_types_are_named_with_counts(tmp_path):
    (tmp_path / "t.csv").write_text("a,b\n1.5,2\nhello,3\nsecret-value,4.5\n")
    with pytest.raises(DataError) as e:
        load_columns(str(tmp_path / "t.csv"), SCHEMA, ["a", "b"])
    msg = str(e.value)
    assert "'a': 2 rows are not numbers" in msg and "'b': 1 rows are not whole numbers" in msg
    assert "hello" not in msg and "secret-value" not in msg
