"""The entry point: :func:`run_psi` runs one party's side of a PSI job over a channel."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from tessera.errors import ProtocolAbort, SessionError
from tessera.net.channel import Channel
from tessera.ot.groups import Engine, default_workers, get_group
from tessera.psi._ids import prepare_ids
from tessera.psi._job import Job, check_spec, role_order
from tessera.psi._keys import KeyLog, PsiKey
from tessera.psi._oprf import run_oprf
from tessera.psi._result import PsiResult, PsiSpec
from tessera.psi._three import run_three
from tessera.psi._two import run_two

__all__ = ["run_psi"]


def run_psi(
    channel: Channel,
    ids: Iterable[str | int],
    spec: PsiSpec,
    *,
    parties: Sequence[int] | None = None,
    key: PsiKey | None = None,
    key_log: KeyLog | None = None,
    workers: int | None = None,
    timings: dict[str, float] | None = None,
) -> PsiResult:
    """Run this party's side of the PSI job ``spec`` over ``channel``, with its identifiers ``ids``.

    Every party of the job calls this with an equal ``spec`` and ``parties`` (endpoint indices;
    default: every endpoint of the channel; 2 or 3 parties). ``ids`` are this party's row
    identifiers, strings or integers, normalised and deduplicated as ``_ids.py`` documents.

    Computes, per ``spec.mode``: the number of common identifiers (``size``), this party's rows
    of the common identifiers in an order shared by all recipients (``intersection``), or this
    party's part of a secret-shared join plan (``aligned``). What each party learns besides is
    documented in ``_two.py`` and ``_three.py``; every mode reveals the parties' numbers of
    distinct identifiers.

    ``key`` is a fresh single-use :class:`PsiKey` (default: drawn here). ``key_log`` is the
    node's record of public keys of earlier jobs, to refuse reused keys. ``workers`` is the
    number of threads for group operations (default: the cores available). ``timings``, if
    given, receives seconds per phase of the OPRF protocol (for benchmarks).

    Raises :class:`~tessera.errors.DataError` for unusable identifiers,
    :class:`~tessera.errors.SessionError` for a bad spec or a reused key,
    :class:`~tessera.errors.ProtocolAbort` if any party aborted or a peer's messages failed a
    check, :class:`~tessera.errors.TransportError` if the network failed. On any error every
    peer is told to stop and no partial result is returned.
    """
    started = time.perf_counter()
    try:
        endpoints = list(range(len(channel.names))) if parties is None else list(parties)
        recipients = check_spec(spec, endpoints, channel.me)
        group = get_group(spec.group)
        key = PsiKey.fresh(group) if key is None else key
        if key.group.name != group.name:
            raise SessionError(f"the PsiKey is for group {key.group.name!r} but the job uses {group.name!r}")
        scalar = key.take()
        prepared = prepare_ids(ids, spec.normalisation)
        if timings is not None:
            timings["prepare_ids"] = time.perf_counter() - started
        order = role_order(spec, endpoints, recipients)
        n_workers = workers or default_workers()
        with ThreadPoolExecutor(n_workers, thread_name_prefix="tessera-psi") as pool:
            engine = Engine(group, pool, n_workers)
            job = Job(channel, order, order.index(channel.me), spec, recipients, engine, scalar,
                      key.public_key(), prepared)
            job.hello(key_log, os.urandom(32))
            if timings is not None:
                timings["hello"] = time.perf_counter() - started - timings["prepare_ids"]
            if spec.protocol == "oprf":
                size, rows, alignment = run_oprf(job, timings)
            elif len(order) == 2:
                size, rows, alignment = run_two(job)
            else:
                size, rows, alignment = run_three(job)
        return PsiResult(
            mode=spec.mode,
            size=size,
            rows=rows,
            alignment=alignment,
            n_rows=prepared.n_rows,
            n_distinct=len(prepared.keys),
            peer_sizes={order[r]: job.sizes[r] for r in range(len(order)) if r != job.role},
            scalar_mults=engine.scalar_mults,
            seconds=time.perf_counter() - started,
        )
    except ProtocolAbort:
        raise  # a peer stopped, or we found a fault and already told every peer
    except BaseException as e:
        channel.abort(f"PSI stopped at {channel.name!r}: {type(e).__name__}: {e}")
        raise
