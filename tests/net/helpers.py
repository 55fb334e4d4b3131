"""Helpers for the transport tests: identities, free loopback ports, meshes in threads and
endpoints in separate processes (``_peer.py``, configured by JSON on the command line)."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import tessera
from tessera.net.identity import Identity
from tessera.net.tls import Endpoint, TlsChannel, connect_mesh

HOST = "127.0.0.1"
PEER_SCRIPT = Path(__file__).with_name("_peer.py")
SOURCE_ROOT = str(Path(tessera.__file__).resolve().parents[1])


def free_ports(k: int) -> list[int]:
    """``k`` distinct loopback ports that were free a moment ago (bound to port 0, then released)."""
    socks = [socket.socket() for _ in range(k)]
    try:
        for s in socks:
            s.bind((HOST, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def identities(keys: Path, names: list[str]) -> tuple[dict[str, Identity], list[Endpoint]]:
    """Fresh identities in ``keys`` and an endpoint list on free loopback ports pinning them."""
    ids = {n: Identity.create(n, keys) for n in names}
    ports = free_ports(len(names))
    return ids, [Endpoint(n, HOST, p, ids[n].fingerprint) for n, p in zip(names, ports)]


def mesh_in_threads(
    ids: dict[str, Identity], eps: list[Endpoint], sid: bytes | None = None, **kw: Any
) -> tuple[dict[int, TlsChannel], dict[str, BaseException]]:
    """Every endpoint joins the mesh in its own thread; the channels, and errors by name."""
    sid = sid or os.urandom(16)
    chans: dict[int, TlsChannel] = {}
    errors: dict[str, BaseException] = {}

    def join(i: int) -> None:
        try:
            chans[i] = connect_mesh(i, eps, ids[eps[i].name], sid, **kw)
        except BaseException as e:
            errors[eps[i].name] = e

    run_all([lambda i=i: join(i) for i in range(len(eps))])
    return chans, errors


def run_all(tasks: list[Any], timeout: float = 60.0) -> None:
    """Run the callables in threads at once and wait for all of them."""
    threads = [threading.Thread(target=t, daemon=True) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
        assert not t.is_alive(), "a task did not finish"


def close_all(chans: dict[int, TlsChannel]) -> None:
    run_all([c.close for c in chans.values()])


def peer_config(me: int, eps: list[Endpoint], keys: Path, sid: bytes, role: str, **kw: Any) -> dict[str, Any]:
    return {"me": me, "endpoints": [dataclasses.asdict(e) for e in eps], "keys": str(keys),
            "session": sid.hex(), "role": role, **kw}


def spawn(cfg: dict[str, Any]) -> subprocess.Popen[str]:
    """Start one endpoint process; its stdout carries ``ready`` and the JSON report.

    The process imports the same ``tessera`` as this one, wherever the package is installed.
    """
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SOURCE_ROOT, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(
        [sys.executable, str(PEER_SCRIPT), json.dumps(cfg)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, env=env,
    )


def report(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """The JSON report of a finished endpoint process (killed if it outlives ``timeout``)."""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"endpoint process {proc.pid} did not finish within {timeout} s") from None
    lines = [line for line in out.splitlines() if line.startswith("{")]
    assert lines, f"no report from endpoint process (exit {proc.returncode}): {err[-2000:]}"
    return json.loads(lines[-1])


def kill_all(procs: list[subprocess.Popen[str]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.communicate()
