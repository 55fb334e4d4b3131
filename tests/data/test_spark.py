"""The Spark engine against DuckDB on the same Parquet file: identical checks, reductions and
analysis results. One Spark session (``local[2]``) for the module: it takes seconds to start."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tessera.data import Schema, SparkSource, load
from tessera.data.local import write_parquet
from tessera.data.spark import SparkEngine, _is_local, spark_session
from tessera.errors import DataError
from tessera.jobs.local import run_local
from tessera.jobs.model import PartyLaunch, SparkData
from tessera.jobs.party import source_of, spark_data
from tessera.node.config import DatasetSource, NodeConfig
from tessera.node.datasources import data_for_job, source_for
from tessera.runtime.config import PartyConfig

slow = pytest.mark.slow

SCHEMA = Schema.from_dict({
    "a": {"type": "float", "min": -10, "max": 10}, "b": {"type": "int", "min": 0, "max": 4}, "y": {"type": "bool"},
    "g": {"type": "category", "levels": ["u", "v", "w"]}, "h": {"type": "category", "levels": ["p", "q"]},
    "k": {"type": "int", "min": 0, "max": 50}})
SCALING = {"a": (0.0, 10.0), "b": (2.0, 2.0)}


def _frame(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n) * 2
    return pd.DataFrame({"a": a, "b": rng.integers(0, 5, n).astype(float), "y": rng.random(n) < 1 / (1 + np.exp(-a)),
                         "g": rng.choice(["u", "v", "w"], n), "h": rng.choice(["p", "q"], n),
                         "k": np.minimum(rng.poisson(np.exp(0.5 + 0.2 * a)), 50)})


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("spark")
    return {f"bank_{c}": write_parquet(_frame(1500, i), root / f"{c}.parquet") for i, c in enumerate("abc")}


@pytest.fixture(scope="module")
def spark():
    """The module's one Spark session (every SparkSource in this process shares it)."""
    pytest.importorskip("pyspark")
    return spark_session(SparkSource(path="unused", master="local[2]"))


@slow
def test_spark_reductions_equal_duckdb(files, spark):
    path = files["bank_a"]
    duck, sp = load(path, SCHEMA), load(SparkSource(path), SCHEMA)
    assert sp.n_rows == duck.n_rows == 1500 and sp.count() == duck.count()
    for col in ("a", "b", "g"):
        np.testing.assert_array_equal(np.sort(sp[col]), np.sort(duck[col]))
    s1, s2 = sp.sums(["a", "b"], scaling=SCALING), duck.sums(["a", "b"], scaling=SCALING)
    np.testing.assert_allclose(s1.sum, s2.sum, rtol=1e-12)
    np.testing.assert_allclose(s1.sum_sq, s2.sum_sq, rtol=1e-12)
    n1, g1 = sp.cross_products(["a", "b"], scaling=SCALING)
    n2, g2 = duck.cross_products(["a", "b"], scaling=SCALING)
    assert n1 == n2 == 1500
    np.testing.assert_allclose(g1, g2, rtol=1e-12)
    edges = [-3, -1, 0, 0.5, 10]
    np.testing.assert_array_equal(sp.histogram("a", edges), duck.histogram("a", edges))
    np.testing.assert_array_equal(duck.histogram("a", edges), np.histogram(duck["a"], bins=edges)[0])
    np.testing.assert_array_equal(sp.contingency("g", "h"), duck.contingency("g", "h"))
    assert sp.contingency("g", "h").sum() == 1500
    for family, target, scale in (("logistic", "y", 1.0), ("poisson", "k", 50.0)):
        d1 = sp.glm_derivatives(["a", "b"], target, [0.1, 0.2, -0.3], family, scaling=SCALING, target_scale=scale,
                                offset=0.1)
        d2 = duck.glm_derivatives(["a", "b"], target, [0.1, 0.2, -0.3], family, scaling=SCALING,
                                  target_scale=scale, offset=0.1)
        assert d1.n == d2.n == 1500
        np.testing.assert_allclose(d1.gradient, d2.gradient, rtol=1e-10)
        np.testing.assert_allclose(d1.hessian, d2.hessian, rtol=1e-10)
    sp.close()
    duck.close()


@slow
def test_a_local_spark_listens_on_loopback_only(spark):
    """Spark inside the party's process binds 127.0.0.1, not the address the host name resolves to."""
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.bindAddress") == conf.get("spark.driver.host") == "127.0.0.1"
    assert spark.sparkContext._jsc.sc().env().blockManager().blockManagerId().host() == "127.0.0.1"


def test_only_local_masters_are_bound_to_loopback():
    assert [m for m in ("local", "local[2]", "local[*]", "local[2,3]", "spark://bank:7077", "yarn", "localhost", None)
            if _is_local(m)] == ["local", "local[2]", "local[*]", "local[2,3]"]


@slow
def test_spark_checks_name_the_same_violations(tmp_path, spark):
    bad = pd.DataFrame({"a": [1.0, 50.0, np.nan], "b": [1.5, 2, 3], "y": [True, False, True], "g": ["u", "x", "v"],
                        "h": ["p", "q", "p"], "k": [1, 2, 3]})
    path = write_parquet(bad, tmp_path / "bad.parquet")
    with pytest.raises(DataError) as duck:
        load(path, SCHEMA)
    with pytest.raises(DataError) as sp:
        load(SparkSource(path), SCHEMA)
    assert str(sp.value) == str(duck.value) == (
        "bad.parquet: column 'a': 1 row with a value outside the declared bounds [-10.0, 10.0], 1 row with NULL or NaN, "
        "but the column is not nullable; column 'b': 1 row with a value that is not a whole number (declared int); "
        "column 'g': 1 row with a value that is not one of the 3 declared levels")
    with pytest.raises(DataError, match="Spark could not read it"):
        load(SparkSource(str(tmp_path / "missing.parquet")), SCHEMA)


@slow
@pytest.mark.parametrize("analysis, params", [
    ("logistic_regression_hybrid", {"features": ["a", "b"], "target": "y"}),
    ("histogram", {"column": "a", "edges": [-10, -1, 0, 1, 10]}),
    ("chi2", {"row": "g", "column": "h"}),
])
def test_analyses_through_spark_equal_duckdb(files, spark, analysis, params, monkeypatch):
    """Equal within the analyses' stated accuracy: the owners' float sums differ in their last bits,
    and each secure run's truncations round at random (chi2's statistic is stated to a relative
    few 1e-6, so two runs may differ by twice that). The hybrid regression runs one Spark
    aggregation per party for the checks and one per iterate, nothing else (the first iterate's
    counts the rows)."""
    duck = run_local(analysis, files, SCHEMA, runtime="threads", **params).outputs
    queries: list[str] = []
    fetch = SparkEngine.fetch
    monkeypatch.setattr(SparkEngine, "fetch", lambda self, sql, label: queries.append(sql) or fetch(self, sql, label))
    sp = run_local(analysis, {n: SparkSource(p) for n, p in files.items()}, SCHEMA, runtime="threads", **params).outputs
    if analysis == "logistic_regression_hybrid":
        assert len(queries) == len(files) * (1 + sp["iterations"])
    assert duck.keys() == sp.keys()
    for key, value in duck.items():
        if isinstance(value, dict):
            for k2, v2 in value.items():
                np.testing.assert_allclose(sp[key][k2], v2, rtol=2e-5, atol=1e-6, err_msg=f"{key}.{k2}")
        else:
            np.testing.assert_allclose(np.asarray(sp[key], dtype=float), np.asarray(value, dtype=float), rtol=2e-5,
                                       atol=1e-6, err_msg=key)


def test_the_core_imports_and_refuses_spark_without_pyspark(tmp_path):
    code = ("import sys; sys.modules['pyspark'] = None\n"
            "from tessera.data import Schema, SparkSource, load\n"
            "import tessera.jobs.party, tessera.node.datasources\n"
            "try:\n"
            "    load(SparkSource('x.parquet'), Schema.from_dict({'a': {'type': 'float', 'min': 0, 'max': 1}}))\n"
            "except Exception as e:\n"
            "    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "DataError a Spark source needs pyspark: pip install 'tessera[spark]'"


def test_a_node_dataset_with_engine_spark_is_a_spark_source(tmp_path):
    cfg = NodeConfig(name="a", api_port=8443, mpc_ports=(9000, 9010), admin_token_sha256="0" * 64, datasets={
        "tx": DatasetSource(engine="spark", path="data/tx.parquet", master="spark://bank:7077",
                            conf={"spark.executor.memory": "8g"}),
        "hdfs": DatasetSource(engine="spark", path="hdfs://bank/tx"),
        "cat": DatasetSource(engine="spark", table="risk.transactions", cache=True)})
    cfg.save(tmp_path / "node.toml")
    cfg = NodeConfig.load(tmp_path / "node.toml")
    assert source_for(cfg, "tx") == SparkSource(str(tmp_path / "data/tx.parquet"), None, "spark://bank:7077",
                                                "parquet", {"spark.executor.memory": "8g"})
    assert source_for(cfg, "hdfs") == SparkSource("hdfs://bank/tx")
    assert data_for_job(cfg, "cat", tmp_path) == SparkData(table="risk.transactions", cache=True)
    with pytest.raises(ValueError, match="a Spark dataset source needs exactly one of 'path' or 'table'"):
        DatasetSource(engine="spark")
    with pytest.raises(ValueError, match="a Spark dataset source reads a 'path' or a 'table', not 'sql'"):
        DatasetSource(engine="spark", sql="SELECT 1")
    with pytest.raises(ValueError, match="'table', 'master' and 'conf' are for engine"):
        DatasetSource(path="x.parquet", master="local[2]")


def test_a_launch_file_carries_a_spark_source(tmp_path):
    src = SparkSource("hdfs://bank/tx", master="yarn", conf={"spark.executor.cores": "4"}, cache=True)
    ref = spark_data(src)
    assert source_of(PartyLaunch.model_validate_json(
        PartyLaunch(endpoint=PartyConfig(name="a", endpoints=[], parties=["a"], protocol="semi2k", identity_dir="k", session_id="0" * 32), data=ref).model_dump_json()).data) == src
    assert source_of("x.parquet") == "x.parquet"
