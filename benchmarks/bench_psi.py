"""Throughput of PSI: the group's raw rates, then PSI of 2^k x 2^k identifiers (ECDH or OPRF).

The limit of ECDH PSI is scalar multiplications: two parties with n identifiers each need 4n
of them (each list is multiplied by both keys), three parties 3 x 3n. The first lines measure
the rate of one scalar multiplication and of hashing to the group, on one thread and on every
core; the last runs the whole protocol in-process (parties as threads over memory channels, so
all parties share this machine's cores) and reports wall-clock seconds next to the scalar
multiplications per second it achieved. With ``--transport tls`` every party is a separate
process and the parties talk mutual TLS 1.3 over loopback. Prints one JSON object per line.

``--protocol oprf`` runs the OT-extension OPRF PSI (KKRT; two parties) instead: it needs only
about 1.5k scalar multiplications (base OTs and hello) plus AES work, and reports each party's
seconds per phase (``phases``; waiting for the peer shows as ``wait_*``). ``--repeat 3`` runs
the job three times and adds a line with the median seconds; ``--profile DIR`` (with TLS)
writes each party's cProfile statistics.

    python benchmarks/bench_psi.py                   # 2^16 x 2^16, intersection mode
    python benchmarks/bench_psi.py --log-n 20        # the 2^20 x 2^20 target
    python benchmarks/bench_psi.py --log-n 20 --transport tls --protocol oprf --repeat 3 --no-rates
    python benchmarks/bench_psi.py --log-n 18 --transport tls --no-rates
    python benchmarks/bench_psi.py --log-n 14 --parties 3 --mode size --no-rates
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tessera.net.identity import Identity
from tessera.net.memory import memory_mesh
from tessera.net.tls import Endpoint, connect_mesh
from tessera.ot.groups import Engine, default_workers, get_group
from tessera.psi import PsiResult, PsiSpec, run_psi


def bench_rates(group_name: str, n: int) -> list[dict[str, object]]:
    """Scalar multiplications and hashes to the group per second, on 1 thread and on all cores."""
    group = get_group(group_name)
    out = []
    for threads in sorted({1, default_workers()}):
        with ThreadPoolExecutor(threads) as pool:
            eng = Engine(group, pool, threads)
            keys = [f"cust-{i:08d}".encode() for i in range(n)]
            t = time.perf_counter()
            pts = eng.hash_to_group(b"bench", keys)
            t_hash = time.perf_counter() - t
            s = group.random_scalar()
            t = time.perf_counter()
            eng.mul(s, pts)
            t_mul = time.perf_counter() - t
        out.append({"workload": "scalarmult", "group": group_name, "threads": threads, "n": n,
                    "per_s": round(n / t_mul)})
        out.append({"workload": "hash_to_group", "group": group_name, "threads": threads, "n": n,
                    "per_s": round(n / t_hash)})
    return out


def _ids(log_n: int, p: int, overlap: float) -> list[str]:
    """Party ``p``'s identifiers: ``2^log_n`` of them, ``overlap`` of them common to all parties."""
    n = 1 << log_n
    common = int(n * overlap)
    return [f"cust-{i:09d}" for i in range(common)] + [f"cust-{p}-{i:09d}" for i in range(n - common)]


def bench_psi(log_n: int, parties: int, mode: str, group: str, overlap: float, protocol: str = "ecdh") -> dict[str, object]:
    """One PSI job in-process: parties are threads over memory channels."""
    n = 1 << log_n
    sets = [_ids(log_n, p, overlap) for p in range(parties)]
    mesh = memory_mesh([f"bank-{p}" for p in range(parties)], timeout=3600)
    spec = PsiSpec(mode, group=group, protocol=protocol)  # type: ignore[arg-type]
    results: dict[int, PsiResult] = {}
    errors: list[BaseException] = []
    phases: dict[int, dict[str, float]] = {p: {} for p in range(parties)}

    def party(p: int) -> None:
        try:
            results[p] = run_psi(mesh[p], sets[p], spec, timings=phases[p])
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=party, args=(p,)) for p in range(parties)]
    t = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    seconds = time.perf_counter() - t
    if errors:
        raise errors[0]
    mults = sum(r.scalar_mults for r in results.values())
    return {
        "workload": "psi", "protocol": protocol, "mode": mode, "group": group, "parties": parties, "n": n,
        "log_n": log_n, "intersection": results[0].size,  # every party is a recipient here
        "seconds": round(seconds, 2), "scalar_mults": mults, "scalar_mults_per_s": round(mults / seconds),
        "bytes_sent": sum(ch.stats.total_bytes for ch in mesh), "rounds": mesh[0].stats.rounds,
        "cores": default_workers(), "runtime": "threads",
        **({"phases": {f"bank-{p}": _rounded(phases[p]) for p in range(parties)}} if protocol == "oprf" else {}),
    }


def _rounded(d: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 3) for k, v in d.items()}


def bench_psi_tls(
    log_n: int, parties: int, mode: str, group: str, overlap: float, protocol: str = "ecdh", profile: str = ""
) -> dict[str, object]:
    """One PSI job with every party a separate process, over mutual TLS on loopback.

    ``seconds`` runs from the moment every party has joined the mesh to the last party's result.
    With ``profile`` (a directory) each party writes ``bank-<p>.prof`` (cProfile of its main thread).
    """
    names = [f"bank-{p}" for p in range(parties)]
    with tempfile.TemporaryDirectory() as keys:
        ids = {name: Identity.create(name, keys) for name in names}
        socks = [socket.socket() for _ in names]
        for sk in socks:
            sk.bind(("127.0.0.1", 0))
        ports = [sk.getsockname()[1] for sk in socks]
        for sk in socks:
            sk.close()
        config = {
            "keys": keys, "sid": os.urandom(16).hex(), "log_n": log_n, "mode": mode, "group": group,
            "overlap": overlap, "protocol": protocol, "profile": profile,
            "endpoints": [[n, "127.0.0.1", pt, ids[n].fingerprint] for n, pt in zip(names, ports)],
        }
        procs = [
            subprocess.Popen([sys.executable, __file__, "--party", str(p), "--config", json.dumps(config)],
                             stdout=subprocess.PIPE, text=True)
            for p in range(parties)
        ]
        outs = [json.loads(proc.communicate()[0].strip().splitlines()[-1]) for proc in procs]
    if any(proc.returncode for proc in procs):
        raise SystemExit(f"a party failed: {outs}")
    seconds = max(o["end"] for o in outs) - max(o["start"] for o in outs)
    mults = sum(o["scalar_mults"] for o in outs)
    return {
        "workload": "psi", "protocol": protocol, "mode": mode, "group": group, "parties": parties,
        "n": 1 << log_n, "log_n": log_n, "intersection": outs[0]["size"], "seconds": round(seconds, 2),
        "scalar_mults": mults, "scalar_mults_per_s": round(mults / seconds),
        "bytes_sent": sum(o["bytes_sent"] for o in outs), "rounds": outs[0]["rounds"],
        "cores": default_workers(), "runtime": "processes+tls",
        **({"phases": {f"bank-{p}": o["phases"] for p, o in enumerate(outs)}} if protocol == "oprf" else {}),
    }


def _tls_party(p: int, config: dict[str, Any]) -> None:
    """One party of :func:`bench_psi_tls` (runs in its own process); prints its timings."""
    eps = [Endpoint(n, h, pt, f) for n, h, pt, f in config["endpoints"]]
    me = Identity.load(config["keys"], eps[p].name)
    ids = _ids(config["log_n"], p, config["overlap"])
    ch = connect_mesh(p, eps, me, bytes.fromhex(config["sid"]), timeout=3600, connect_timeout=60)
    phases: dict[str, float] = {}
    spec = PsiSpec(config["mode"], group=config["group"], protocol=config.get("protocol", "ecdh"))
    profiler = cProfile.Profile() if config.get("profile") else None
    try:
        start = time.time()  # wall clock: comparable across the party processes
        if profiler is not None:
            profiler.enable()
        res = run_psi(ch, ids, spec, timings=phases)
        end = time.time()
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(os.path.join(config["profile"], f"bank-{p}.prof"))
        ch.close()
    print(json.dumps({"start": start, "end": end, "size": res.size, "scalar_mults": res.scalar_mults,
                      "bytes_sent": ch.stats.total_bytes, "rounds": ch.stats.rounds,
                      "phases": _rounded(phases)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--log-n", type=int, default=16, help="identifiers per party: 2^LOG_N (default 16)")
    ap.add_argument("--parties", type=int, default=2, choices=[2, 3])
    ap.add_argument("--mode", default="intersection", choices=["size", "intersection", "aligned"])
    ap.add_argument("--group", default="ristretto255", choices=["ristretto255", "edwards25519"])
    ap.add_argument("--overlap", type=float, default=0.5, help="fraction of identifiers common to all parties")
    ap.add_argument("--transport", default="memory", choices=["memory", "tls"])
    ap.add_argument("--protocol", default="ecdh", choices=["ecdh", "oprf"], help="PSI protocol (oprf: 2 parties)")
    ap.add_argument("--repeat", type=int, default=1, help="run the job this many times; report the median")
    ap.add_argument("--profile", default="", help="with --transport tls: directory for each party's cProfile stats")
    ap.add_argument("--no-rates", action="store_true", help="skip the raw group rates")
    ap.add_argument("--party", type=int, help=argparse.SUPPRESS)  # a party process of --transport tls
    ap.add_argument("--config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.party is not None:
        _tls_party(args.party, json.loads(args.config))
        return
    if not args.no_rates:
        for line in bench_rates(args.group, 1 << 14):
            print(json.dumps(line), flush=True)
    bench = bench_psi_tls if args.transport == "tls" else bench_psi
    seconds = []
    for _ in range(args.repeat):
        extra = {"profile": os.path.abspath(args.profile)} if args.profile and args.transport == "tls" else {}
        line = bench(args.log_n, args.parties, args.mode, args.group, args.overlap, args.protocol, **extra)
        seconds.append(line["seconds"])
        print(json.dumps(line), flush=True)
    if args.repeat > 1:
        print(json.dumps({"workload": "psi-median", "protocol": args.protocol, "log_n": args.log_n,
                          "runs": seconds, "median_seconds": statistics.median(seconds)}), flush=True)


if __name__ == "__main__":
    main()
