"""Correlated OT between every pair of parties of a session, over Z_2^64 and over bits.

:class:`OtMesh` is one party's OT with all its peers over a :class:`~tessera.net.channel.Channel`.
Set-up runs 128 base OTs (:mod:`tessera.ot.base`) in each direction of each pair (two messages
each way, one round trip); afterwards every batch of OTs is IKNP-extended (:mod:`tessera.ot.iknp`)
in two rounds: the receivers send ``u``, the senders answer with the correction ``d``.

A request is one :class:`Cot` (this party's side of ``m`` OTs with ``peer``); the peer must make
the mirror request (``send`` against ``recv``) in the same position of its batch. Kinds:

* ``ring`` — correlated OT with chosen correlations ``Delta`` over Z_2^64 (``(m, w)`` words):
  the sender gets ``a``, the receiver with choice bits ``c`` gets ``b``, and ``a + b = c Delta``
  (mod 2^64). From the random OT ``(H0, H1)`` of the extension, the sender sends
  ``d = H1 - H0 - Delta`` and keeps ``a = -H0``; the receiver keeps ``b = H(t) - c d``.
  8 bytes per word from the sender, 16 bytes per OT from the receiver.
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
from tessera.ot.base import BaseOtReceiver, BaseOtSender
from tessera.ot.groups import BadPoints, Engine, get_group, ristretto255_available
from tessera.ot.iknp import KAPPA, CrHash, IknpReceiver, IknpSender, padded

__all__ = ["Cot", "OtMesh", "CHUNK_WORDS"]

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]

#: the largest number of 64-bit payload words one extension step handles (bounds temporaries)
CHUNK_WORDS = 1 << 21
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
        self._hash = CrHash()
        #: OTs extended so far with each peer, as sender and as receiver
        self.ots = 0

    def _salt(self, sender: int, receiver: int) -> bytes:
        return _TAG + self.ch.session_id + struct.pack("<II", sender, receiver)

    def setup(self) -> None:
        """Base OTs with every peer, both directions (Chou–Orlandi, 128 each)."""
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

    def run(self, requests: Sequence[Cot]) -> list[npt.NDArray[Any]]:
        """Run a batch of OTs with any peers in two rounds; this side's outputs, in order."""
        if not self._senders and self.n > 1:
            raise SessionError("OtMesh.setup() has not run")
        pending: list[tuple[Cot, list[tuple[int, int, int, U8, U8]]]] = []
        # round 1: every receiver sends u
        for req in requests:
            if req.role != "recv":
                continue
            assert req.data is not None
            choices = np.asarray(req.data, dtype=np.uint8)
            parts = []
            for lo, hi in _chunks(req.m, req.w):
                m = padded(hi - lo)
                c = np.zeros(m, dtype=np.uint8)
                c[: hi - lo] = choices[lo:hi]
                rec = self._receivers[req.peer]
                first = rec.count
                u, t = rec.extend(c)
                self.ch.send(req.peer, u.data)
                parts.append((lo, hi, first, t, c))
            pending.append((req, parts))
        self.ch.round()
        out: list[npt.NDArray[Any] | None] = [None] * len(requests)
        # round 2: every sender answers with d
        for i, req in enumerate(requests):
            if req.role == "send":
                out[i] = self._answer(req)
        self.ch.round()
        it = iter(pending)
        for i, req in enumerate(requests):
            if req.role == "recv":
                r, parts = next(it)
                out[i] = self._finish(r, parts)
        self.ots += sum(r.m for r in requests)
        return [o for o in out if o is not None]

    def _answer(self, req: Cot) -> npt.NDArray[Any]:
        snd = self._senders[req.peer]
        w = req.w
        results: list[npt.NDArray[Any]] = []
        for lo, hi in _chunks(req.m, w):
            m = padded(hi - lo)
            u = np.frombuffer(self.ch.recv(req.peer), dtype=np.uint8)
            if u.size != KAPPA * m // 8:
                raise SessionError(f"party {self.ch.names[req.peer]!r} sent an OT extension message of the wrong size")
            first = snd.count
            q = snd.extend(u.reshape(KAPPA, m // 8))
            h0 = self._hash.words(q, first, w)
            q ^= snd.s_row[None, :]
            h1 = self._hash.words(q, first, w)
            k = hi - lo
            if req.kind == "ring":
                assert req.data is not None
                delta = np.asarray(req.data[lo:hi], dtype=np.uint64).reshape(k, w)
                d = h1[:k] - h0[:k] - delta
                self.ch.send(req.peer, np.ascontiguousarray(d).data)
                results.append(-h0[:k])
            elif req.kind == "bits":
                assert req.data is not None
                b0 = (h0[:k, 0] & np.uint64(1)).astype(np.uint8)
                b1 = (h1[:k, 0] & np.uint64(1)).astype(np.uint8)
                d_bits = np.packbits(b0 ^ b1 ^ np.asarray(req.data[lo:hi], dtype=np.uint8), bitorder="little")
                self.ch.send(req.peer, d_bits.data)
                results.append(b0)
            else:
                results.append(np.stack([h0[:k], h1[:k]], axis=1))
        return np.concatenate(results) if results else np.zeros((0, w), dtype=np.uint64)

    def _finish(self, req: Cot, parts: list[tuple[int, int, int, U8, U8]]) -> npt.NDArray[Any]:
        results: list[npt.NDArray[Any]] = []
        for lo, hi, first, t, c in parts:
            k = hi - lo
            ht = self._hash.words(t, first, req.w)[:k]
            cc = c[:k]
            if req.kind == "ring":
                d = np.frombuffer(self.ch.recv(req.peer), dtype=np.uint64).reshape(k, req.w)
                results.append(ht - cc.astype(np.uint64)[:, None] * d)
            elif req.kind == "bits":
                d_bits = np.unpackbits(np.frombuffer(self.ch.recv(req.peer), dtype=np.uint8), bitorder="little")[:k]
                results.append((ht[:, 0] & np.uint64(1)).astype(np.uint8) ^ (cc & d_bits))
            else:
                results.append(ht)
        return np.concatenate(results) if results else np.zeros((0, req.w), dtype=np.uint64)
