"""``tessera bench``: named workloads over the real transport, one JSON object per line."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import typer

from tessera.data.schema import Column, ColumnType, Schema
from tessera.errors import TesseraError
from tessera.jobs.local import run_local
from tessera.runtime.cluster import run_cluster
from tessera.runtime.relay import LinkShape, Relay
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


def _analysis_workloads() -> dict[str, Callable[[int, int, str, Relay | None], Any]]:
    p = 10

    def describe(n: int, parties: int, protocol: str, relay: Relay | None) -> Any:
        frames, schema = _frames(n, parties, p, vertical=False, label=False)
        return run_local("describe", frames, schema, protocol=protocol, columns=[f"x{j}" for j in range(p)],
                         relay=relay)

    def linreg(n: int, parties: int, protocol: str, relay: Relay | None) -> Any:
        frames, schema = _frames(n, parties, p, vertical=False, label=False)
        return run_local("linear_regression", frames, schema, protocol=protocol,
                         features=[f"x{j}" for j in range(p)], target="y", relay=relay)

    def correlation(n: int, parties: int, protocol: str, relay: Relay | None) -> Any:
        frames, schema = _frames(n, parties, p, vertical=False, label=False)
        return run_local("correlation", frames, schema, protocol=protocol, columns=[f"x{j}" for j in range(p)],
                         relay=relay)

    def logreg(n: int, parties: int, protocol: str, relay: Relay | None) -> Any:
        frames, schema = _frames(n, parties, p, vertical=True, label=True)
        return run_local("logistic_regression", frames, schema, protocol=protocol, partition="vertical",
                         features=[f"x{j}" for j in range(p)], target="y", iterations=10, relay=relay)

    return {"describe": describe, "linreg": linreg, "correlation": correlation, "logreg": logreg}


ANALYSES = _analysis_workloads()


def _analysis(w: str, n: int, parties: int, proto: str, repeat: int, relay: Relay | None) -> dict[str, Any]:
    runs = [ANALYSES[w](n, parties, proto, relay) for _ in range(repeat)]
    return {"seconds": statistics.median(r.seconds for r in runs),
            "bytes_sent": {q: c["bytes_sent"] for q, c in runs[0].comm.items()},
            "rounds": max(c["rounds"] for c in runs[0].comm.values())}


def _program(w: str, n: int, parties: int, proto: str, repeat: int, relay: Relay | None) -> dict[str, Any]:
    res = run_cluster(f"tessera.runtime.workloads:{w}", parties, protocol=proto,
                      args={"n": n, "repeat": repeat}, timeout=1800, relay=relay)
    per_run = [max(r["times"][i] for r in res.results.values()) for i in range(repeat)]
    return {"seconds": statistics.median(per_run), "bytes_sent": {p: r["bytes"] for p, r in res.results.items()},
            "rounds": max(r["rounds"] for r in res.results.values())}


def bench(
    workload: list[str] = typer.Option(
        ["mul"], "--workload", "-w", help=f"One of {sorted(WORKLOADS) + sorted(ANALYSES)}; repeatable."
    ),
    n: int = typer.Option(1_000_000, "--n", help="Elements (or rows for meanvar/corr; matrix side for matmul)."),
    protocol: list[str] = typer.Option(["rep3", "semi2k"], "--protocol", "-p", help="Protocols; repeatable."),
    parties: int = typer.Option(3, "--parties", help="Number of parties (rep3 needs 3)."),
    repeat: int = typer.Option(3, "--repeat", help="Timed repetitions; the median is reported."),
    rtt: str | None = typer.Option(None, "--rtt", help="Also run over a WAN relay with this round-trip time, "
                                   "e.g. 20ms (each direction is delayed by half)."),
    bandwidth: str | None = typer.Option(None, "--bandwidth", help="The relay's cap per link and direction, "
                                         "e.g. 1gbit or 100mbit."),
) -> None:
    """Run each workload under each protocol as separate processes over mutual TLS on loopback.

    Every line reports rounds, bytes sent per party and the LAN time (``seconds``); with
    ``--rtt`` or ``--bandwidth`` the same workload runs again with every link through a relay on
    127.0.0.1 (:mod:`tessera.runtime.relay`), reported as ``seconds_wan``.
    """
    try:
        shape = LinkShape.of(rtt, bandwidth) if rtt or bandwidth else None
    except TesseraError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    for w in workload:
        if w not in WORKLOADS and w not in ANALYSES:
            typer.echo(f"error: unknown workload {w!r}; choose from {sorted(WORKLOADS) + sorted(ANALYSES)}", err=True)
            raise typer.Exit(2)
        for proto in protocol:
            if proto == "rep3" and parties != 3:
                continue
            measure = _analysis if w in ANALYSES else _program
            lan = measure(w, n, parties, proto, repeat, None)
            out: dict[str, Any] = {"workload": w, "protocol": proto, "parties": parties, "n": n,
                                   "seconds": round(lan["seconds"], 4), "rounds": lan["rounds"],
                                   "bytes_sent": lan["bytes_sent"]}
            if w in ANALYSES:
                out["note"] = "rows; includes process start, TLS, local scan"
            else:
                out["bytes_per_element"] = {p: round(b / n, 2) for p, b in lan["bytes_sent"].items()}
            units = 1 if w == "matmul" else n
            out["throughput_per_s"] = round(units / lan["seconds"], 1)
            if shape is not None:
                with Relay(shape) as relay:
                    wan = measure(w, n, parties, proto, repeat, relay)
                out |= {"seconds_wan": round(wan["seconds"], 4), "link": shape.describe()}
                if wan["rounds"] != lan["rounds"]:
                    out["rounds_wan"] = wan["rounds"]
            typer.echo(json.dumps(out))
