"""``tessera bench``: named workloads over the real transport, one JSON object per line."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import typer

from tessera.cli.bench_hybrid import HYBRID_WORKLOADS
from tessera.data.schema import Column, ColumnType, Schema
from tessera.jobs.local import run_local
from tessera.runtime.cluster import run_cluster
from tessera.runtime.workloads import WORKLOADS


def _frames(n: int, parties: int, p: int, vertical: bool, label: bool) -> tuple[dict[str, pd.DataFrame], Schema]:
    """n rows of p features in [-10, 10] (plus a target), split by rows or by columns."""
    rng = np.random.default_rng(1)
    x = rng.uniform(-10, 10, size=(n, p))
    beta = np.linspace(-0.5, 0.5, p)
    if label:
        y: np.ndarray = rng.random(n) < 1 / (1 + np.exp(-(x @ beta) / 3))
    else:
        y = (x @ beta + rng.normal(0, 1, n)).clip(-100, 100)
    cols = {f"x{j}": x[:, j] for j in range(p)} | {"y": y}
    schema = Schema(columns=tuple([Column(name=f"x{j}", type=ColumnType.FLOAT, min=-10, max=10) for j in range(p)]
                                  + [Column(name="y", type=ColumnType.BOOL) if label else
                                     Column(name="y", type=ColumnType.FLOAT, min=-100, max=100)]))
    names = [f"P{i}" for i in range(parties)]
    if vertical:
        split = np.array_split(np.array(list(cols)), parties)
        return {nm: pd.DataFrame({c: cols[c] for c in part}) for nm, part in zip(names, split)}, schema
    bounds = np.linspace(0, n, parties + 1).astype(int)
    df = pd.DataFrame(cols)
    return {nm: df.iloc[bounds[i] : bounds[i + 1]] for i, nm in enumerate(names)}, schema


def _analysis_workloads() -> dict[str, Callable[[int, int, str], Any]]:
    p = 10

    def describe(n: int, parties: int, protocol: str) -> Any:
        frames, schema = _frames(n, parties, p, vertical=False, label=False)
        return run_local("describe", frames, schema, protocol=protocol, columns=[f"x{j}" for j in range(p)])

    def linreg(n: int, parties: int, protocol: str) -> Any:
        frames, schema = _frames(n, parties, p, vertical=False, label=False)
        return run_local("linear_regression", frames, schema, protocol=protocol,
                         features=[f"x{j}" for j in range(p)], target="y")

    def logreg(n: int, parties: int, protocol: str) -> Any:
        frames, schema = _frames(n, parties, p, vertical=True, label=True)
        return run_local("logistic_regression", frames, schema, protocol=protocol, partition="vertical",
                         features=[f"x{j}" for j in range(p)], target="y", iterations=10)

    return {"describe": describe, "linreg": linreg, "logreg": logreg}


ANALYSES = _analysis_workloads() | HYBRID_WORKLOADS


def bench(
    workload: list[str] = typer.Option(
        ["mul"], "--workload", "-w", help=f"One of {sorted(WORKLOADS) + sorted(ANALYSES)}; repeatable."
    ),
    n: int = typer.Option(1_000_000, "--n", help="Elements (or rows for meanvar/corr; matrix side for matmul)."),
    protocol: list[str] = typer.Option(["rep3", "semi2k"], "--protocol", "-p", help="Protocols; repeatable."),
    parties: int = typer.Option(3, "--parties", help="Number of parties (rep3 needs 3)."),
    repeat: int = typer.Option(3, "--repeat", help="Timed repetitions; the median is reported."),
) -> None:
    """Run each workload under each protocol as separate processes over mutual TLS on loopback."""
    for w in workload:
        if w not in WORKLOADS and w not in ANALYSES:
            typer.echo(f"error: unknown workload {w!r}; choose from {sorted(WORKLOADS) + sorted(ANALYSES)}", err=True)
            raise typer.Exit(2)
        for proto in protocol:
            if proto == "rep3" and parties != 3:
                continue
            if w in ANALYSES:
                runs = [ANALYSES[w](n, parties, proto) for _ in range(repeat)]
                seconds = statistics.median(r.seconds for r in runs)
                typer.echo(json.dumps({
                    "workload": w, "protocol": proto, "parties": parties, "n": n, "seconds": round(seconds, 3),
                    "bytes_sent": {q: c["bytes_sent"] for q, c in runs[0].comm.items()},
                    "rounds": max(c["rounds"] for c in runs[0].comm.values()),
                    "throughput_per_s": round(n / seconds, 1), "note": "rows; includes process start, TLS, local scan",
                }))
                continue
            res = run_cluster(f"tessera.runtime.workloads:{w}", parties, protocol=proto,
                              args={"n": n, "repeat": repeat}, timeout=1800)
            per_run = [max(r["times"][i] for r in res.results.values()) for i in range(repeat)]
            seconds = statistics.median(per_run)
            units = n * n * n if w == "matmul" else n
            out = {
                "workload": w, "protocol": proto, "parties": parties, "n": n, "seconds": round(seconds, 4),
                "bytes_sent": {p: r["bytes"] for p, r in res.results.items()},
                "bytes_per_element": {p: round(r["bytes"] / n, 2) for p, r in res.results.items()},
                "rounds": max(r["rounds"] for r in res.results.values()),
                "throughput_per_s": round((1 if w == "matmul" else units) / seconds, 1),
            }
            typer.echo(json.dumps(out))
