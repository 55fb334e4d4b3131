"""``tessera bench``: named workloads over the real transport, one JSON object per line."""

from __future__ import annotations

import json
import statistics

import typer

from tessera.runtime.cluster import run_cluster
from tessera.runtime.workloads import WORKLOADS


def bench(
    workload: list[str] = typer.Option(["mul"], "--workload", "-w", help=f"One of {sorted(WORKLOADS)}; repeatable."),
    n: int = typer.Option(1_000_000, "--n", help="Elements (or rows for meanvar/corr; matrix side for matmul)."),
    protocol: list[str] = typer.Option(["rep3", "semi2k"], "--protocol", "-p", help="Protocols; repeatable."),
    parties: int = typer.Option(3, "--parties", help="Number of parties (rep3 needs 3)."),
    repeat: int = typer.Option(3, "--repeat", help="Timed repetitions; the median is reported."),
) -> None:
    """Run each workload under each protocol as separate processes over mutual TLS on loopback."""
    for w in workload:
        if w not in WORKLOADS:
            typer.echo(f"error: unknown workload {w!r}; choose from {sorted(WORKLOADS)}", err=True)
            raise typer.Exit(2)
        for proto in protocol:
            if proto == "rep3" and parties != 3:
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
