"""Dealer-free semi2k: the parties make every correlation themselves from pairwise OT.

:class:`OtProvider` implements :class:`~tessera.protocols.preprocessing.Provider` over
:class:`~tessera.ot.OtMesh` (IKNP-extended correlated OT between every pair). Semi-honest,
secure against any number of corrupted parties but one (dishonest majority), n >= 2. Each party
draws its shares of the *random* components from a fresh local PRG; the *derived* components
are computed jointly:

* **Beaver triples** over Z_2^64 (``mul``): ``c = (sum a_i)(sum b_j)``; the cross terms
  ``a_i b_j`` (``i != j``) come from Gilboa's OT-based multiplication (Gilboa 1999, "Two party
  RSA key generation"): 64 correlated OTs per product, the receiver ``j`` choosing with the bits
  of ``b_j``, the sender ``i`` correlating bit ``k`` with ``2^k a_i``; summed over ``k`` the two
  outputs are additive shares of ``a_i b_j`` (as in MASCOT, Keller–Orsini–Scholl 2016, without
  its checks).
* **Matrix triples** (``matmul``): the cross terms of ``A_i B_j`` with one OT per bit of an entry
  of the smaller side and the matching *row* of the other as the correlation (the SecureML
  construction, Mohassel–Zhang 2017, Sec. IV-B): ``64 m k`` OTs of ``n`` words for ``(m, k) @ (k, n)``.
* **Shared random bits** (``dabit``, and the bits of ``trunc`` and ``edabit``): every party
  draws an XOR share; the XOR is made arithmetic step by step,
  ``[x XOR b_j] = [x] + b_j - 2 [x] b_j``, each product ``[x] b_j`` by one correlated OT per
  other share (the daBit construction of Rotaru–Wood 2019 in the semi-honest setting).
* **edaBits** (Escudero et al. 2020): ``r``'s 64 XOR-shared bits made arithmetic as above;
  ``r = sum 2^k [r_k]``. **Truncation masks**: the same, with ``r_63`` and
  ``r_mid = sum_{k=f}^{62} 2^(k-f) [r_k]`` read off the bits (TruncPr, Catrina–Saxena 2010).
* **Binary AND triples** (``and``): XOR shares of random words ``a``, ``b``; the cross terms
  ``a_i AND b_j`` by correlated OT over bits (one OT per bit, 1 bit of correction).
* **The permutation correlation** (``perm``): see :mod:`tessera.protocols.otperm`.

Correlations are made on demand, one batch per request (two rounds per OT batch; a bit
conversion among ``n`` parties takes ``n - 1`` batches).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from tessera.errors import SessionError
from tessera.net.channel import Channel
from tessera.ot import Cot, OtMesh
from tessera.prg import PRG
from tessera.protocols.correlations import build, random_permutation
from tessera.protocols.otperm import perm_correction
from tessera.protocols.preprocessing import Provider, Ready, Shares
from tessera.protocols.semi2k import Semi2k
from tessera.ring.ring import RingArray

__all__ = ["OtProvider", "Semi2kOt"]

_BITS = np.arange(64, dtype=np.uint64)
_ONE = np.uint64(1)
#: the largest number of payload words of one matrix-triple batch (chunked over rows beyond it)
MATMUL_CHUNK_WORDS = 1 << 22


def to_bits(words: RingArray) -> np.ndarray:
    """``(m, 64)`` uint8: bit ``k`` of every word (little-endian words)."""
    w = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1)
    return np.unpackbits(w.view(np.uint8), bitorder="little").reshape(len(w), 64)


def from_bits(bits: np.ndarray) -> RingArray:
    """The words whose bits are ``bits`` (``(m, 64)`` of 0/1)."""
    packed = np.packbits(np.ascontiguousarray(bits, dtype=np.uint8), axis=1, bitorder="little")
    return np.ascontiguousarray(packed).view(np.uint64).reshape(-1)


class OtProvider(Provider):
    """One party's correlations made with the other parties by OT (module doc)."""

    def __init__(self, channel: Channel, n_parties: int) -> None:
        self.ch = channel
        self.me = channel.me
        self.n = n_parties
        self.ot = OtMesh(channel, n_parties)
        self._prg = PRG()
        self._peers = [j for j in range(n_parties) if j != self.me]
        self._kinds: dict[str, Callable[[list[tuple[int, ...]], dict[str, int]], Ready]] = {
            "mul": self._mul, "matmul": self._matmul, "trunc": self._trunc, "and": self._and,
            "edabit": self._edabit, "dabit": self._dabit, "perm": self._perm,
        }

    def setup(self) -> None:
        """Base OTs with every other party."""
        self.ot.setup()

    def get(self, kind: str, shapes: Sequence[tuple[int, ...]], params: dict[str, int] | None = None) -> Shares:
        build(kind, shapes, params)  # validates the request as the dealer would
        return self._kinds[kind]([tuple(int(d) for d in s) for s in shapes], dict(params or {}))

    # -- building blocks ---------------------------------------------------------------------

    def cross_products(self, x: RingArray, y: RingArray) -> RingArray:
        """Additive shares of ``sum_{i != j} x_i y_j`` (flat, elementwise) by Gilboa's method:
        for each ordered pair, 64 OTs with ``j``'s bits of ``y_j`` as choices and ``2^k x_i``
        as the correlations."""
        m = len(x)
        if m == 0:
            return np.zeros(0, dtype=np.uint64)
        delta = (x[:, None] << _BITS[None, :]).reshape(-1, 1)
        choices = to_bits(y).reshape(-1)
        reqs = []
        for j in self._peers:
            reqs.append(Cot(j, "send", "ring", delta))
            reqs.append(Cot(j, "recv", "ring", choices, w=1))
        out = np.zeros(m, dtype=np.uint64)
        for r in self.ot.run(reqs):
            out += r.reshape(m, 64).sum(axis=1, dtype=np.uint64)
        return out

    def _cross_matmul(self, a: RingArray, b: RingArray) -> RingArray:
        """Shares of ``sum_{i != j} A_i @ B_j`` for 2-D ``A`` ``(m, k)``, ``B`` ``(k, n)``."""
        m, k = a.shape
        n = b.shape[1]
        if m > n:  # fewer OTs the other way round: (A B)^T = B^T A^T
            return np.ascontiguousarray(self._cross_matmul(np.ascontiguousarray(b.T), np.ascontiguousarray(a.T)).T)
        out = np.zeros((m, n), dtype=np.uint64)
        if m * k * n == 0:
            return out
        rows = max(1, MATMUL_CHUNK_WORDS // (64 * k * n))
        # as sender: correlation 2^t B[l, :] for OT (r, l, t), the same for every row r
        delta_row = (b[:, None, :] << _BITS[None, :, None]).reshape(k * 64, n)
        for r0 in range(0, m, rows):
            r1 = min(m, r0 + rows)
            delta = np.broadcast_to(delta_row, (r1 - r0, k * 64, n)).reshape(-1, n)
            choices = to_bits(a[r0:r1]).reshape(-1)
            reqs = []
            for j in self._peers:
                reqs.append(Cot(j, "send", "ring", delta))
                reqs.append(Cot(j, "recv", "ring", choices, w=n))
            for res in self.ot.run(reqs):
                out[r0:r1] += res.reshape(r1 - r0, k * 64, n).sum(axis=1, dtype=np.uint64)
        return out

    def bits_to_arith(self, bits: np.ndarray) -> RingArray:
        """Additive shares of the XOR of every party's ``bits`` (flat 0/1), ``n - 1`` OT batches."""
        own = np.asarray(bits, dtype=np.uint8).reshape(-1)
        acc = own.astype(np.uint64) if self.me == 0 else np.zeros(len(own), dtype=np.uint64)
        for j in range(1, self.n):
            # [acc XOR b_j] = [acc] + b_j - 2 [acc] b_j; parties < j hold acc, j holds b_j
            if self.me == j:
                reqs = [Cot(i, "recv", "ring", own, w=1) for i in range(j)]
            elif self.me < j:
                reqs = [Cot(j, "send", "ring", acc[:, None])]
            else:
                continue
            prod = np.zeros(len(own), dtype=np.uint64)
            for r in self.ot.run(reqs):
                prod += r.reshape(-1)
            acc = acc - np.uint64(2) * prod
            if self.me == j:
                acc += own.astype(np.uint64)
        return acc

    def _random_bits(self, m: int) -> tuple[RingArray, np.ndarray]:
        """This party's XOR shares of ``m`` random words and arithmetic shares of their bits."""
        words = self._prg.ring(m)
        arith = self.bits_to_arith(to_bits(words).reshape(-1)).reshape(m, 64)
        return words, arith

    # -- the correlations (same components as correlations.build) ---------------------------

    def _triple(self, op: str, s1: tuple[int, ...], s2: tuple[int, ...]) -> tuple[RingArray, RingArray, RingArray]:
        a, b = self._prg.ring(s1), self._prg.ring(s2)
        if op == "mul":
            out = np.broadcast_shapes(s1, s2)
            aa = np.ascontiguousarray(np.broadcast_to(a, out)).reshape(-1)
            bb = np.ascontiguousarray(np.broadcast_to(b, out)).reshape(-1)
            c = (aa * bb + self.cross_products(aa, bb)).reshape(out)
        else:
            c = np.matmul(a, b) + self._cross_matmul_nd(a, b)
        return a, b, c

    def _cross_matmul_nd(self, a: RingArray, b: RingArray) -> RingArray:
        if a.ndim <= 2 and b.ndim <= 2:
            a2 = a[None, :] if a.ndim == 1 else a
            b2 = b[:, None] if b.ndim == 1 else b
            out = self._cross_matmul(a2, b2)
            if a.ndim == 1:
                out = out[0]
            if b.ndim == 1:
                out = out[..., 0]
            return np.asarray(out, dtype=np.uint64)
        # batched matrices: elementwise Gilboa products of the broadcast operands, summed
        aa, bb = np.broadcast_arrays(a[..., :, :, None], b[..., None, :, :])
        prod = self.cross_products(np.ascontiguousarray(aa).reshape(-1), np.ascontiguousarray(bb).reshape(-1))
        summed: RingArray = prod.reshape(aa.shape).sum(axis=-2, dtype=np.uint64)
        return summed

    def _mask(self, shape: tuple[int, ...], f: int) -> tuple[RingArray, RingArray, RingArray]:
        m = int(np.prod(shape, dtype=np.int64))
        _, bits = self._random_bits(m)
        r = (bits << _BITS[None, :]).sum(axis=1, dtype=np.uint64)
        r_msb = bits[:, 63]
        r_mid = (bits[:, f:63] << _BITS[None, : 63 - f]).sum(axis=1, dtype=np.uint64)
        return r.reshape(shape), r_msb.reshape(shape), r_mid.reshape(shape)

    def _product(self, op: str, shapes: list[tuple[int, ...]], params: dict[str, int]) -> Ready:
        a, b, c = self._triple(op, shapes[0], shapes[1])
        f = params.get("f", 0)
        if not f:
            return Ready([a, b], [c])
        r, r_msb, r_mid = self._mask(c.shape, f)
        return Ready([a, b, r], [c, r_msb, r_mid])

    def _mul(self, shapes: list[tuple[int, ...]], params: dict[str, int]) -> Ready:
        return self._product("mul", shapes, params)

    def _matmul(self, shapes: list[tuple[int, ...]], params: dict[str, int]) -> Ready:
        return self._product("matmul", shapes, params)

    def _trunc(self, shapes: list[tuple[int, ...]], params: dict[str, int]) -> Ready:
        r, r_msb, r_mid = self._mask(shapes[0], params["f"])
        return Ready([r], [r_msb, r_mid])

    def _and(self, shapes: list[tuple[int, ...]], params: dict[str, int]) -> Ready:
        (s,) = shapes
        a, b = self._prg.ring(s), self._prg.ring(s)
        m = a.size
        delta, choices = to_bits(a).reshape(-1), to_bits(b).reshape(-1)
        reqs = []
        for j in self._peers:
            reqs.append(Cot(j, "send", "bits", delta))
            reqs.append(Cot(j, "recv", "bits", choices))
        acc = np.zeros(64 * m, dtype=np.uint8)
        for r in self.ot.run(reqs):
            acc ^= r
        c = (a & b) ^ from_bits(acc.reshape(m, 64)).reshape(s)
        return Ready([a, b], [c])

    def _edabit(self, shapes: list[tuple[int, ...]], params: dict[str, int]) -> Ready:
        (s,) = shapes
        m = int(np.prod(s, dtype=np.int64))
        words, bits = self._random_bits(m)
        r = (bits << _BITS[None, :]).sum(axis=1, dtype=np.uint64)
        return Ready([r.reshape(s)], [words.reshape(s)])

    def _dabit(self, shapes: list[tuple[int, ...]], params: dict[str, int]) -> Ready:
        (s,) = shapes
        bit = self._prg.bits(s, 1)
        arith = self.bits_to_arith(bit.reshape(-1).astype(np.uint8))
        return Ready([bit], [arith.reshape(s)])

    def _perm(self, shapes: list[tuple[int, ...]], params: dict[str, int]) -> Ready:
        (s,) = shapes
        owner = params["owner"]
        if not 0 <= owner < self.n:
            raise SessionError(f"a correlation for an unknown party {owner}")
        a = self._prg.ring(s)
        sigma = random_permutation(self._prg, s[0]) if self.me == owner else None
        b = perm_correction(self.ot, self._prg, self.me, self.n, owner, a, sigma)
        return Ready([a, None if sigma is None else sigma.view(np.uint64)], [b])  # type: ignore[list-item]


class Semi2kOt(Semi2k):
    """semi2k with no dealer: the parties make the correlations by OT (:class:`OtProvider`)."""

    preprocessing = "ot"

    def __init__(self, channel: Channel, n_parties: int) -> None:
        super().__init__(channel, n_parties)
        self.dealer_index = -1  # there is none

    def _make_provider(self) -> OtProvider:
        provider = OtProvider(self.ch, self.n)
        provider.setup()
        return provider
