"""A local cluster: n parties (and the semi2k dealer) as separate OS processes on 127.0.0.1.

Each endpoint gets a fresh identity (Ed25519 key and self-signed certificate), a free port,
and a config naming a party program inside Tessera; they talk over mutual TLS with pinned
certificate fingerprints. The launcher collects every party's result and communication
figures, and makes sure no process outlives the run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tessera import errors
from tessera.errors import ProtocolAbort, SessionError, TesseraError, TransportError
from tessera.net.identity import Identity
from tessera.protocols import NEEDS_DEALER, PROTOCOLS
from tessera.runtime import jsonable
from tessera.runtime.config import EndpointSpec, PartyConfig
from tessera.runtime.inprocess import DEALER_NAME, party_names
from tessera.runtime.result import RunResult

__all__ = ["run_cluster", "free_ports"]


def free_ports(k: int, host: str = "127.0.0.1") -> list[int]:
    """``k`` distinct ports that were free on ``host`` a moment ago."""
    socks = []
    try:
        for _ in range(k):
            s = socket.socket()
            s.bind((host, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _error_from(report: Mapping[str, Any]) -> TesseraError:
    name, msg, party = report.get("error", "TesseraError"), report.get("message", ""), report.get("party")
    if name == "ProtocolAbort":
        return ProtocolAbort(report.get("aborted_by", "?"), report.get("reason", msg))
    cls = getattr(errors, name, None)
    if isinstance(cls, type) and issubclass(cls, TesseraError) and cls not in (errors.PolicyDenied,):
        try:
            return cls(msg)
        except TypeError:
            pass
    return TesseraError(f"party {party!r} failed with {name}: {msg}")


def run_cluster(
    program: str,
    parties: int | Sequence[str] = 3,
    *,
    protocol: str = "semi2k",
    args: Mapping[str, Any] | None = None,
    party_args: Mapping[str, Mapping[str, Any]] | None = None,
    frac_bits: int = 16,
    timeout: float = 120.0,
    recv_timeout: float = 60.0,
    workdir: str | os.PathLike[str] | None = None,
) -> RunResult:
    """Run ``program`` (``tessera.module:function``, called as ``program(session, **args)``)
    at every party, each in its own process, over mutual TLS on 127.0.0.1.

    ``party_args`` adds per-party keyword arguments (e.g. each party's data file). Raises the
    root cause if any party fails; every process is ended before returning.
    """
    if protocol not in PROTOCOLS:
        raise SessionError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    names = party_names(parties)
    endpoints = names + ([DEALER_NAME] if NEEDS_DEALER[protocol] else [])
    own_dir = workdir is None
    root = Path(tempfile.mkdtemp(prefix="tessera-cluster-") if own_dir else workdir)  # type: ignore[arg-type]
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        keys = root / "keys"
        idents = {n: Identity.create(n, keys, overwrite=True) for n in endpoints}
        ports = free_ports(len(endpoints))
        specs = [
            EndpointSpec(name=n, port=p, fingerprint=idents[n].fingerprint, certificate=idents[n].cert_path.read_text())
            for n, p in zip(endpoints, ports)
        ]
        session_id = secrets.token_hex(16)
        for n in endpoints:
            cfg = PartyConfig(
                name=n,
                endpoints=specs,
                parties=names,
                protocol=protocol,
                identity_dir=str(keys),
                session_id=session_id,
                frac_bits=frac_bits,
                program=None if n == DEALER_NAME else program,
                args={**(args or {}), **((party_args or {}).get(n, {}))},
                timeout=recv_timeout,
                result_path=str(root / f"{n}.result.json"),
            )
            cfg.save(root / f"{n}.config.json")
            log = open(root / f"{n}.log", "wb")  # noqa: SIM115 - closed with the process
            procs[n] = subprocess.Popen(
                [sys.executable, "-m", "tessera.runtime.party", str(root / f"{n}.config.json")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            log.close()
        deadline = time.monotonic() + timeout
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
        return _collect(root, endpoints, names, procs, timeout)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        if own_dir:
            shutil.rmtree(root, ignore_errors=True)


def _collect(
    root: Path, endpoints: list[str], names: list[str], procs: dict[str, subprocess.Popen[bytes]], timeout: float
) -> RunResult:
    reports: dict[str, dict[str, Any]] = {}
    for n in endpoints:
        path = root / f"{n}.result.json"
        if path.exists():
            reports[n] = jsonable.loads(path.read_text())
    failures = [r for r in reports.values() if not r.get("ok")]
    missing = [n for n in endpoints if n not in reports]
    if failures or missing:
        roots = [r for r in failures if r.get("error") not in ("ProtocolAbort", "TransportError")]
        if roots:
            raise _error_from(roots[0])
        if missing:
            running = [n for n in missing if procs[n].poll() is None]
            if running:
                raise TransportError(f"parties {running} did not finish within {timeout:g} s")
            codes = {n: procs[n].returncode for n in missing}
            raise TransportError(f"parties {missing} exited without a result (exit codes {codes})")
        raise _error_from(failures[0])
    results = {n: reports[n]["result"] for n in names}
    comm = {n: reports[n]["comm"] for n in endpoints}
    return RunResult(results, comm, max(reports[n]["seconds"] for n in names))
