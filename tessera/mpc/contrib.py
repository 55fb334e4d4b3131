"""Input parties: data owners that secret-share their inputs to the compute parties, then leave.

A data owner that does not compute never joins the session. It runs its local stage in its own
engine, then finds out which inputs the secure stage asks of it by *rehearsing* the secure stage
alone (:func:`rehearse`): a session whose protocol computes nothing (every share is zero) and
that records each :meth:`~tessera.mpc.session.Session.owner_inputs` value of this owner until the
first interactive step (a product, a truncation, an opening). An analysis's owners' inputs must
all come before it (``Analysis.owner_contributions = "inputs"``); analyses whose inputs depend on
a revealed value combine the owners' rows instead (``"rows"``). The owner secret-shares those inputs to the compute parties
(:func:`send_inputs`) and may go offline; the compute parties receive them (:func:`receive_inputs`)
and hand them to their session (:meth:`~tessera.mpc.session.Session.set_owners`), where the
secure stage finds them in the same order.

Sharing with seeds: the value ``x`` (ring elements) is split into the protocol's additive
components ``c_0 .. c_{m-1}`` (semi2k: one per compute party; rep3: three, party ``i`` holding
``c_i`` and ``c_{i+1}``). Every component but the last is the stream of a fresh 16-byte PRG seed
sent to the parties that hold it; the last, ``x - sum of the others``, is sent as it is. An owner
thus sends one share's worth of ring elements under semi2k (to the last party) and two under
rep3 (``c_2`` is held by two parties), plus a few seeds. Every component the compute parties
learn is uniformly random on its own or together with all but one of the others: any set of
parties that cannot reconstruct learns nothing about ``x`` (the protocols' own guarantee).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from tessera.errors import FrameError, SessionError
from tessera.mpc.session import Contribution, Received, Session
from tessera.net.channel import Channel, Payload
from tessera.net.channel import Received as Bytes
from tessera.prg import PRG, fresh_seed
from tessera.protocols.base import Protocol
from tessera.ring.ring import RingArray

__all__ = ["rehearse", "send_inputs", "receive_inputs", "held_components"]

_SEED = 16


class _Revealed(Exception):
    """The rehearsal reached the first interactive step: the owner's inputs are all recorded."""


class _NoChannel(Channel):
    """The links of a rehearsal: none (nothing is ever sent)."""

    def _send_raw(self, peer: int, payload: Payload) -> None:
        raise _Revealed

    def _recv_raw(self, peer: int) -> Bytes:
        raise _Revealed

    def _abort_raw(self, reason: str) -> None:
        pass

    def close(self) -> None:
        pass


class _Rehearsal(Protocol):
    """A protocol that computes nothing: local steps give zeros of the right shape, and the
    first interactive step (a product, truncation, permutation or opening) ends the rehearsal."""

    name = "rehearsal"

    def __init__(self, channel: Channel, n_parties: int, components: int) -> None:
        super().__init__(channel, n_parties)
        self.components = components  # type: ignore[misc]

    def setup(self) -> None:
        pass

    def _zeros(self, shape: Sequence[int]) -> RingArray:
        return np.zeros(tuple(shape), dtype=np.uint64)

    def add_public(self, x: RingArray, p: RingArray) -> RingArray:
        return self._zeros(np.broadcast_shapes(x.shape, np.asarray(p)[None].shape))

    def input(self, owner: int, value: RingArray | None, shape: tuple[int, ...]) -> RingArray:
        return self._zeros((self.components, *shape))

    def mul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        raise _Revealed

    def matmul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        raise _Revealed

    def truncate(self, x: RingArray, bits: int) -> RingArray:
        raise _Revealed

    def permute(self, x: RingArray, owner: int, pi: Any) -> RingArray:
        raise _Revealed

    def _open_raw(self, xs: list[RingArray], recipients: tuple[int, ...]) -> list[RingArray | None]:
        raise _Revealed

    def xor_public(self, x: RingArray, p: RingArray) -> RingArray:
        return self._zeros(np.broadcast_shapes(x.shape, np.asarray(p)[None].shape))

    def and_(self, x: RingArray, y: RingArray) -> RingArray:
        raise _Revealed

    def open_binary(self, xs: Sequence[RingArray]) -> list[RingArray]:
        raise _Revealed

    def a2b_addends(self, x: RingArray) -> tuple[RingArray, RingArray, bool]:
        return self._zeros(x.shape), self._zeros(x.shape), False

    def b2a_bit(self, x: RingArray) -> RingArray:
        raise _Revealed


def _stop(_: list[str]) -> None:
    raise _Revealed


def rehearse(components: int, compute: Sequence[str], owners: Sequence[str], owner: str, frac_bits: int,
             stage: Callable[[Session], object]) -> list[Contribution]:
    """The inputs ``owner`` (a data owner that does not compute) makes in ``stage`` (a secure
    stage, a function of a session among ``compute``) before its first interactive step, encoded.

    ``components``: the number of share components of the job's protocol (``Protocol.components``).
    Runs alone, sends nothing; the values computed are zeros and are thrown away.
    """
    proto = _Rehearsal(_NoChannel(0, list(compute)), len(compute), components)
    session = Session(proto, list(compute), frac_bits, session_id=b"rehearsal")
    recorded = session.rehearse_as(owner, owners)
    session.before_reveal(_stop)
    with contextlib.suppress(_Revealed):
        stage(session)
    return recorded


def held_components(protocol: str, party: int, n: int) -> tuple[int, list[int]]:
    """``(m, ks)``: the protocol's number of additive components and those compute party
    ``party`` (of ``n``) holds, in the order of its share array."""
    if protocol == "rep3":
        return 3, [party, (party + 1) % 3]
    if protocol == "semi2k":
        return n, [party]
    raise SessionError(f"data owners that do not compute cannot send inputs under {protocol!r} yet")


def send_inputs(channel: Channel, protocol: str, compute: Sequence[str], inputs: Sequence[Contribution]) -> None:
    """Secret-share ``inputs`` to the compute parties (see the module docstring): to each, one
    header (the public shapes, encodings and bounds), then a seed or the correction per component
    it holds. Reveals the header only."""
    n = len(compute)
    m, _ = held_components(protocol, 0, n)
    flat = np.concatenate([c.ring.reshape(-1) for c in inputs]) if inputs else np.zeros(0, dtype=np.uint64)
    seeds = [fresh_seed() for _ in range(m - 1)]
    last = flat.copy()
    for s in seeds:
        last -= PRG(s).ring(len(flat))
    header = json.dumps({"inputs": [[list(c.shape), c.frac_bits, c.bound] for c in inputs]}).encode()
    for i, name in enumerate(compute):
        peer = channel.peer_index(name)
        channel.send(peer, header)
        for k in held_components(protocol, i, n)[1]:
            channel.send(peer, seeds[k] if k < m - 1 else last.data)
    channel.round()


def receive_inputs(channel: Channel, protocol: str, me: int, n: int, owner: str) -> list[Received]:
    """This compute party's (``me`` of ``n``) shares of the inputs ``owner`` sent (:func:`send_inputs`)."""
    peer = channel.peer_index(owner)
    try:
        header = json.loads(bytes(channel.recv(peer)))
        items = [(tuple(int(d) for d in shp), int(f), None if b is None else float(b)) for shp, f, b in header["inputs"]]
    except (ValueError, KeyError, TypeError):
        raise FrameError(f"data owner {owner!r} sent a malformed header of its inputs") from None
    total = sum(int(np.prod(s, dtype=np.int64)) for s, _, _ in items)
    m, ks = held_components(protocol, me, n)
    parts = []
    for k in ks:
        data = bytes(channel.recv(peer))
        if k < m - 1:
            if len(data) != _SEED:
                raise FrameError(f"data owner {owner!r} sent a seed of {len(data)} bytes")
            parts.append(PRG(data).ring(total))
        else:
            if len(data) != 8 * total:
                raise FrameError(f"data owner {owner!r} sent {len(data)} bytes of shares, not {8 * total}")
            parts.append(np.frombuffer(data, dtype=np.uint64).copy())
    shares = np.stack(parts)  # (components held, total)
    out, at = [], 0
    for shp, f, b in items:
        size = int(np.prod(shp, dtype=np.int64))
        out.append(Received(shares[:, at:at + size].reshape((len(ks), *shp)).copy(), f, b))
        at += size
    return out
