"""rep3: three parties, 2-out-of-3 replicated shares over Z_2^64, semi-honest, honest majority.

``x = x0 + x1 + x2`` and party ``i`` holds ``(x_i, x_{i+1})``. No dealer: zero-shares come from
the seeds each party shares with its neighbours (Araki et al. 2016). A product is local up to
one resharing message. Truncation is exact up to one unit in the last place: for each call one
party acts as the helper that knows the TruncPr mask ``r``, which it derives from the seeds it
shares with the two others and from its own part of ``x``, so that the two others open
``x + r`` between themselves alone; the helper sends one of them its shares of ``r``'s top bit
and shifted value in the same round, and in the second the two exchange one word and one
``f``-bit word, so the result is again replicated (:meth:`Rep3._trunc_additive`). The helper
role rotates between calls to balance traffic.

Costs per element: an input, 16 bytes from the owner, 1 round; an opening, 8 bytes per party,
1 round; a multiplication, 8 bytes per party, 1 round; a multiplication with truncation or a
truncation by ``9 <= f <= 16`` bits, 36 bytes in all (12 per party on average; 34 for
``f <= 8``, 40 up to 32, 48 above), 2 rounds; a one-party oblivious permutation (:meth:`Rep3.permute`), 32 bytes in all
plus 8 bytes per row, 2 rounds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.errors import SessionError, ShapeError
from tessera.net.channel import Channel, Received
from tessera.prg import PRG
from tessera.protocols.base import (
    Protocol,
    check_permutation,
    concat_flat,
    inverse_permutation,
    split_flat,
)
from tessera.protocols.correlations import random_permutation
from tessera.ring.bitslice import slice_bits, sliced_shape
from tessera.ring.ring import RingArray, const, ring_op
from tessera.ring.ring import matmul as ring_matmul

__all__ = ["Rep3"]

_TOP = np.uint64(63)


def _pair_comp(x: int, y: int) -> int:
    """The component held by both parties ``x`` and ``y`` (component j is held by j-1 and j)."""
    return y if y == (x + 1) % 3 else x


def _small_dtype(f: int) -> np.dtype[np.unsignedinteger[Any]]:
    """The narrowest unsigned word holding ``f`` bits (values modulo ``2^f`` travel in it)."""
    for t in (np.uint8, np.uint16, np.uint32):
        if f <= 8 * np.dtype(t).itemsize:
            return np.dtype(t)
    return np.dtype(np.uint64)


def _draw_small(prg: PRG, shape: tuple[int, ...], dtype: np.dtype[Any]) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """Two arrays of uniform ``dtype`` words, in one draw of the stream."""
    both = np.empty((2, *shape), dtype=dtype)
    prg.fill(both)
    return both[0, ...], both[1, ...]


def _add_high(x: RingArray, w: npt.NDArray[Any], f: int) -> None:
    """``x += w 2^(64-f)`` in place, for ``f``-bit words ``w`` (of :func:`_small_dtype`).

    Adding a multiple of ``2^(64-f)`` changes only the top word-sized lane of each element
    (carries out of it leave the ring): one pass over the top lanes, no 64-bit temporary.
    """
    if w.dtype == np.uint64:
        x += w << np.uint64(64 - f)
        return
    if not x.flags.c_contiguous:  # reshape would copy, and the sum would be lost
        raise ValueError("_add_high needs a C-contiguous array")
    k = 8 // w.dtype.itemsize
    lanes = x.reshape(-1).view(w.dtype)
    top = lanes[k - 1 :: k] if sys.byteorder == "little" else lanes[::k]
    spare = 8 * w.dtype.itemsize - f
    top += (w << w.dtype.type(spare)).reshape(-1) if spare else w.reshape(-1)


def _words(buf: Received, dtype: np.dtype[Any] | type, n: int, shape: tuple[int, ...], offset: int = 0) -> npt.NDArray[Any]:
    """``n`` words of ``dtype`` read (not copied) from a received message at byte ``offset``."""
    return np.frombuffer(buf, dtype=dtype, count=n, offset=offset).reshape(shape)


class Rep3(Protocol):
    """One party's side of rep3."""

    name = "rep3"
    components = 2

    def __init__(self, channel: Channel, n_parties: int = 3) -> None:
        if n_parties != 3:
            raise SessionError(f"rep3 runs between exactly 3 parties, got {n_parties}")
        super().__init__(channel, n_parties)
        self.next = (self.me + 1) % 3
        self.prev = (self.me + 2) % 3
        self._trunc_calls = 0
        self._a2b_calls = 0

    # -- local -------------------------------------------------------------------------------

    @ring_op
    def add_public(self, x: RingArray, p: RingArray) -> RingArray:
        pub = np.asarray(p, dtype=np.uint64)
        out = np.array(np.broadcast_to(x, np.broadcast_shapes(x.shape, (1, *pub.shape))))
        if self.me == 0:
            out[0] += pub
        elif self.me == 2:
            out[1] += pub
        return out

    @ring_op
    @ring_op
    def xor_public(self, x: RingArray, p: RingArray) -> RingArray:
        pub = np.asarray(p, dtype=np.uint64)
        out = np.array(np.broadcast_to(x, np.broadcast_shapes(x.shape, (1, *pub.shape))))
        if self.me == 0:
            out[0] ^= pub
        elif self.me == 2:
            out[1] ^= pub
        return out

    def zero_share(self, shape: tuple[int, ...]) -> RingArray:
        """This party's part of a fresh sharing of zero (the three parts sum to 0)."""
        return self.pair_prg[self.next].ring(shape) - self.pair_prg[self.prev].ring(shape)

    # -- interactive -------------------------------------------------------------------------

    @ring_op
    def input(self, owner: int, value: RingArray | None, shape: tuple[int, ...]) -> RingArray:
        o_next, o_prev = (owner + 1) % 3, (owner + 2) % 3
        if self.me == owner:
            assert value is not None
            x_o = self.pair_prg[o_prev].ring(shape)
            x_next = self.pair_prg[o_next].ring(shape)
            x_last = np.array(value, dtype=np.uint64).reshape(shape) - x_o - x_next
            self.ch.send(o_next, x_last.data)
            self.ch.send(o_prev, x_last.data)
            self.ch.round()
            return np.stack([x_o, x_next])
        self.ch.round()
        x_last = np.frombuffer(self.ch.recv(owner), dtype=np.uint64).reshape(shape)
        if self.me == o_next:
            return np.stack([self.pair_prg[owner].ring(shape), x_last])
        return np.stack([x_last, self.pair_prg[owner].ring(shape)])

    @ring_op
    def _open_raw(self, xs: list[RingArray], recipients: tuple[int, ...]) -> list[RingArray | None]:
        # party i lacks component i+2, which its previous party holds as its first component
        if self.next in recipients:
            self.ch.send(self.next, concat_flat([x[0] for x in xs]).data)
        self.ch.round()
        if self.me not in recipients:
            return [None] * len(xs)
        missing = np.frombuffer(self.ch.recv(self.prev), dtype=np.uint64)
        total = concat_flat([x[0] + x[1] for x in xs]) + missing
        return list(split_flat(total, [x.shape[1:] for x in xs]))

    def _reshare(self, out: RingArray) -> RingArray:
        """Replicated shares from this party's part of a 3-out-of-3 sharing (already masked),
        written in ``out[0]``; the next party's part is received into ``out[1]``."""
        self.ch.send(self.prev, np.ascontiguousarray(out[0, ...]).reshape(-1).data)
        self.ch.round()
        out[1] = np.frombuffer(self.ch.recv(self.next), dtype=np.uint64).reshape(out.shape[1:])
        return out

    @ring_op
    def mul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        shape = np.broadcast_shapes(x.shape[1:], y.shape[1:])
        if trunc:  # the truncation masks what it sends itself: no zero-sharing needed
            z = x[0] * (y[0] + y[1])
            z += x[1] * y[0]
            return self._trunc_additive(z, trunc)
        out = np.empty((2, *shape), dtype=np.uint64)
        z = out[0, ...]  # a view, also of a 0-d result
        np.add(y[0], y[1], out=z)
        z *= x[0]
        z += x[1] * y[0]
        z += self.zero_share(shape)
        return self._reshare(out)

    @ring_op
    def matmul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        z = ring_matmul(x[0], y[0] + y[1]) + ring_matmul(x[1], y[0])
        if trunc:
            return self._trunc_additive(z, trunc)
        out = np.empty((2, *z.shape), dtype=np.uint64)
        np.add(z, self.zero_share(z.shape), out=out[0, ...])
        return self._reshare(out)

    @ring_op
    def truncate(self, x: RingArray, bits: int) -> RingArray:
        if bits == 0:
            return x
        return self._trunc_additive(x[0], bits)

    @ring_op
    def _trunc_additive(self, z: RingArray, f: int) -> RingArray:
        """Replicated shares of ``z >> f`` from any 3-out-of-3 additive sharing of ``z`` (this
        party's part ``z``; not changed), exact up to one unit in the last place.

        TruncPr in two rounds (after Catrina-Saxena 2010 with the top-bit correction of
        Escudero et al. 2020, as in semi2k) with a rotating helper ``d`` in place of a dealer,
        and ``a = d + 1``, ``b = d + 2``. The mask is ``r = alpha + gamma - z_d`` (``alpha`` from
        the seed of ``d`` and ``a``, ``gamma`` from that of ``d`` and ``b``), so the opened
        ``c = z + 2^62 + r = (z_a + alpha + 2^62) + (z_b + gamma)`` needs no word from ``d``.
        With ``m = r_63``: ``(z + 2^62) >> f - 2^(62-f) = P - K - Q``, where
        ``P = c >> f - 2^(62-f)`` is public to ``a`` and ``b``, ``K = r >> f`` (arithmetic, ``r``
        read as signed) is known to ``d`` and ``Q = c_63 m 2^(64-f)`` depends on ``m`` modulo
        ``2^f`` only. (This is semi2k's ``P + (1 - 2 c_63) m 2^(63-f) - r_mid``, regrouped.)

        Round 1: ``a`` and ``b`` send each other ``z_a + alpha + 2^62`` and ``z_b + gamma``;
        ``d`` sends ``a`` ``D = K + kappa + omega + mu 2^(64-f)`` and ``m_a = m - m_b`` (mod ``2^f``, in 8,
        16 or 32-bit words), with ``kappa`` (seed of ``d`` and ``a``) and ``omega``, ``m_b``,
        ``mu`` (seed of ``d`` and ``b``) fresh. Round 2: ``b`` sends ``a`` ``g_b = mu - c_63 m_b``
        and ``a`` sends ``b`` ``F_a = -c_63 m_a 2^(64-f) - D``. The result's components are
        ``kappa`` (held by ``d`` and ``a``), ``omega`` (``d`` and ``b``) and
        ``P + F_a + g_b 2^(64-f)`` (``a`` and ``b``); they sum to ``P - K - Q``.

        Views (semi-honest, one corrupted party): ``d`` receives nothing. ``a`` receives
        ``z_b + gamma``, ``D``, ``m_a`` and ``g_b``, padded by ``gamma``, ``omega``, ``m_b`` and
        ``mu``: distinct outputs of the seed of ``d`` and ``b``, which ``a`` lacks. ``b``
        receives ``z_a + alpha + 2^62`` and ``F_a``, padded by ``alpha`` and ``kappa`` (seed of
        ``d`` and ``a``). To ``a`` and ``b`` the mask ``r`` is uniform and independent of ``z``
        (each lacks one of ``alpha``, ``gamma``), so ``c`` reveals nothing, and ``z`` needs no
        zero-sharing. Bytes per element (``9 <= f <= 16``): ``d`` 10, ``a`` 16, ``b`` 10; the helper
        role rotates between calls.
        """
        d = self._trunc_calls % 3
        self._trunc_calls += 1
        a, b = (d + 1) % 3, (d + 2) % 3
        shape, n = z.shape, z.size
        small = _small_dtype(f)
        public_offset = const(1 << (62 - f))
        out = np.empty((2, *shape), dtype=np.uint64)  # (this party's component, the next one)
        mine, nxt = out[0, ...], out[1, ...]  # views, also of 0-d results
        if self.me == d:  # out: (omega, kappa)
            r = self.pair_prg[a].ring(shape)
            self.pair_prg[a].fill(nxt)
            r += self.pair_prg[b].ring(shape)
            self.pair_prg[b].fill(mine)
            m_b, mu = _draw_small(self.pair_prg[b], shape, small)
            r -= z
            msg = np.empty(n * (8 + small.itemsize), dtype=np.uint8)
            np.right_shift(r, _TOP, out=msg[8 * n :].view(small).reshape(shape), casting="unsafe")
            msg[8 * n :].view(small)[:] -= m_b.reshape(-1)  # m_a
            k = r.view(np.int64)
            k >>= np.int64(f)  # K
            r += nxt
            dm = msg[: 8 * n].view(np.uint64).reshape(shape)
            np.add(r, mine, out=dm)
            _add_high(dm, mu, f)  # D
            self.ch.send(a, msg.data)
            self.ch.round()
            self.ch.round()
            return out
        if self.me == a:  # out: (kappa, P + F_a + g_b 2^(64-f))
            u = self.pair_prg[d].ring(shape)
            u += z
            u += const(1 << 62)
            self.ch.send(b, u.reshape(-1).data)
            self.pair_prg[d].fill(mine)
            self.ch.round()
            c = u
            c += _words(self.ch.recv(b), np.uint64, n, shape)
            q = np.empty(shape, dtype=small)
            np.right_shift(c, _TOP, out=q, casting="unsafe")
            np.right_shift(c, np.uint64(f), out=nxt)
            nxt -= public_offset  # P
            got = self.ch.recv(d)
            q *= _words(got, small, n, shape, offset=8 * n)
            np.negative(q, out=q)
            f_a = np.empty(shape, dtype=np.uint64)
            np.negative(_words(got, np.uint64, n, shape), out=f_a)
            _add_high(f_a, q, f)
            self.ch.send(b, f_a.reshape(-1).data)
            self.ch.round()
            nxt += f_a
            _add_high(nxt, _words(self.ch.recv(b), small, n, shape), f)
            return out
        # b; out: (P + F_a + g_b 2^(64-f), omega)
        v = self.pair_prg[d].ring(shape)
        v += z
        self.ch.send(a, v.reshape(-1).data)
        self.pair_prg[d].fill(nxt)
        m_b, mu = _draw_small(self.pair_prg[d], shape, small)
        self.ch.round()
        c = v
        c += _words(self.ch.recv(a), np.uint64, n, shape)
        g_b = np.empty(shape, dtype=small)
        np.right_shift(c, _TOP, out=g_b, casting="unsafe")
        g_b *= m_b
        np.subtract(mu, g_b, out=g_b)
        self.ch.send(a, g_b.reshape(-1).data)
        self.ch.round()
        np.right_shift(c, np.uint64(f), out=mine)
        mine -= public_offset
        _add_high(mine, g_b, f)
        mine += _words(self.ch.recv(a), np.uint64, n, shape)
        return out

    @ring_op
    def permute(self, x: RingArray, owner: int, pi: npt.ArrayLike | None) -> RingArray:
        """One-party oblivious permutation: only ``owner`` (``p``) knows ``pi``.

        The standard resharing shuffle lets *two* parties apply a permutation they both know;
        here one party alone may know it, so the third party acts as a dealer instead. With
        ``u = p + 1`` and ``v = p + 2``:

        1. Local 2-out-of-2 resharing: ``p`` holds ``s_p = x_p + x_{p+1}``, ``u`` holds
           ``s_u = x_{p+2}`` (``v`` happens to know ``s_u`` too; it plays the dealer).
        2. ``v`` draws ``sigma`` from the seed it shares with ``p``, and ``A``, ``B`` from the
           seed it shares with ``u``; it sends ``p`` the correction ``sigma(A) - B``. ``u``
           sends ``p`` the value ``s_u - A``; ``p`` sends ``u`` (only) ``rho = sigma^-1 o pi``.
           Now ``p`` holds ``Y_p = (s_p + s_u - A)[pi] + (sigma(A) - B)[rho] = x[pi] - B[rho]``
           and ``u`` holds ``Y_u = B[rho]``: a 2-out-of-2 sharing of ``x[pi]``.
        3. Back to replicated shares with ``r``, ``w`` from the seed of ``p`` and ``u``:
           ``y_u = r``, ``y_p = Y_p - r + w`` (sent by ``p`` to ``v``), ``y_v = Y_u - w``
           (sent by ``u`` to ``v``); ``p`` holds ``(y_p, y_u)``, ``u`` ``(y_u, y_v)``,
           ``v`` ``(y_v, y_p)``.

        Security (semi-honest, one corrupted party): ``p`` receives ``s_u - A`` and
        ``sigma(A) - B``, padded by ``A`` and ``B`` that only ``u`` and ``v`` know, so its view is
        uniform; ``u`` receives only ``rho``, a uniformly random permutation independent of
        ``pi`` because ``sigma`` is known only to ``p`` and ``v``; ``v`` knows ``sigma``, ``A``,
        ``B`` but never receives ``rho``, and the two values it receives are padded by ``r`` and
        ``w``, which only ``p`` and ``u`` know, so its view is uniform too. No single party
        learns ``pi`` (other than ``p``) or anything about ``x``, and all three output
        components are fresh. Costs: ``u -> p`` and ``v -> p`` one element per entry,
        ``p -> u`` 8 bytes per row, then ``p -> v`` and ``u -> v`` one element per entry;
        2 rounds.
        """
        shape = x.shape[1:]
        if not shape:
            raise ShapeError("permute needs a tensor of at least one dimension")
        m = shape[0]
        p, u, v = owner, (owner + 1) % 3, (owner + 2) % 3
        if self.me == p:
            if pi is None:
                raise ShapeError("the permuting party must pass its permutation")
            pi = check_permutation(pi, m)
            sigma = random_permutation(self.pair_prg[v], m)
            r, w = self.pair_prg[u].ring(shape), self.pair_prg[u].ring(shape)
            rho = np.ascontiguousarray(inverse_permutation(sigma)[pi])
            self.ch.send(u, rho.data)
            self.ch.round()
            e = np.frombuffer(self.ch.recv(u), dtype=np.uint64).reshape(shape)
            delta = np.frombuffer(self.ch.recv(v), dtype=np.uint64).reshape(shape)
            y_p = (x[0] + x[1] + e)[pi] + delta[rho] - r + w
            self.ch.send(v, y_p.data)
            self.ch.round()
            return np.stack([y_p, r])
        if self.me == u:
            a, b = self.pair_prg[v].ring(shape), self.pair_prg[v].ring(shape)
            r, w = self.pair_prg[p].ring(shape), self.pair_prg[p].ring(shape)
            self.ch.send(p, np.ascontiguousarray(x[1] - a).data)
            self.ch.round()
            rho = check_permutation(np.frombuffer(self.ch.recv(p), dtype=np.int64), m)
            y_v = b[rho] - w
            self.ch.send(v, y_v.data)
            self.ch.round()
            return np.stack([r, y_v])
        sigma = random_permutation(self.pair_prg[p], m)
        a, b = self.pair_prg[u].ring(shape), self.pair_prg[u].ring(shape)
        self.ch.send(p, np.ascontiguousarray(a[sigma] - b).data)
        self.ch.round()
        self.ch.round()
        y_v = np.frombuffer(self.ch.recv(u), dtype=np.uint64).reshape(shape)
        y_p = np.frombuffer(self.ch.recv(p), dtype=np.uint64).reshape(shape)
        return np.stack([y_v, y_p])

    # -- binary ------------------------------------------------------------------------------

    def open_binary(self, xs: Sequence[RingArray]) -> list[RingArray]:
        self.ch.send(self.next, concat_flat([x[0] for x in xs]).data)
        self.ch.round()
        missing = np.frombuffer(self.ch.recv(self.prev), dtype=np.uint64)
        values = split_flat(concat_flat([x[0] ^ x[1] for x in xs]) ^ missing, [x.shape[1:] for x in xs])
        self._opened("binary", xs, tuple(range(self.n)), values)
        return values

    @ring_op
    def and_(self, x: RingArray, y: RingArray) -> RingArray:
        out = np.empty((2, *np.broadcast_shapes(x.shape[1:], y.shape[1:])), dtype=np.uint64)
        z = out[0, ...]
        np.bitwise_xor(y[0], y[1], out=z)
        z &= x[0]
        z ^= x[1] & y[0]
        z ^= self.pair_prg[self.next].ring(z.shape)
        z ^= self.pair_prg[self.prev].ring(z.shape)
        return self._reshare(out)

    @ring_op
    def a2b_addends(self, x: RingArray) -> tuple[RingArray, RingArray, bool]:
        # x = (x_d + x_(d+1)) + x_(d+2): party d knows the first addend and shares its bits; the
        # last is already known to parties d+1 and d+2, i.e. it is a binary sharing with one
        # non-zero component. The role d rotates between calls (it sends 16 bytes per element).
        return self._addends(x, x.shape[1:], lambda w: w)

    @ring_op
    def a2b_sliced(self, x: RingArray, rows: int) -> tuple[RingArray, RingArray, bool]:
        # the same addends, each sliced once by a party that knows it in the clear (party d the
        # first, d+1 and d+2 the last) instead of every component by every party; the shared
        # first addend travels as rows / 64 of a word per element
        flat = x.reshape(x.shape[0], -1)
        return self._addends(flat, sliced_shape(flat.shape[1], rows), lambda w: slice_bits(w, rows))

    def _addends(self, x: RingArray, shape: tuple[int, ...],
                 layout: Callable[[RingArray], RingArray]) -> tuple[RingArray, RingArray, bool]:
        """Binary shares of ``x_d + x_(d+1)`` and of ``x_(d+2)`` in ``layout`` (of ``shape``)."""
        d = self._a2b_calls % 3
        self._a2b_calls += 1
        nxt, prv = (d + 1) % 3, (d + 2) % 3
        zero = np.zeros(shape, dtype=np.uint64)
        if self.me == d:
            a_d, a_next = self.pair_prg[prv].ring(shape), self.pair_prg[nxt].ring(shape)
            a_last = layout(x[0] + x[1]) ^ a_d ^ a_next
            self.ch.send(nxt, a_last.data)
            self.ch.send(prv, a_last.data)
            self.ch.round()
            return np.stack([a_d, a_next]), np.zeros((2, *shape), dtype=np.uint64), False
        self.ch.round()
        a_last = np.frombuffer(self.ch.recv(d), dtype=np.uint64).reshape(shape)
        if self.me == nxt:
            return np.stack([self.pair_prg[d].ring(shape), a_last]), np.stack([zero, layout(x[1])]), False
        return np.stack([a_last, self.pair_prg[d].ring(shape)]), np.stack([layout(x[0]), zero]), False

    @ring_op
    def b2a_bit(self, x: RingArray) -> RingArray:
        """Arithmetic shares of the bit ``b = b0 ^ b1 ^ b2`` (component ``j`` held by ``j-1``
        and ``j``), 8 bytes per party and 2 rounds (two resharing products took 16).

        Party 0 knows ``u = b0 ^ b1`` and shares it as ``(r, u - r, 0)`` with ``r`` from the
        seed it shares with party 2, sending ``u - r`` to party 1 (round 1). Then ``b = u + b2 -
        2 u b2`` splits into ``T2 = r (1 - 2 b2)`` (party 2 knows it) and ``T1 = (u - r)(1 - 2 b2)
        + b2`` (party 1, after round 1). With ``rho``, ``sigma`` from the seed of parties 1 and 2
        the result is ``(T2 + sigma, T1 - rho - sigma, rho)``: party 2 sends the first
        component to party 0 in round 1, party 1 the second in round 2.

        Views: party 1 sees ``u - r``, padded by ``r``; party 0 sees ``T2 + sigma`` and ``T1 -
        rho - sigma``, two independent uniform words (their sum is ``b - rho``); party 2 sees
        nothing. All three components are fresh.
        """
        bits = x & np.uint64(1)
        shape = bits.shape[1:]
        if self.me == 0:
            u = bits[0] ^ bits[1]
            r = self.pair_prg[2].ring(shape)
            self.ch.send(1, np.ascontiguousarray(u - r).data)
            self.ch.round()
            self.ch.round()
            y0 = np.frombuffer(self.ch.recv(2), dtype=np.uint64).reshape(shape)
            y1 = np.frombuffer(self.ch.recv(1), dtype=np.uint64).reshape(shape)
            return np.stack([y0, y1])
        if self.me == 1:
            b2 = bits[1]
            self.ch.round()
            c1 = np.frombuffer(self.ch.recv(0), dtype=np.uint64).reshape(shape)
            rho, sigma = self.pair_prg[2].ring(shape), self.pair_prg[2].ring(shape)
            y1 = c1 * (np.uint64(1) - np.uint64(2) * b2) + b2 - rho - sigma
            self.ch.send(0, np.ascontiguousarray(y1).data)
            self.ch.round()
            return np.stack([y1, rho])
        b2 = bits[0]
        r = self.pair_prg[0].ring(shape)
        rho, sigma = self.pair_prg[1].ring(shape), self.pair_prg[1].ring(shape)
        y0 = r * (np.uint64(1) - np.uint64(2) * b2) + sigma
        self.ch.send(0, np.ascontiguousarray(y0).data)
        self.ch.round()
        self.ch.round()
        return np.stack([rho, y0])
