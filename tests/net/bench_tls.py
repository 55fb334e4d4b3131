"""Loopback throughput of the TLS transport between two OS processes.

    python tests/net/bench_tls.py [--size BYTES] [--reps N] [--both]

Endpoint 0 sends ``reps`` messages of ``size`` bytes to endpoint 1 (``--both``: each sends
that much to the other at the same time). Prints one JSON line: wall-clock throughput per
direction, and the CPU seconds each process used (on a loaded machine, bytes / CPU seconds
of the busier process is the figure the transport would reach with a core of its own).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from tests.net.helpers import identities, peer_config, report, spawn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=float, default=1e8)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--both", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        keys = Path(tmp)
        ids, eps = identities(keys, ["sender", "receiver"])
        sid = os.urandom(16)
        procs = [spawn(peer_config(i, eps, keys, sid, "bench", size=int(a.size), reps=a.reps, both=a.both))
                 for i in range(2)]
        reps = [report(p, 300) for p in procs]
    assert all(r["ok"] for r in reps), reps
    n = reps[0]["bytes_each_way"]
    seconds = max(r["seconds"] for r in reps)
    cpu = max(r["cpu_seconds"] for r in reps)
    print(json.dumps({
        "message_bytes": int(a.size), "messages": a.reps, "both_ways": a.both,
        "GB_per_s_per_direction": round(n / seconds / 1e9, 3),
        "cpu_seconds": [round(r["cpu_seconds"], 3) for r in reps],
        "GB_per_cpu_s_of_busier_process": round(n / cpu / 1e9, 3),
    }))


if __name__ == "__main__":
    main()
