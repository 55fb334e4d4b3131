"""In-process throughput of the core engine: elementwise products and 100x100 matmuls.

Runs every party as a thread of this process over in-memory channels (the networked figures
come from `tessera bench`). Prints one JSON object per line; `seconds` is the median over
`--repeat` runs, measured inside the party program from after the inputs are shared.

    python benchmarks/bench_core.py [--n 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

from tessera.runtime import run_threads

CONFIGS = [("semi2k", 2), ("semi2k", 3), ("rep3", 3)]


def bench_mul(protocol: str, parties: int, n: int, repeat: int) -> dict[str, object]:
    def prog(s):
        a = s.input(0, np.ones(n) if s.me == 0 else None, shape=(n,))
        b = s.input(1, np.ones(n) if s.me == 1 else None, shape=(n,))
        before = s.stats.total_bytes
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            a * b
            times.append(time.perf_counter() - t)
        return times, (s.stats.total_bytes - before) / repeat

    res = run_threads(prog, parties, protocol=protocol)
    per_rep = [max(r[0][i] for r in res.results.values()) for i in range(repeat)]
    sec = statistics.median(per_rep)
    per_party_bytes = {p: r[1] / n for p, r in res.results.items()}
    return {"workload": "mul", "protocol": protocol, "parties": parties, "n": n, "seconds": round(sec, 4),
            "throughput_per_s": round(n / sec), "bytes_per_mul_per_party": per_party_bytes, "runtime": "threads"}


def bench_matmul(protocol: str, parties: int, repeat: int, batch: int = 20) -> dict[str, object]:
    def prog(s):
        a = s.input(0, np.ones((100, 100)) if s.me == 0 else None, shape=(100, 100))
        b = s.input(1, np.ones((100, 100)) if s.me == 1 else None, shape=(100, 100))
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            for _ in range(batch):
                a @ b
            times.append((time.perf_counter() - t) / batch)
        return times

    res = run_threads(prog, parties, protocol=protocol)
    sec = statistics.median(max(r[i] for r in res.results.values()) for i in range(repeat))
    return {"workload": "matmul100", "protocol": protocol, "parties": parties, "seconds": round(sec, 5),
            "throughput_per_s": round(1 / sec, 1), "runtime": "threads"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=10**6)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for protocol, parties in CONFIGS:
        print(json.dumps(bench_mul(protocol, parties, args.n, args.repeat)), flush=True)
        print(json.dumps(bench_matmul(protocol, parties, args.repeat)), flush=True)


if __name__ == "__main__":
    main()
