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
from tessera.cli.bench_outsourced import OUTSOURCED
from tessera.data.schema import Column, ColumnType, Schema
from tessera.data.synthetic import hospital_trials
from tessera.errors import TesseraError
from tessera.jobs.local import run_local
from tessera.mpc.session import Session
from tessera.protocols import session_protocol
from tessera.runtime.cluster import run_cluster
from tessera.runtime.relay import LinkShape, Relay
from tessera.runtime.workloads import WORKLOADS, timed


def prep(s: Session, n: int, repeat: int = 3) -> dict[str, Any]:
    """Preprocessing alone (``--workload prep``): ``n`` Beaver triples over Z_2^64, then ``n``
    binary AND triples (``n / 64`` words), from the session's provider (dealer or OT)."""
    provider = s.protocol.provider  # type: ignore[attr-defined]
    words = max(1, n // 64)
    triples = timed(s, repeat, lambda: provider.get("mul", [(n,), (n,)]).derived())
    ands = timed(s, repeat, lambda: provider.get("and", [(words,)]).derived())
    return {**triples, "and_times": ands["times"], "and_bytes": ands["bytes"], "and_count": 64 * words}


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


def _analysis_workloads() -> dict[str, Callable[[int, int, str, Relay | None, str | None], Any]]:
    p = 10

    def describe(n: int, parties: int, protocol: str, relay: Relay | None, pre: str | None) -> Any:
        frames, schema = _frames(n, parties, p, vertical=False, label=False)
        return run_local("describe", frames, schema, protocol=protocol, columns=[f"x{j}" for j in range(p)],
                         relay=relay, preprocessing=pre)

    def linreg(n: int, parties: int, protocol: str, relay: Relay | None, pre: str | None) -> Any:
        frames, schema = _frames(n, parties, p, vertical=False, label=False)
        return run_local("linear_regression", frames, schema, protocol=protocol,
                         features=[f"x{j}" for j in range(p)], target="y", relay=relay, preprocessing=pre)

    def correlation(n: int, parties: int, protocol: str, relay: Relay | None, pre: str | None) -> Any:
        frames, schema = _frames(n, parties, p, vertical=False, label=False)
        return run_local("correlation", frames, schema, protocol=protocol, columns=[f"x{j}" for j in range(p)],
                         relay=relay, preprocessing=pre)

    def logreg(n: int, parties: int, protocol: str, relay: Relay | None, pre: str | None) -> Any:
        frames, schema = _frames(n, parties, p, vertical=True, label=True)
        return run_local("logistic_regression", frames, schema, protocol=protocol, partition="vertical",
                         features=[f"x{j}" for j in range(p)], target="y", iterations=10, relay=relay, preprocessing=pre,
                         timeout=3600)

    def meta(n: int, parties: int, protocol: str, relay: Relay | None, pre: str | None) -> Any:
        trials, schema, _ = hospital_trials({f"P{i}": max(50, n // parties) for i in range(parties)})
        return run_local("meta_analysis", trials, schema, protocol=protocol, outcome="outcome", treatment="treatment",
                         relay=relay, preprocessing=pre)

    return {"describe": describe, "linreg": linreg, "correlation": correlation, "logreg": logreg, "meta": meta,
            **OUTSOURCED}


ANALYSES = _analysis_workloads() | HYBRID_WORKLOADS


def _analysis(w: str, n: int, parties: int, proto: str, pre: str, repeat: int,
              relay: Relay | None) -> dict[str, Any]:
    runs = [ANALYSES[w](n, parties, proto, relay, None if pre == "none" else pre) for _ in range(repeat)]
    return {"seconds": statistics.median(r.seconds for r in runs),
            "bytes_sent": {q: c["bytes_sent"] for q, c in runs[0].comm.items()},
            "rounds": max(c["rounds"] for c in runs[0].comm.values())}


def _program(w: str, n: int, parties: int, proto: str, pre: str, repeat: int,
             relay: Relay | None) -> dict[str, Any]:
    program = "tessera.cli.bench:prep" if w == "prep" else f"tessera.runtime.workloads:{w}"
    res = run_cluster(program, parties, protocol=session_protocol(proto, pre),
                      args={"n": n, "repeat": repeat}, timeout=3600, relay=relay)
    per_run = [max(r["times"][i] for r in res.results.values()) for i in range(repeat)]
    out: dict[str, Any] = {"seconds": statistics.median(per_run),
                           "bytes_sent": {p: r["bytes"] for p, r in res.results.items()},
                           "rounds": max(r["rounds"] for r in res.results.values())}
    if w == "prep":  # bytes the parties send per correlation; the dealer's (whole session) apart
        total = sum(r["bytes"] for r in res.results.values())
        and_s = statistics.median([max(r["and_times"][i] for r in res.results.values()) for i in range(repeat)])
        count = next(iter(res.results.values()))["and_count"]
        out["prep"] = {"triples_per_s": round(n / out["seconds"], 1), "bytes_per_triple": round(total / n, 1),
                       "and_triples_per_s": round(count / and_s, 1),
                       "bytes_per_and_triple": round(sum(r["and_bytes"] for r in res.results.values()) / count, 2),
                       "dealer_bytes_sent": int(res.comm.get("dealer", {}).get("bytes_sent", 0))}
    return out


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
    preprocessing: list[str] = typer.Option(
        ["dealer"], "--preprocessing", help="semi2k's correlations: dealer, ot (no dealer); repeatable."),
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
    names = sorted(WORKLOADS) + sorted(ANALYSES) + ["prep"]
    for w in workload:
        if w not in names:
            typer.echo(f"error: unknown workload {w!r}; choose from {names}", err=True)
            raise typer.Exit(2)
        for proto, pre in [(p, q) for p in protocol for q in (preprocessing if p == "semi2k" else ["none"])]:
            if proto == "rep3" and parties != 3:
                continue
            measure = _analysis if w in ANALYSES else _program
            lan = measure(w, n, parties, proto, pre, repeat, None)
            label = {"preprocessing": pre} if proto == "semi2k" else {}
            out: dict[str, Any] = {"workload": w, "protocol": proto, **label, "parties": parties, "n": n,
                                   "seconds": round(lan["seconds"], 4), "rounds": lan["rounds"],
                                   "bytes_sent": lan["bytes_sent"], **lan.get("prep", {})}
            if w in ANALYSES:
                out["note"] = "rows; includes process start, TLS, local scan"
            else:
                out["bytes_per_element"] = {p: round(b / n, 2) for p, b in lan["bytes_sent"].items()}
            units = 1 if w == "matmul" else n
            out["throughput_per_s"] = round(units / lan["seconds"], 1)
            if shape is not None:
                with Relay(shape) as relay:
                    wan = measure(w, n, parties, proto, pre, repeat, relay)
                out |= {"seconds_wan": round(wan["seconds"], 4), "link": shape.describe()}
                if wan["rounds"] != lan["rounds"]:
                    out["rounds_wan"] = wan["rounds"]
            typer.echo(json.dumps(out))
