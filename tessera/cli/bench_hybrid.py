"""``tessera bench`` workloads of the hybrid GLMs on large horizontal data read from Parquet.

``hybrid_logreg`` (DuckDB) and ``hybrid_logreg_spark`` (the same files through a Spark source,
``local[2]`` per party process, the checked rows cached in Spark's memory): ``n`` rows in total, split evenly across the parties, 10 features
uniform in [-5, 5] and a Bernoulli target from a logistic model. Each party's file is written once
by DuckDB (no row passes through Python) to ``$TMPDIR/tessera-bench`` and reused; the timing is
``run_local`` end to end (process start, TLS, checked load, every iterate's local scan and the MPC).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from tessera.data._sql import number, text
from tessera.data.schema import Column, ColumnType, Schema
from tessera.data.sources import SparkSource
from tessera.jobs.local import run_local

__all__ = ["HYBRID_WORKLOADS", "hybrid_files", "spark_source", "FEATURES", "TRUE_BETA"]

FEATURES = [f"x{j}" for j in range(10)]
#: the model the files are drawn from (intercept first), in original units
TRUE_BETA = np.concatenate([[-0.3], np.linspace(-0.5, 0.5, len(FEATURES))])
SCHEMA = Schema(columns=tuple([Column(name=f, type=ColumnType.FLOAT, min=-5, max=5) for f in FEATURES]
                              + [Column(name="y", type=ColumnType.BOOL)]))


def hybrid_files(n: int, parties: int, root: Path | None = None) -> dict[str, str]:
    """Party name -> its Parquet file of ``n // parties`` rows (written by DuckDB once, then reused)."""
    root = root or Path(tempfile.gettempdir()) / "tessera-bench"
    root.mkdir(parents=True, exist_ok=True)
    rows = n // parties
    out = {}
    for i in range(parties):
        path = root / f"hybrid-{rows}-{i}.parquet"
        if not path.exists():
            xs = ", ".join(f"(random() * 10 - 5) AS {f}" for f in FEATURES)
            eta = " + ".join([number(TRUE_BETA[0])] + [f"{number(b)} * {f}" for b, f in zip(TRUE_BETA[1:], FEATURES)])
            con = duckdb.connect()
            try:
                con.execute(f"SELECT setseed({number(0.1 + i / 10)})")
                tmp = path.with_suffix(".tmp.parquet")
                con.execute(f"COPY (SELECT {', '.join(FEATURES)}, random() < 1 / (1 + exp(-({eta}))) AS y FROM "
                            f"(SELECT {xs} FROM range({rows}))) TO {text(str(tmp))} (FORMAT PARQUET)")
                tmp.rename(path)
            finally:
                con.close()
        out[f"P{i}"] = str(path)
    return out


def spark_source(path: str, master: str = "local[2]", cache: bool = True,
                 conf: Mapping[str, str] | None = None) -> SparkSource:
    """A party's file through Spark as the workload reads it: ``master`` (``local[2]``) in the
    party's process, the checked rows cached in its memory (every iterate rescans them; 3 GiB of
    driver memory holds 10^7 rows x 11 columns); ``cache=False`` rescans the Parquet file instead
    (on this machine the two came out even over 6 iterates: the cache's build costs what it saves)."""
    return SparkSource(path, master=master, cache=cache, conf={"spark.driver.memory": "3g", **(conf or {})})


def _hybrid(spark: bool) -> Callable[[int, int, str, Any, str | None], Any]:
    def run(n: int, parties: int, protocol: str, relay: Any = None, pre: str | None = None) -> Any:
        files = hybrid_files(n, parties)
        data: dict[str, Any] = ({p: spark_source(f) for p, f in files.items()} if spark else dict(files))
        return run_local("logistic_regression_hybrid", data, SCHEMA, protocol=protocol, features=FEATURES,
                         target="y", timeout=3600, relay=relay, preprocessing=pre)
    return run


HYBRID_WORKLOADS: dict[str, Callable[[int, int, str, Any, str | None], Any]] = {
    "hybrid_logreg": _hybrid(spark=False),
    "hybrid_logreg_spark": _hybrid(spark=True),
}
