"""Fixed cost of a session: TLS mesh set-up (4 endpoints in threads, optionally through the WAN
relay) and ``run_local`` end to end on tiny data (3 party processes, rep3): the first call (it
starts the fork server) and the median of the next ones.

    python benchmarks/bench_setup.py [--rtt 20ms] [--repeat 5] [--run-local]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from tessera.net.identity import Identity
from tessera.net.tls import Endpoint, TlsChannel, connect_mesh
from tessera.runtime.relay import LinkShape, Relay

NAMES = ["P0", "P1", "P2", "dealer"]


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def mesh_setup(shape: LinkShape) -> float:
    """Seconds until every endpoint of a 4-endpoint mesh has its channel (links through a relay)."""
    keys = Path(tempfile.mkdtemp(prefix="tessera-bench-"))
    ids = {n: Identity.create(n, keys) for n in NAMES}
    eps = [Endpoint(n, "127.0.0.1", p, ids[n].fingerprint) for n, p in zip(NAMES, _free_ports(len(NAMES)))]
    chans: dict[int, TlsChannel] = {}
    with Relay(shape) as relay:
        routed = [dataclasses.replace(e, port=relay.route((e.host, e.port))) for e in eps]
        sid = os.urandom(16)

        def join(i: int) -> None:
            view = [eps[j] if j == i else routed[j] for j in range(len(eps))]
            chans[i] = connect_mesh(i, view, ids[NAMES[i]], sid)

        threads = [threading.Thread(target=join, args=(i,)) for i in range(len(eps))]
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        seconds = time.perf_counter() - t
        closers = [threading.Thread(target=c.close) for c in chans.values()]
        for th in closers:
            th.start()
        for th in closers:
            th.join()
    return seconds


def run_local_tiny() -> tuple[float, float]:
    """Wall seconds of a tiny ``run_local`` (3 processes, TLS, rep3) and the parties' own seconds."""
    from tessera.cli.bench import _frames
    from tessera.jobs.local import run_local

    frames, schema = _frames(30, 3, 2, vertical=False, label=False)
    t = time.perf_counter()
    res = run_local("describe", frames, schema, protocol="rep3", columns=["x0", "x1"])
    return time.perf_counter() - t, res.seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rtt", default=None)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--run-local", action="store_true")
    args = ap.parse_args()
    shape = LinkShape.of(args.rtt)
    runs = [mesh_setup(shape) for _ in range(args.repeat)]
    print(json.dumps({"workload": "mesh_setup", "endpoints": len(NAMES), "link": shape.describe(),
                      "seconds_median": round(statistics.median(runs), 4), "runs": [round(r, 4) for r in runs]}))
    if args.run_local:
        # the first run starts this process's fork server (its imports); the others find it warm
        walls, inside = zip(*[run_local_tiny() for _ in range(args.repeat + 1)])
        print(json.dumps({"workload": "run_local_tiny", "first_wall": round(walls[0], 3),
                          "wall_median": round(statistics.median(walls[1:]), 3),
                          "party_seconds_median": round(statistics.median(inside[1:]), 3)}))


if __name__ == "__main__":
    main()
