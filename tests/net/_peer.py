"""One endpoint of a TLS mesh in its own OS process, for the multi-process transport tests.

    python tests/net/_peer.py '<config as JSON>'

The config (JSON, no pickle) names the endpoint list, this endpoint's index, the key
directory, the session and a ``role``. The process prints ``ready`` once connected (for roles
that wait), then exactly one JSON line with its report, and exits 0 (ok) or 1 (error).
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import time
from typing import Any

import numpy as np

from tessera.errors import ProtocolAbort, TesseraError
from tessera.net.identity import Identity
from tessera.net.tls import Endpoint, TlsChannel, connect_mesh


def payload(sender: int, receiver: int, size: int) -> np.ndarray:
    """The bytes ``sender`` sends ``receiver`` in a round of ``size`` bytes (both sides compute it)."""
    rng = np.random.default_rng([sender, receiver, size])
    return rng.integers(0, 256, size, dtype=np.uint8)


def exchange(ch: TlsChannel, sizes: list[int]) -> dict[str, Any]:
    """Every round: send to every peer first, then receive from every peer and check the bytes."""
    peers = [j for j in range(len(ch.names)) if j != ch.me]
    checked = 0
    for size in sizes:
        for j in peers:
            ch.send(j, payload(ch.me, j, size).data)
        for j in peers:
            got = np.frombuffer(ch.recv(j), dtype=np.uint8)
            if not np.array_equal(got, payload(j, ch.me, size)):
                raise AssertionError(f"{ch.name}: wrong bytes from {ch.names[j]} in a round of {size} bytes")
            checked += got.nbytes
    return {"checked_bytes": checked}


def bench(ch: TlsChannel, size: int, reps: int, both: bool) -> dict[str, Any]:
    """Endpoint 0 sends ``reps`` messages of ``size`` bytes to endpoint 1 (and back if ``both``)."""
    other = 1 - ch.me
    data = np.ones(size, dtype=np.uint8)
    ch.send(other, b"go")
    ch.recv(other)
    cpu0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()

    def send_all() -> None:
        for _ in range(reps):
            ch.send(other, data.data)

    sender = threading.Thread(target=send_all) if ch.me == 0 or both else None
    if sender:
        sender.start()
    if ch.me == 1 or both:
        for _ in range(reps):
            ch.recv(other)
    if sender:
        sender.join()
    ch.send(other, b"done")
    ch.recv(other)
    seconds = time.perf_counter() - t0
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"seconds": seconds, "cpu_seconds": cpu, "bytes_each_way": size * reps}


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    endpoints = [Endpoint(**e) for e in cfg["endpoints"]]
    me = cfg["me"]
    identity = Identity.load(cfg["keys"], endpoints[me].name)
    ch = connect_mesh(
        me,
        endpoints,
        identity,
        bytes.fromhex(cfg["session"]),
        timeout=cfg.get("timeout", 20.0),
        connect_timeout=cfg.get("connect_timeout", 10.0),
        max_frame=cfg.get("max_frame", 1 << 30),
        handshake_timeout=cfg.get("handshake_timeout", 5.0),
    )
    role = cfg["role"]
    try:
        if role == "exchange":
            return exchange(ch, cfg["sizes"])
        if role == "bench":
            return bench(ch, cfg["size"], cfg["reps"], cfg["both"])
        exchange(ch, [1000])
        if role == "abort":
            time.sleep(0.2)  # the others are waiting in recv by now
            ch.abort(cfg["reason"])
            return {"aborted": True}
        print("ready", flush=True)
        if role == "wait":  # wait for a message that never comes (its sender is killed or aborts)
            ch.recv(cfg["wait_for"])
            return {"received": True}
        raise ValueError(f"unknown role {role!r}")
    finally:
        ch.close()


def main() -> int:
    cfg = json.loads(sys.argv[1])
    try:
        report: dict[str, Any] = {"ok": True, **run(cfg)}
    except TesseraError as e:
        report = {"ok": False, "error": type(e).__name__, "message": str(e)}
        if isinstance(e, ProtocolAbort):
            report.update(party=e.party, reason=e.reason)
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
