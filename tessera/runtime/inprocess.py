"""Run the same party program for n parties in one process: threads and in-memory channels.

For unit tests and notebooks. The protocols are the ones that run over the network; only the
channel differs. If any party fails, it aborts the others and the root cause is raised.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from tessera.errors import ProtocolAbort, SessionError
from tessera.mpc.session import ProgressObserver, Session
from tessera.net.channel import Channel
from tessera.net.memory import memory_mesh
from tessera.protocols import NEEDS_DEALER, PROTOCOLS, Dealer
from tessera.runtime.result import RunResult

__all__ = ["run_threads", "run_input", "party_names", "DEALER_NAME"]

T = TypeVar("T")
DEALER_NAME = "dealer"


def party_names(parties: int | Sequence[str]) -> list[str]:
    """Names for the parties: given, or ``P0 .. P{n-1}``."""
    names = [f"P{i}" for i in range(parties)] if isinstance(parties, int) else list(parties)
    if len(set(names)) != len(names) or DEALER_NAME in names:
        raise SessionError(f"party names must be distinct and not {DEALER_NAME!r}: {names}")
    return names


def run_party(
    program: Callable[[Session], T], protocol: str, channel: Channel, parties: list[str], frac_bits: int,
    progress: ProgressObserver | None = None,
) -> T:
    """Run one party: start the session, run the program, close; abort the others on failure.
    ``progress`` observes the session's progress reports (:meth:`Session.progress`)."""
    try:
        session = Session.start(protocol, channel, parties, frac_bits)
        if progress is not None:
            session.on_progress(progress)
        result = program(session)
        session.close()
        return result
    except BaseException as e:
        if not isinstance(e, ProtocolAbort):
            channel.abort(f"{type(e).__name__}: {e}")
        raise


def run_dealer(channel: Channel, n_parties: int) -> int:
    """Run the semi2k dealer endpoint until the session closes; abort the others on failure."""
    try:
        return Dealer(channel, n_parties).serve()
    except BaseException as e:
        if not isinstance(e, ProtocolAbort):
            channel.abort(f"dealer failed: {type(e).__name__}: {e}")
        raise


def run_input(program: Callable[[Channel], T], channel: Channel) -> T:
    """Run an input party (a data owner that does not compute): ``program(channel)`` sends its
    inputs to the compute parties and returns; it aborts the others on failure."""
    try:
        return program(channel)
    except BaseException as e:
        if not isinstance(e, ProtocolAbort):
            channel.abort(f"{type(e).__name__}: {e}")
        raise


def run_threads(
    program: Callable[[Session], T],
    parties: int | Sequence[str] = 3,
    *,
    protocol: str = "semi2k",
    frac_bits: int = 16,
    timeout: float = 120.0,
    progress: Callable[[str, float, str], None] | None = None,
    inputs: Mapping[str, Callable[[Channel], Any]] | None = None,
) -> RunResult:
    """Run ``program(session)`` at every party, each in its own thread, and collect the results;
    ``progress(party, fraction, stage)`` observes each party's progress reports.

    ``inputs``: input parties (name -> program of its channel), endpoints after the parties and
    the dealer that join no session (data owners that do not compute, :mod:`tessera.mpc.contrib`)."""
    if protocol not in PROTOCOLS:
        raise SessionError(f"unknown protocol {protocol!r}; choose one of {sorted(PROTOCOLS)}")
    names = party_names(parties)
    dealer = NEEDS_DEALER[protocol]
    extra = dict(inputs or {})
    if set(extra) & set(names) or DEALER_NAME in extra:
        raise SessionError(f"input parties must be neither parties nor the dealer: {sorted(extra)}")
    endpoints = names + ([DEALER_NAME] if dealer else []) + list(extra)
    mesh = memory_mesh(endpoints, timeout=timeout)
    results: dict[str, Any] = {}
    errors: list[tuple[str, BaseException]] = []

    def party(i: int) -> None:
        try:
            observer = None if progress is None else (lambda f, s: progress(names[i], f, s))
            results[names[i]] = run_party(program, protocol, mesh[i], names, frac_bits, observer)
        except BaseException as e:
            errors.append((names[i], e))

    def dealer_loop() -> None:
        try:
            run_dealer(mesh[len(names)], len(names))
        except BaseException as e:
            errors.append((DEALER_NAME, e))

    def input_party(i: int) -> None:
        name = endpoints[i]
        try:
            results[name] = run_input(extra[name], mesh[i])
        except BaseException as e:
            errors.append((name, e))

    threads = [threading.Thread(target=party, args=(i,), name=f"tessera-{n}") for i, n in enumerate(names)]
    if dealer:
        threads.append(threading.Thread(target=dealer_loop, name="tessera-dealer"))
    threads += [threading.Thread(target=input_party, args=(i,), name=f"tessera-{endpoints[i]}")
                for i in range(len(endpoints) - len(extra), len(endpoints))]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    if errors:
        root = [e for _, e in errors if not isinstance(e, ProtocolAbort)]
        raise (root or [e for _, e in errors])[0]
    comm = {ch.name: ch.stats.as_dict() for ch in mesh}
    return RunResult(results, comm, seconds)
