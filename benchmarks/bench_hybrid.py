"""Hybrid logistic regression on large horizontal data, against scikit-learn on the pooled rows.

Writes (once) the parties' Parquet files of ``tessera bench -w hybrid_logreg`` under
``$TMPDIR/tessera-bench``, runs ``logistic_regression_hybrid`` with ``run_local`` (party
processes over TLS; ``--spark`` reads the files through Spark sources, ``local[2]`` per party, cached)
and fits scikit-learn's ``LogisticRegression(C=inf, solver="newton-cholesky")`` on the pooled
rows (``--sample`` rows of them if the pooled rows do not fit in memory). Prints one JSON object
after the run and one more with the comparison.

    python benchmarks/bench_hybrid.py [--n 30000000] [--parties 3] [--spark] [--sample 0]
"""

from __future__ import annotations

import argparse
import json
import time

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=30_000_000)
    ap.add_argument("--parties", type=int, default=3)
    ap.add_argument("--spark", action="store_true")
    ap.add_argument("--sample", type=int, default=0)
    ap.add_argument("--no-sklearn", action="store_true")
    args = ap.parse_args()
    files = hybrid_files(args.n, args.parties)
    data = {p: spark_source(f) for p, f in files.items()} if args.spark else dict(files)
    t = time.perf_counter()
    res = run_local("logistic_regression_hybrid", data, SCHEMA, features=FEATURES, target="y", timeout=3600)
    wall = time.perf_counter() - t
    out = {"n": args.n, "parties": args.parties, "engine": "spark" if args.spark else "duckdb",
           "seconds_end_to_end": round(wall, 2), "seconds_parties": round(res.seconds, 2),
           "iterations": res["iterations"], "rounds": max(c["rounds"] for c in res.comm.values()),
           "coefficients": [round(float(c), 8) for c in res["coefficients"]]}
    print(json.dumps(out), flush=True)  # before the reference fit, which can take long
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
