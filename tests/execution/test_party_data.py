"""What a party's side of a job reads: its own file, checked against the declared schema by the
data layer (``tessera.data.load``) before anything is shared; every violation is named by
column and count, never by value."""

import pandas as pd
import pytest

from tessera.data.schema import Column, Schema
from tessera.errors import DataError
from tessera.jobs.local import local_job
from tessera.jobs.model import PartyInputs
from tessera.jobs.party import run_party_job
from tessera.runtime.inprocess import run_threads

SCHEMA = Schema(columns=(Column(name="a", type="float", min=0, max=10), Column(name="b", type="int", min=0, max=5)))


def describe(files):
    job = local_job("describe", files, SCHEMA, protocol="semi2k", params={"columns": ["a", "b"], "extremes": True})

    def program(s):
        return run_party_job(s, job, PartyInputs(files[s.party]))
    return run_threads(program, list(files), protocol="semi2k")


def test_csv_and_parquet_parties_agree(tmp_path):
    df = pd.DataFrame({"a": [1.5, 2.5, 9.0], "b": [0, 5, 3]})
    df.to_csv(tmp_path / "d.csv", index=False)
    df.to_parquet(tmp_path / "d.parquet")
    res = describe({"P0": str(tmp_path / "d.csv"), "P1": str(tmp_path / "d.parquet")})
    out = res.results["P0"].outputs
    assert out["count"] == 6
    assert out["a"]["mean"] == pytest.approx(df.a.mean(), abs=1e-3)
    assert out["b"]["max"] == pytest.approx(5, abs=1e-3)


@pytest.mark.parametrize("content,expected,secrets", [
    ("a,b\n1.0,1\n12345.678,\n99999.5,2\n", ["column 'a': 2 rows with a value outside", "column 'b': 1 row with NULL"],
     ["12345", "99999"]),
    ("a,b\n1.5,2\nhello,3\nsecret-value,4.5\n", ["column 'a': 2 rows with a value that is not a number",
                                                 "column 'b': 1 row with a value that is not a whole number"],
     ["hello", "secret-value"]),
    ("a\n1.0\n", ["missing columns ['b']"], []),
])
def test_a_bad_party_file_stops_the_job_naming_every_problem(tmp_path, content, expected, secrets):
    pd.DataFrame({"a": [1.0], "b": [1]}).to_csv(tmp_path / "good.csv", index=False)
    (tmp_path / "bad.csv").write_text(content)
    with pytest.raises(DataError) as e:
        describe({"P0": str(tmp_path / "good.csv"), "P1": str(tmp_path / "bad.csv")})
    msg = str(e.value)
    for text in expected:
        assert text in msg
    assert not any(s in msg for s in secrets)


def test_a_missing_file(tmp_path):
    pd.DataFrame({"a": [1.0], "b": [1]}).to_csv(tmp_path / "good.csv", index=False)
    with pytest.raises(DataError, match="does not exist"):
        describe({"P0": str(tmp_path / "good.csv"), "P1": str(tmp_path / "nope.csv")})
