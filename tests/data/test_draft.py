"""Schemas drafted from data (tessera.data.draft, ``tessera schema draft``): types, nullability,
levels, round bounds, the DRAFT header, and the round trip through the schema loader and run_local."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from typer.testing import CliRunner

from tessera.cli.analyses import _schema as load_schema_file
from tessera.cli.main import app
from tessera.data import Column, ColumnType, Schema, write_parquet
from tessera.data.draft import draft, draft_schema, round_bounds
from tessera.errors import DataError
from tessera.jobs.local import run_local

runner = CliRunner()


@pytest.mark.parametrize(("lo", "hi", "integer", "want"), [
    (3.2, 987.1, False, (0, 1000)), (18, 90, True, (0, 100)), (0.013, 0.97, False, (0, 1)),
    (-2.3, 3.1, False, (-5, 5)), (1990, 2020, True, (1980, 2020)), (0.3, 0.7, False, (0.2, 0.8)),
    (-987, -3.2, False, (-1000, 0)), (5, 5, False, (5, 10)), (0, 0, True, (0, 1)), (0.0001, 0.0003, True, (0, 1)),
])
def test_bounds_are_widened_outward_to_a_1_2_5_grid(lo, hi, integer, want):
    got = round_bounds(lo, hi, integer=integer)
    assert got == want
    assert got[0] <= lo and got[1] >= hi and got[1] > got[0]


def _frames() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(7)
    n = 300
    a = pd.DataFrame({
        "customer_id": [f"c{i:05d}" for i in range(n)],
        "amount": rng.uniform(3.2, 987.1, n),
        "age": rng.integers(18, 91, n),
        "is_fraud": rng.random(n) < 0.2,
        "channel": rng.choice(["pos", "online"], n),
        "score": np.where(rng.random(n) < 0.1, np.nan, rng.normal(0, 1, n)),
    })
    b = pd.DataFrame({
        "customer_id": [f"d{i:05d}" for i in range(n)],
        "amount": rng.uniform(0, 1500, n),
        "age": rng.uniform(20, 60, n),  # floats at the second party: the column is float
        "is_fraud": rng.random(n) < 0.2,
        "channel": rng.choice(["atm", "pos"], n),
        "score": rng.normal(0, 1, n),
    })
    return {"bank_a": a, "bank_b": b}


def test_a_draft_covers_every_party_with_types_levels_nulls_and_round_bounds():
    frames = _frames()
    d = draft(frames)
    s = d.schema
    assert s.names == ["amount", "age", "is_fraud", "channel", "score"]
    assert s.column("amount") == Column(name="amount", type=ColumnType.FLOAT, min=0, max=2000)
    age = s.column("age")
    assert age.type is ColumnType.FLOAT and (age.min, age.max) == (0, 100)  # int at one party, float at the other
    assert s.column("is_fraud").type is ColumnType.BOOL
    assert s.column("channel").levels == ("atm", "online", "pos")  # the union, sorted
    assert s.column("score").nullable and not s.column("amount").nullable
    assert "customer_id" in d.skipped and "distinct values" in d.skipped["customer_id"]
    assert d.sources == ["bank_a", "bank_b"]
    # one source, a pandas categorical keeps its declared order (its first level is the reference)
    one = pd.DataFrame({"grade": pd.Categorical(["low", "high", "mid"], categories=["low", "mid", "high"])})
    assert draft_schema(one).column("grade").levels == ("low", "mid", "high")
    assert draft_schema(frames, exclude=["score"]).names == ["amount", "age", "is_fraud", "channel"]


def test_a_column_that_is_text_in_one_source_and_numbers_in_another_is_refused_by_name():
    a = pd.DataFrame({"x": [1.0, 2.0]})
    b = pd.DataFrame({"x": ["a", "b"]})
    with pytest.raises(DataError, match="column 'x' is text in bank_b but numbers in bank_a"):
        draft({"bank_a": a, "bank_b": b})
    with pytest.raises(DataError, match="none of the columns could be drafted"):
        draft(pd.DataFrame({"id": [f"k{i}" for i in range(50)]}))


def test_a_column_with_only_nulls_is_skipped_unless_another_source_has_values():
    empty = pd.DataFrame({"x": [1.0, 2.0], "note": pd.Series([None, None], dtype=object),
                          "y": [np.nan, np.nan]})
    d = draft(empty)
    assert d.schema.names == ["x"]
    assert d.skipped == {"note": "no values (only NULLs) in any source: declare it by hand",
                         "y": "no values (only NULLs) in any source: declare it by hand"}
    full = pd.DataFrame({"x": [3.0], "note": ["a"], "y": [7.0]})
    s = draft_schema({"p": empty, "q": full})
    assert s.column("note") == Column(name="note", type=ColumnType.CATEGORY, levels=("a",), nullable=True)
    assert s.column("y") == Column(name="y", type=ColumnType.FLOAT, min=5, max=10, nullable=True)


def test_the_cli_draft_round_trips_through_the_schema_loader_and_run_local(tmp_path):
    frames = _frames()
    rng = np.random.default_rng(3)
    for f in frames.values():  # a target with a known linear model
        f["spend"] = 2.0 + 0.5 * f["amount"] - 3.0 * f["age"] + rng.normal(0, 5, len(f))
    a_csv = tmp_path / "bank_a.csv"
    frames["bank_a"].to_csv(a_csv, index=False)
    b_pq = tmp_path / "bank_b.parquet"
    write_parquet(frames["bank_b"], b_pq)
    out = tmp_path / "schema.toml"
    res = runner.invoke(app, ["schema", "draft", str(a_csv), str(b_pq), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "review every bound and level" in res.output
    text = out.read_text()
    assert text.startswith("# DRAFT schema proposed by `tessera schema draft` from bank_a.csv, bank_b.parquet.")
    assert "PUBLIC" in text and "must check every bound and level" in text
    assert '# skipped column "customer_id"' in text
    schema = load_schema_file(out)  # the loader `tessera run --schema` uses
    assert isinstance(schema, Schema) and schema == Schema.from_dict(schema.to_dict())
    assert schema.column("channel").levels == ("atm", "online", "pos")
    spend = pd.concat([f["spend"] for f in frames.values()])
    assert (schema.column("spend").min, schema.column("spend").max) == round_bounds(spend.min(), spend.max()) \
        == (-500, 1000)

    parties = {"bank_a": str(a_csv), "bank_b": str(b_pq)}
    everything = pd.concat(list(frames.values()))
    desc = run_local("describe", parties, schema, runtime="threads", columns=["amount", "score"])
    complete = everything.dropna(subset=["score"])  # the nullable column's NaNs are left out, row-wise
    assert desc["count"] == len(complete) < len(everything)
    np.testing.assert_allclose(desc["amount"]["mean"], complete["amount"].mean(), rtol=1e-4)
    np.testing.assert_allclose(desc["score"]["mean"], complete["score"].mean(), atol=1e-3)
    reg = run_local("linear_regression", parties, schema, runtime="threads", features=["amount", "age"],
                    target="spend")
    ols = sm.OLS(everything["spend"].to_numpy(), sm.add_constant(everything[["amount", "age"]].to_numpy())).fit()
    np.testing.assert_allclose(reg["coefficients"], ols.params, rtol=1e-3, atol=1e-3)

    again = runner.invoke(app, ["schema", "draft", str(a_csv), "-o", str(out)])
    assert again.exit_code == 1 and "exists; pass --overwrite" in again.output
    printed = runner.invoke(app, ["schema", "draft", str(a_csv), "--exclude", "customer_id"])
    assert printed.exit_code == 0 and printed.output.startswith("# DRAFT") and "customer_id" not in printed.output


def test_the_cli_names_an_unreadable_file_in_one_line(tmp_path):
    bad = tmp_path / "data.xlsx"
    bad.write_text("x")
    res = runner.invoke(app, ["schema", "draft", str(bad)])
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        "error: data.xlsx: cannot tell the file's format from its suffix; use one of .parquet, .pq, .parq, .csv, "
        ".tsv, .txt (CSV may be .gz or .zst compressed), a DataFrame, or a SqlSource"]
