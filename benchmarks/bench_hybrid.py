"""Hybrid logistic regression on large horizontal data, against scikit-learn on the pooled rows.

Writes (once) the parties' Parquet files of ``tessera bench -w hybrid_logreg`` under
``$TMPDIR/tessera-bench``, runs ``logistic_regression_hybrid`` with ``run_local`` (party
processes over TLS; ``--spark`` reads the files through Spark sources, ``local[2]`` per party,
the checked rows cached; ``--spark-no-cache`` rescans the Parquet file at every iterate instead;
``--spark-events DIR`` writes each party's Spark event log there and prints, per party, when its
Spark context started and how long each Spark SQL query took: the checks and every iterate)
and fits scikit-learn's ``LogisticRegression(C=inf, solver="newton-cholesky")`` on the pooled
rows (``--sample`` rows of them if the pooled rows do not fit in memory). Prints one JSON object
after the run and one more with the comparison.

    python benchmarks/bench_hybrid.py [--n 30000000] [--parties 3] [--spark [--spark-master local[2]]
                                      [--spark-no-cache] [--spark-events DIR]] [--sample 0] [--no-sklearn]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import duckdb
import numpy as np
from sklearn.linear_model import LogisticRegression

from tessera.cli.bench_hybrid import FEATURES, SCHEMA, hybrid_files, spark_source
from tessera.data._sql import text
from tessera.jobs.local import run_local


def pooled(files: list[str], sample: int) -> tuple[np.ndarray, np.ndarray]:
    con = duckdb.connect()
    rel = f"read_parquet([{', '.join(text(f) for f in files)}])"
    lim = f" USING SAMPLE {sample} ROWS" if sample else ""
    cols = con.sql(f"SELECT {', '.join(FEATURES)}, y FROM {rel}{lim}").fetchnumpy()
    x = np.column_stack([cols.pop(f) for f in FEATURES])
    return x, np.asarray(cols["y"], dtype=bool)


def spark_timeline(root: Path) -> list[dict[str, object]]:
    """Per party (one uncompressed Spark event log each under ``root``): seconds from the Spark
    context's start to the first SQL query, and each SQL query's seconds (the checks' scan, then
    one per iterate; the quick view definitions left out)."""
    out = []
    for log in sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith((".", "appstatus"))):
        start, first, queries = None, None, {}
        for line in log.read_text().splitlines():
            e = json.loads(line)
            kind = e["Event"]
            if kind == "SparkListenerApplicationStart":
                start = e["Timestamp"]
            elif kind.endswith("SQLExecutionStart"):
                first = first if first is not None else e["time"]
                queries[e["executionId"]] = [e["time"], None]
            elif kind.endswith("SQLExecutionEnd"):
                queries[e["executionId"]][1] = e["time"]
        secs = [round((b - a) / 1000, 1) for a, b in queries.values() if b is not None and b - a >= 200]
        out.append({"log": log.parent.name, "to_first_query": round(((first or 0) - (start or 0)) / 1000, 1),
                    "queries": secs})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30_000_000)
    ap.add_argument("--parties", type=int, default=3)
    ap.add_argument("--spark", action="store_true")
    ap.add_argument("--spark-master", default="local[2]")
    ap.add_argument("--spark-no-cache", action="store_true")
    ap.add_argument("--spark-events", type=Path, default=None)
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--no-sklearn", action="store_true")
    args = ap.parse_args()
    files = hybrid_files(args.n, args.parties)
    conf: dict[str, str] = {}
    if args.spark_events is not None:
        args.spark_events.mkdir(parents=True, exist_ok=True)
        conf = {"spark.eventLog.enabled": "true", "spark.eventLog.compress": "false",
                "spark.eventLog.dir": args.spark_events.resolve().as_uri()}
    data = ({p: spark_source(f, args.spark_master, not args.spark_no_cache, conf) for p, f in files.items()}
            if args.spark else dict(files))
    t = time.perf_counter()
    res = run_local("logistic_regression_hybrid", data, SCHEMA, features=FEATURES, target="y", timeout=3600)
    wall = time.perf_counter() - t
    out = {"n": args.n, "parties": args.parties, "engine": "spark" if args.spark else "duckdb",
           "seconds_end_to_end": round(wall, 2), "seconds_parties": round(res.seconds, 2),
           "iterations": res["iterations"], "rounds": max(c["rounds"] for c in res.comm.values()),
           "coefficients": [round(float(c), 8) for c in res["coefficients"]]}
    if args.spark:
        out |= {"spark_master": args.spark_master, "spark_cache": not args.spark_no_cache}
    print(json.dumps(out), flush=True)
    if args.spark and args.spark_events is not None:
        print(json.dumps({"spark_timeline": spark_timeline(args.spark_events)}), flush=True)  # before the reference fit, which can take long
    if not args.no_sklearn:
        x, y = pooled(list(files.values()), args.sample)
        t = time.perf_counter()
        sk = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10, max_iter=100).fit(x, y)
        want = np.concatenate([sk.intercept_, sk.coef_[0]])
        got = np.asarray(res["coefficients"])
        out |= {"sklearn_rows": len(y), "sklearn_seconds": round(time.perf_counter() - t, 2),
                "max_rel_error": float(np.max(np.abs(got - want) / np.abs(want)))}
        print(json.dumps(out))


if __name__ == "__main__":
    main()
