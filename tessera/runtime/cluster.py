"""A local cluster: n parties (and the semi2k dealer) as separate OS processes on 127.0.0.1.

Each endpoint gets a fresh identity (Ed25519 key and self-signed certificate), a free port, and
a config; they talk over mutual TLS with pinned certificate fingerprints. :func:`run_mesh` is the
launcher (any entry module, any config written per endpoint); :func:`run_cluster` runs a named
diagnostics or benchmark program with it. The launcher collects every endpoint's
:class:`~tessera.runtime.launcher.ProcessReport` and makes sure no process outlives the run.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tessera.errors import SessionError, TransportError
from tessera.net.identity import Identity
from tessera.protocols import NEEDS_DEALER, PROTOCOLS
from tessera.runtime.config import EndpointSpec, PartyConfig
from tessera.runtime.forkserver import ForkedProcess
from tessera.runtime.inprocess import DEALER_NAME, party_names
from tessera.runtime.launcher import ProcessReport, listen, read_report, start
from tessera.runtime.result import RunResult

if TYPE_CHECKING:  # the relay is a benchmark tool: party processes need not import it
    from tessera.runtime.relay import Relay

__all__ = ["run_cluster", "run_mesh"]

#: Writes endpoint ``cfg.name``'s config file for the entry module and returns its path.
Configure = Callable[[PartyConfig, Path], Path]


def run_mesh(
    parties: int | Sequence[str],
    *,
    protocol: str,
    entry: str,
    configure: Configure,
    frac_bits: int = 16,
    timeout: float = 120.0,
    recv_timeout: float = 60.0,
    workdir: str | os.PathLike[str] | None = None,
    relay: Relay | None = None,
    input_parties: Sequence[str] = (),
    linked_inputs: bool = False,
) -> dict[str, ProcessReport]:
    """Start every endpoint as ``entry``'s ``main([CONFIG])`` (:func:`~tessera.runtime.launcher.start`;
    ``configure`` writes each config from its :class:`PartyConfig`), wait, and return every
    endpoint's report.

    ``relay``: every endpoint reaches each peer through a route of this
    :class:`~tessera.runtime.relay.Relay` (a WAN emulator) instead of directly; the caller owns
    and closes the relay.

    ``input_parties`` (data owners that do not compute) are endpoints linked to the parties only
    (not to the dealer nor to each other): each one's config lists the parties and itself; with
    ``linked_inputs`` also the other input parties (the owners of a vertical job run their PSI).

    Raises the root cause if any endpoint fails (an endpoint's own error before the aborts it
    caused elsewhere); every process is ended before returning.
    """
    if protocol not in PROTOCOLS:
        raise SessionError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    names = party_names(parties)
    endpoints = names + ([DEALER_NAME] if NEEDS_DEALER[protocol] else []) + list(input_parties)
    root = Path(tempfile.mkdtemp(prefix="tessera-cluster-")) if workdir is None else Path(workdir)
    procs: dict[str, ForkedProcess] = {}
    # every endpoint's port is bound here and handed to its process: no other process can take it
    listeners = {n: listen("127.0.0.1", backlog=len(endpoints)) for n in endpoints}
    try:
        keys = root / "keys"
        idents = {n: Identity.create(n, keys, overwrite=True) for n in endpoints}
        specs = [
            EndpointSpec(name=n, port=listeners[n].getsockname()[1], fingerprint=idents[n].fingerprint,
                         certificate=idents[n].cert_path.read_text())
            for n in endpoints
        ]
        session_id = secrets.token_hex(16)
        routed = {s.name: relay.route((s.host, s.port)) for s in specs} if relay is not None else {}
        outside = set(input_parties)
        for n in endpoints:
            mine = (specs[:len(names)] + [s for s in specs if s.name == n or (linked_inputs and s.name in outside)]
                    if n in outside else
                    specs if n in names else [s for s in specs if s.name not in outside])
            seen = [s if s.name == n or s.name not in routed else s.model_copy(update={"port": routed[s.name]})
                    for s in mine]
            # many endpoints start on one machine at once: give the set-up time for each to start
            cfg = PartyConfig(name=n, endpoints=seen, parties=names, connect_timeout=30.0 + 1.5 * len(endpoints),
                              protocol=protocol, identity_dir=str(keys), session_id=session_id, frac_bits=frac_bits,
                              timeout=recv_timeout,
                              result_path=str(root / f"{n}.result.json"), listen_fd=listeners[n].fileno())
            procs[n] = start(entry, configure(cfg, root), root / f"{n}.log", listener=listeners.pop(n))
        deadline = time.monotonic() + timeout
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                break
        return _collect(root, endpoints, procs, timeout, gone=set(input_parties))
    finally:
        for sock in listeners.values():
            sock.close()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)


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
    relay: Relay | None = None,
) -> RunResult:
    """Run a diagnostics or benchmark ``program`` (``tessera.module:function``, called as
    ``program(session, **args)``) at every party, each in its own process, over mutual TLS on
    127.0.0.1. ``party_args`` adds per-party keyword arguments; ``relay`` as in :func:`run_mesh`."""

    def configure(cfg: PartyConfig, root: Path) -> Path:
        cfg = cfg.model_copy(update={
            "program": None if cfg.is_dealer else program,
            "args": {**(args or {}), **((party_args or {}).get(cfg.name, {}))}})
        PartyConfig.model_validate(cfg.model_dump())  # the program must name a function inside tessera
        path = root / f"{cfg.name}.config.json"
        cfg.save(path)
        return path

    names = party_names(parties)
    reports = run_mesh(names, protocol=protocol, entry="tessera.runtime.party", configure=configure,
                       frac_bits=frac_bits, timeout=timeout, recv_timeout=recv_timeout, workdir=workdir,
                       relay=relay)
    return RunResult({n: reports[n].result for n in names}, {n: r.comm for n, r in reports.items()},
                     max(reports[n].seconds for n in names))


def _collect(root: Path, endpoints: list[str], procs: dict[str, ForkedProcess],
             timeout: float, gone: set[str] | None = None) -> dict[str, ProcessReport]:
    """Every endpoint's report, or the root cause of a failure. An endpoint of ``gone`` (input
    parties: data owners that may go offline once they have sent their inputs) whose process
    ended without a report is left out when every other endpoint finished well."""
    reports = {n: r for n in endpoints if (r := read_report(root / f"{n}.result.json")) is not None}
    failures = [r for r in reports.values() if r.failure is not None]
    missing = [n for n in endpoints if n not in reports]
    if not failures and all(n in (gone or set()) and procs[n].poll() is not None for n in missing):
        return reports
    if failures or missing:
        roots = [r for r in failures if r.failure is not None and r.failure.kind == "failed"]
        if roots:
            raise _raise(roots[0])
        if missing:
            running = [n for n in missing if procs[n].poll() is None]
            if running:
                raise TransportError(f"parties {running} did not finish within {timeout:g} s")
            codes = {n: procs[n].returncode for n in missing}
            raise TransportError(f"parties {missing} exited without a result (exit codes {codes})")
        raise _raise(failures[0])
    return reports


def _raise(report: ProcessReport) -> Exception:
    assert report.failure is not None
    return report.failure.to_error(report.party)
