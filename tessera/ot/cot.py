"""Correlated OT between every pair of parties of a session, over Z_2^64 and over bits.

:class:`OtMesh` is one party's OT with all its peers over a :class:`~tessera.net.channel.Channel`.
Set-up runs 128 base OTs (:mod:`tessera.ot.base`) in each direction of each pair (two messages
each way, one round trip); afterwards every batch of OTs is IKNP-extended (:mod:`tessera.ot.iknp`)
in two rounds: the receivers send their choice flips ``e`` (and ``u`` when a pool is refilled),
the senders answer with the correction ``d``.

Random OTs are extended ahead into a pool per pair and direction and derandomised per request
(:meth:`OtMesh.run`). A request is one :class:`Cot` (this party's side of ``m`` OTs with ``peer``); the peer must make
the mirror request (``send`` against ``recv``) in the same position of its batch. Kinds:

* ``ring`` — correlated OT with chosen correlations ``Delta`` over Z_2^64 (``(m, w)`` words):
  the sender gets ``a``, the receiver with choice bits ``c`` gets ``b``, and ``a + b = c Delta``
  (mod 2^64). From the random OT ``(H0, H1)`` of the extension, the sender sends
  ``d = H1 - H0 - Delta`` and keeps ``a = -H0``; the receiver keeps ``b = H(t) - c d``.
  8 bytes per word from the sender; 16 bytes per OT (the extension, ahead) and 1 bit (the flip) from the receiver.
* ``bits`` — the same over GF(2) with one bit per OT: ``a XOR b = c AND Delta``
  (``d = H0 XOR H1 XOR Delta``, 1 bit per OT from the sender).
* ``random`` — random OT: the sender gets both messages ``(H0, H1)`` (``(m, 2, w)`` words), the
  receiver ``H(t) = H_c``; nothing beyond the extension travels.

What each side sees: the receiver's ``u`` is one-time padded (IKNP), and ``d`` is padded by the
message the receiver cannot compute, so the receiver's view is independent of ``Delta`` up to
what ``c Delta`` shows, and the sender's of ``c``. Semi-honest security.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tessera.errors import SessionError
from tessera.net.channel import Channel
from tessera.ot.iknp import KAPPA, CrHash, IknpReceiver, IknpSender, padded

__all__ = ["Cot", "OtMesh", "CHUNK_WORDS", "POOL"]

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]

#: the largest number of 64-bit payload words one hashing step handles (bounds temporaries)
CHUNK_WORDS = 1 << 21
#: random OTs extended ahead per pair and direction when the pool runs short (a larger request
#: extends what it needs); OTs per extension message
POOL = 1 << 14
EXTEND_STEP = 1 << 20
_TAG = b"tessera/ot/mpc/v1"


@dataclass
class Cot:
    """This party's side of ``m`` OTs with ``peer`` (see the module doc for the kinds).

    ``send``: ``data`` is ``Delta`` (``ring``: ``(m, w)`` uint64; ``bits``: ``(m,)`` 0/1 uint8;
    ``random``: unused, give ``m`` and ``w``). ``recv``: ``data`` is the choice bits (``(m,)``).
    """

    peer: int
    role: Literal["send", "recv"]
    kind: Literal["ring", "bits", "random"]
    data: npt.NDArray[Any] | None = None
    m: int = 0
    w: int = 1

    def __post_init__(self) -> None:
        if self.data is not None:
            self.m = len(self.data)
            if self.kind == "ring" and self.role == "send":
                self.w = int(self.data.shape[1])


def _chunks(m: int, w: int) -> list[tuple[int, int]]:
    step = max(64, (CHUNK_WORDS // max(1, w)) // 64 * 64)
    return [(lo, min(m, lo + step)) for lo in range(0, m, step)]


class OtMesh:
    """One party's correlated OT with every other party of the session (module doc)."""

    def __init__(self, channel: Channel, n_parties: int) -> None:
        self.ch = channel
        self.me = channel.me
        self.n = n_parties
        self._senders: dict[int, IknpSender] = {}
        self._receivers: dict[int, IknpReceiver] = {}
        #: pooled random OTs per peer: as receiver (rows t, choices r, index of the first), as
        #: sender (rows q, index of the first)
        self._rpool: dict[int, tuple[U8, U8, int]] = {}
        self._spool: dict[int, tuple[U8, int]] = {}
        self._hash = CrHash()
        #: OTs extended so far with each peer, as sender and as receiver
        self.ots = 0

    def _salt(self, sender: int, receiver: int) -> bytes:
        return _TAG + self.ch.session_id + struct.pack("<II", sender, receiver)

    def setup(self) -> None:
        """Base OTs with every peer, both directions (Chou–Orlandi, 128 each)."""
        # imported here: every party process imports the protocols, and PyNaCl/libsodium only
        # serve this set-up (see "Import cost" in docs/architecture.md)
        from tessera.ot.base import BaseOtReceiver, BaseOtSender
        from tessera.ot.groups import BadPoints, Engine, get_group, ristretto255_available

        peers = [j for j in range(self.n) if j != self.me]
        group = get_group("ristretto255" if ristretto255_available() else "edwards25519")
        with ThreadPoolExecutor(max_workers=1) as pool:
            engine = Engine(group, pool, 1)
            # for peer j's extension to me, I am the base-OT sender (I will be the extension receiver)
            base_senders = {j: BaseOtSender(engine, self._salt(j, self.me), KAPPA) for j in peers}
            for j in peers:
                self.ch.send(j, base_senders[j].message)
            self.ch.round()
            secrets: dict[int, U8] = {}
            base_receivers: dict[int, BaseOtReceiver] = {}
            for j in peers:
                s = np.unpackbits(np.frombuffer(os.urandom(KAPPA // 8), dtype=np.uint8), bitorder="little")
                secrets[j] = s
                base_receivers[j] = BaseOtReceiver(engine, self._salt(self.me, j), s)
                a_point = bytes(self.ch.recv(j))
                try:
                    self.ch.send(j, base_receivers[j].message(a_point))
                except BadPoints:
                    raise SessionError(f"party {self.ch.names[j]!r} sent an invalid base-OT point") from None
            self.ch.round()
            for j in peers:
                try:
                    k0, k1 = base_senders[j].keys(self.ch.recv(j))
                except BadPoints:
                    raise SessionError(f"party {self.ch.names[j]!r} sent invalid base-OT points") from None
                self._receivers[j] = IknpReceiver(k0, k1)
                self._senders[j] = IknpSender(secrets[j], base_receivers[j].keys())
                self._rpool[j] = (np.zeros((0, KAPPA // 8), np.uint8), np.zeros(0, np.uint8), 0)
                self._spool[j] = (np.zeros((0, KAPPA // 8), np.uint8), 0)

    def _refill_receiver(self, peer: int, need: int) -> None:
        t, r, _ = self._rpool[peer]
        deficit = need - len(r)
        if deficit <= 0:
            return
        total = padded(max(deficit, POOL))
        ts, rs = [t], [r]
        rec = self._receivers[peer]
        for lo in range(0, total, EXTEND_STEP):
            bits = np.unpackbits(np.frombuffer(os.urandom(min(EXTEND_STEP, total - lo) // 8), dtype=np.uint8))
            u, rows = rec.extend(bits)
            self.ch.send(peer, u.data)
            ts.append(rows)
            rs.append(bits)
        self._rpool[peer] = (np.concatenate(ts), np.concatenate(rs), self._rpool[peer][2])

    def _refill_sender(self, peer: int, need: int) -> None:
        q, _ = self._spool[peer]
        deficit = need - len(q)
        if deficit <= 0:
            return
        total = padded(max(deficit, POOL))
        qs = [q]
        snd = self._senders[peer]
        for lo in range(0, total, EXTEND_STEP):
            k = min(EXTEND_STEP, total - lo)
            u = np.frombuffer(self.ch.recv(peer), dtype=np.uint8)
            if u.size != KAPPA * k // 8:
                raise SessionError(f"party {self.ch.names[peer]!r} sent an OT extension message of the wrong size")
            qs.append(snd.extend(u.reshape(KAPPA, k // 8)))
        self._spool[peer] = (np.concatenate(qs), self._spool[peer][1])

    def run(self, requests: Sequence[Cot]) -> list[npt.NDArray[Any]]:
        """Run a batch of OTs with any peers in two rounds; this side's outputs, in order.

        OTs come from a pool of random OTs extended ahead (:data:`POOL` at a time, or what a
        large request needs); a request turns them into chosen-input OTs by Beaver's
        derandomisation: the receiver sends ``e = c XOR r`` for its pooled random choices ``r``
        (one bit per OT) and the sender flips its rows where ``e`` is set.
        """
        if not self._senders and self.n > 1:
            raise SessionError("OtMesh.setup() has not run")
        pending: list[tuple[int, U8, U8, int]] = []
        # round 1: every receiver extends its pool if short (u) and sends its flips e
        for i, req in enumerate(requests):
            if req.role != "recv":
                continue
            assert req.data is not None
            self._refill_receiver(req.peer, req.m)
            t_all, r_all, first = self._rpool[req.peer]
            c = np.asarray(req.data, dtype=np.uint8).reshape(-1)
            self.ch.send(req.peer, np.packbits(c ^ r_all[: req.m], bitorder="little").data)
            pending.append((i, t_all[: req.m], c, first))
            self._rpool[req.peer] = (t_all[req.m :], r_all[req.m :], first + req.m)
        self.ch.round()
        out: list[npt.NDArray[Any] | None] = [None] * len(requests)
        # round 2: every sender answers with d
        for i, req in enumerate(requests):
            if req.role == "send":
                out[i] = self._answer(req)
        self.ch.round()
        for i, t, c, first in pending:
            out[i] = self._finish(requests[i], t, c, first)
        self.ots += sum(r.m for r in requests)
        return [o for o in out if o is not None]

    def _answer(self, req: Cot) -> npt.NDArray[Any]:
        self._refill_sender(req.peer, req.m)
        q_all, first = self._spool[req.peer]
        self._spool[req.peer] = (q_all[req.m :], first + req.m)
        snd = self._senders[req.peer]
        e = np.unpackbits(np.frombuffer(self.ch.recv(req.peer), dtype=np.uint8), bitorder="little")
        if len(e) != padded_bytes(req.m) * 8:
            raise SessionError(f"party {self.ch.names[req.peer]!r} sent an OT message of the wrong size")
        w = req.w
        results: list[npt.NDArray[Any]] = []
        corrections: list[npt.NDArray[Any]] = []
        for lo, hi in _chunks(req.m, w):
            q = q_all[lo:hi] ^ (e[lo:hi, None] * snd.s_row[None, :])
            h0 = self._hash.words(q, first + lo, w)
            q ^= snd.s_row[None, :]
            h1 = self._hash.words(q, first + lo, w)
            if req.kind == "ring":
                assert req.data is not None
                delta = np.asarray(req.data[lo:hi], dtype=np.uint64).reshape(hi - lo, w)
                corrections.append(h1 - h0 - delta)
                results.append(-h0)
            elif req.kind == "bits":
                assert req.data is not None
                b0 = (h0[:, 0] & np.uint64(1)).astype(np.uint8)
                b1 = (h1[:, 0] & np.uint64(1)).astype(np.uint8)
                corrections.append(b0 ^ b1 ^ np.asarray(req.data[lo:hi], dtype=np.uint8))
                results.append(b0)
            else:
                results.append(np.stack([h0, h1], axis=1))
        if req.kind == "ring":
            self.ch.send(req.peer, np.ascontiguousarray(np.concatenate(corrections)).data)
        elif req.kind == "bits":
            self.ch.send(req.peer, np.packbits(np.concatenate(corrections), bitorder="little").data)
        return np.concatenate(results) if results else np.zeros((0, w), dtype=np.uint64)

    def _finish(self, req: Cot, t: U8, c: U8, first: int) -> npt.NDArray[Any]:
        d: npt.NDArray[Any] = np.zeros(0, dtype=np.uint64)
        if req.kind == "ring":
            d = np.frombuffer(self.ch.recv(req.peer), dtype=np.uint64).reshape(req.m, req.w)
        elif req.kind == "bits":
            d = np.unpackbits(np.frombuffer(self.ch.recv(req.peer), dtype=np.uint8), bitorder="little")[: req.m]
        results: list[npt.NDArray[Any]] = []
        for lo, hi in _chunks(req.m, req.w):
            ht = self._hash.words(t[lo:hi], first + lo, req.w)
            cc = c[lo:hi]
            if req.kind == "ring":
                results.append(ht - cc.astype(np.uint64)[:, None] * d[lo:hi])
            elif req.kind == "bits":
                results.append((ht[:, 0] & np.uint64(1)).astype(np.uint8) ^ (cc & d[lo:hi]))
            else:
                results.append(ht)
        return np.concatenate(results) if results else np.zeros((0, req.w), dtype=np.uint64)


def padded_bytes(m: int) -> int:
    """Bytes of ``m`` packed bits."""
    return -(-m // 8)
