"""rep3: three parties, 2-out-of-3 replicated shares over Z_2^64, semi-honest, honest majority.

``x = x0 + x1 + x2`` and party ``i`` holds ``(x_i, x_{i+1})``. No dealer: zero-shares come from
the seeds each party shares with its neighbours (Araki et al. 2016). A product is local up to
one resharing message. Truncation is exact up to one unit in the last place: for each call one
party acts as the helper that knows the TruncPr mask ``r`` (drawn from the seeds it shares with
the two others) and hands them shares of ``r``'s top bit and middle bits together with its part
of ``x``; the two others open ``x + r`` between themselves in the same round and send masked
shares back, so the result is again replicated (two rounds). The helper role rotates between
calls to balance traffic.

Costs per element: an input, 16 bytes from the owner, 1 round; an opening, 8 bytes per party,
1 round; a multiplication, 8 bytes per party, 1 round; a multiplication with truncation or a
truncation, 8/3 x 8 bytes per party on average, 2 rounds; a one-party oblivious permutation
(:meth:`Rep3.permute`), 32 bytes in all plus 8 bytes per row, 2 rounds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tessera.errors import SessionError, ShapeError
from tessera.net.channel import Channel
from tessera.protocols.base import (
    Protocol,
    check_permutation,
    concat_flat,
    inverse_permutation,
    split_flat,
)
from tessera.protocols.correlations import random_permutation
from tessera.protocols.semi2k import trunc_public_part
from tessera.ring.ring import RingArray, const, ring_op
from tessera.ring.ring import matmul as ring_matmul

__all__ = ["Rep3"]

_TOP = np.uint64(63)
_LOW63 = np.uint64((1 << 63) - 1)


def _pair_comp(x: int, y: int) -> int:
    """The component held by both parties ``x`` and ``y`` (component j is held by j-1 and j)."""
    return y if y == (x + 1) % 3 else x


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

    def _reshare(self, z: RingArray) -> RingArray:
        """Replicated shares from this party's part of a 3-out-of-3 sharing (already masked)."""
        self.ch.send(self.prev, np.ascontiguousarray(z).data)
        self.ch.round()
        z_next = np.frombuffer(self.ch.recv(self.next), dtype=np.uint64).reshape(z.shape)
        return np.stack([z, z_next])

    @ring_op
    def mul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        z = x[0] * (y[0] + y[1]) + x[1] * y[0]
        z += self.zero_share(z.shape)
        return self._trunc_additive(z, trunc) if trunc else self._reshare(z)

    @ring_op
    def matmul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        z = ring_matmul(x[0], y[0] + y[1]) + ring_matmul(x[1], y[0])
        z += self.zero_share(z.shape)
        return self._trunc_additive(z, trunc) if trunc else self._reshare(z)

    @ring_op
    def truncate(self, x: RingArray, bits: int) -> RingArray:
        if bits == 0:
            return x
        return self._trunc_additive(x[0] + self.zero_share(x.shape[1:]), bits)

    @ring_op
    def _trunc_additive(self, z: RingArray, f: int) -> RingArray:
        """Replicated shares of ``z >> f`` from a masked 3-out-of-3 additive sharing of ``z``.

        TruncPr in two rounds (as in semi2k: after Catrina-Saxena 2010 with the top-bit
        correction of Escudero et al. 2020), with a rotating helper ``d`` in place of a dealer.
        ``d`` knows the mask ``r = r_a + r_b`` (drawn from the seeds it shares with ``a`` and
        ``b``). Round 1, all at once: ``d`` sends ``a`` its shares of ``r``'s top bit and middle
        bits (``b`` draws its own from the seed it shares with ``d``) and sends its part ``z_d``
        to both; ``a`` and ``b`` send each other ``z_a + r_a + 2^62`` and ``z_b + r_b``; both now
        know ``c = z + 2^62 + r``. Round 2: they send ``d`` their result parts masked with
        randomness they share, so the result is again replicated.

        Views (semi-honest, one corrupted party): ``a`` sees ``z_d`` and ``z_b + r_b``, each
        padded by a distinct output of the seed of ``d`` and ``b`` that ``a`` lacks (``z_d`` and
        ``z_b`` are masked by the zero-sharing), and ``c``, padded by ``r``; ``b`` likewise;
        ``d`` sees two result parts padded by ``rho`` and ``sigma`` (seed of ``a`` and ``b``).
        """
        d = self._trunc_calls % 3
        self._trunc_calls += 1
        a, b = (d + 1) % 3, (d + 2) % 3
        shape = z.shape
        comps: dict[int, RingArray] = {}
        if self.me == d:
            r = self.pair_prg[a].ring(shape) + self.pair_prg[b].ring(shape)
            m_b, mid_b = self.pair_prg[b].ring(shape), self.pair_prg[b].ring(shape)
            m_a = (r >> _TOP) - m_b
            mid_a = ((r & _LOW63) >> np.uint64(f)) - mid_b
            self.ch.send(a, concat_flat([m_a, mid_a, z]).data)
            self.ch.send(b, np.ascontiguousarray(z).data)
            self.ch.round()
            self.ch.round()
            comps[_pair_comp(a, d)] = np.frombuffer(self.ch.recv(a), dtype=np.uint64).reshape(shape)
            comps[_pair_comp(b, d)] = np.frombuffer(self.ch.recv(b), dtype=np.uint64).reshape(shape)
        else:
            other = b if self.me == a else a
            r_own = self.pair_prg[d].ring(shape)
            u = z + r_own + const(1 << 62) if self.me == a else z + r_own
            self.ch.send(other, np.ascontiguousarray(u).data)
            self.ch.round()
            if self.me == a:
                m, mid, z_d = split_flat(np.frombuffer(self.ch.recv(d), dtype=np.uint64), [shape, shape, shape])
            else:
                m, mid = self.pair_prg[d].ring(shape), self.pair_prg[d].ring(shape)
                z_d = np.frombuffer(self.ch.recv(d), dtype=np.uint64).reshape(shape)
            c = u + z_d + np.frombuffer(self.ch.recv(other), dtype=np.uint64).reshape(shape)
            public, factor = trunc_public_part(c, f)
            t = m * factor - mid
            rho, sigma = self.pair_prg[other].ring(shape), self.pair_prg[other].ring(shape)
            t = t + public - rho - sigma if self.me == a else t + sigma
            self.ch.send(d, t.data)
            self.ch.round()
            comps[_pair_comp(a, b)] = rho
            comps[_pair_comp(self.me, d)] = t
        return np.stack([comps[self.me], comps[self.next]])

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
        z = (x[0] & (y[0] ^ y[1])) ^ (x[1] & y[0])
        z ^= self.pair_prg[self.next].ring(z.shape) ^ self.pair_prg[self.prev].ring(z.shape)
        return self._reshare(z)

    @ring_op
    def a2b_addends(self, x: RingArray) -> tuple[RingArray, RingArray, bool]:
        # x = (x_d + x_(d+1)) + x_(d+2): party d knows the first addend and shares its bits; the
        # last is already known to parties d+1 and d+2, i.e. it is a binary sharing with one
        # non-zero component. The role d rotates between calls (it sends 16 bytes per element).
        shape = x.shape[1:]
        d = self._a2b_calls % 3
        self._a2b_calls += 1
        nxt, prv = (d + 1) % 3, (d + 2) % 3
        zero = np.zeros(shape, dtype=np.uint64)
        if self.me == d:
            a_d, a_next = self.pair_prg[prv].ring(shape), self.pair_prg[nxt].ring(shape)
            a_last = (x[0] + x[1]) ^ a_d ^ a_next
            self.ch.send(nxt, a_last.data)
            self.ch.send(prv, a_last.data)
            self.ch.round()
            return np.stack([a_d, a_next]), np.zeros((2, *shape), dtype=np.uint64), False
        self.ch.round()
        a_last = np.frombuffer(self.ch.recv(d), dtype=np.uint64).reshape(shape)
        if self.me == nxt:
            return np.stack([self.pair_prg[d].ring(shape), a_last]), np.stack([zero, x[1]]), False
        return np.stack([a_last, self.pair_prg[d].ring(shape)]), np.stack([x[0], zero]), False

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
