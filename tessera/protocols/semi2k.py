"""semi2k: n >= 2 parties, additive shares over Z_2^64, semi-honest, dishonest majority.

Multiplications use Beaver triples and truncations use TruncPr masks, both from the session's
preprocessing provider (:mod:`tessera.protocols.preprocessing`): the dealer
(:mod:`tessera.protocols.dealer`) here, the parties' own OTs in :class:`~tessera.protocols.otprep.Semi2kOt`. Inputs are shared without communication: every other party
draws its share from the seed it shares with the owner, and the owner keeps the difference.

Costs per element (n parties): an input, 0 bytes; an opening, 8(n-1) bytes per party, 1 round;
a multiplication, 16(n-1) bytes per party, 1 round; a truncation, 8(n-1) bytes, 1 round; a
one-party oblivious permutation (:meth:`Semi2k.permute`), 8 bytes from every other party to the
permuting one and 8 from the dealer to it, plus 8 bytes per row from it to every other party,
1 round.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from tessera.errors import ShapeError
from tessera.net.channel import Channel
from tessera.protocols.base import (
    Protocol,
    check_permutation,
    concat_flat,
    inverse_permutation,
    split_flat,
)
from tessera.protocols.dealer import DealerClient
from tessera.protocols.preprocessing import Provider
from tessera.ring.ring import RingArray, const, pack_bits, ring_op, unpack_bits
from tessera.ring.ring import matmul as ring_matmul

__all__ = ["Semi2k", "trunc_public_part"]

_TOP = np.uint64(63)


@ring_op
def trunc_public_part(c: RingArray, f: int) -> tuple[RingArray, RingArray]:
    """From the opened ``c = x + 2^62 + r``: the public term and the factor of ``[r_msb]``.

    TruncPr in Z_2^64 (after Catrina-Saxena 2010, with the top-bit correction of
    Escudero et al. 2020): with ``y = x + 2^62`` in ``[0, 2^63)``,
    ``y >> f = (c mod 2^63) >> f - r_mid + 2^(63-f) * (c_msb XOR r_msb)``, off by at most one.
    """
    c_msb = c >> _TOP
    # (c mod 2^63) >> f + 2^(63-f) c_msb is c >> f (2^f divides 2^63): one pass
    public = (c >> np.uint64(f)) - const(1 << (62 - f))
    factor = (np.uint64(1) - np.uint64(2) * c_msb) << np.uint64(63 - f)
    return public, factor


class Semi2k(Protocol):
    """One party's side of semi2k with a dealer: endpoint ``n_parties`` of the channel."""

    name = "semi2k"
    components = 1
    #: where correlations come from (:data:`~tessera.protocols.preprocessing.PREPROCESSING`)
    preprocessing = "dealer"

    def __init__(self, channel: Channel, n_parties: int) -> None:
        super().__init__(channel, n_parties)
        self.dealer_index = n_parties
        self.provider: Provider | None = None

    def setup(self) -> None:
        super().setup()
        self.provider = self._make_provider()

    def _make_provider(self) -> Provider:
        """The session's correlation source (here: the dealer, whose seed arrives first)."""
        seed = bytes(self.ch.recv(self.dealer_index))
        return DealerClient(self.ch, self.dealer_index, seed, self.me, self.n)

    def close(self) -> None:
        if self.provider is not None:
            self.provider.close()
            self.provider = None

    def _provider(self) -> Provider:
        assert self.provider is not None, "setup() has not run"
        return self.provider

    # -- local -------------------------------------------------------------------------------

    @ring_op
    def add_public(self, x: RingArray, p: RingArray) -> RingArray:
        pub = np.asarray(p, dtype=np.uint64)[None]
        if self.me != 0:
            return np.broadcast_to(x, np.broadcast_shapes(x.shape, pub.shape)).copy()
        return x + pub

    # -- interactive -------------------------------------------------------------------------

    @ring_op
    def input(self, owner: int, value: RingArray | None, shape: tuple[int, ...]) -> RingArray:
        if self.me != owner:
            return self.pair_prg[owner].ring(shape)[None]
        assert value is not None
        share = np.array(value, dtype=np.uint64).reshape(shape)
        for j in range(self.n):
            if j != owner:
                share -= self.pair_prg[j].ring(shape)
        return share[None]

    @ring_op
    def _open_raw(self, xs: list[RingArray], recipients: tuple[int, ...]) -> list[RingArray | None]:
        shapes = [x.shape[1:] for x in xs]
        flat = concat_flat([x[0] for x in xs])
        for r in recipients:
            if r != self.me:
                self.ch.send(r, flat.data)
        self.ch.round()
        if self.me not in recipients:
            return [None] * len(xs)
        total = flat.copy()
        for j in range(self.n):
            if j != self.me:
                total += np.frombuffer(self.ch.recv(j), dtype=np.uint64)
        return list(split_flat(total, shapes))

    def _open_all(self, xs: list[RingArray]) -> list[RingArray]:
        everyone = tuple(range(self.n))
        values = self._open_raw(xs, everyone)
        self._opened("masked", xs, everyone, values)
        return [v for v in values if v is not None]

    def mul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        return self._beaver("mul", np.multiply, x, y, trunc)

    def matmul(self, x: RingArray, y: RingArray, trunc: int = 0) -> RingArray:
        return self._beaver("matmul", ring_matmul, x, y, trunc)

    @ring_op
    def _beaver(self, kind: str, op: Callable[[RingArray, RingArray], RingArray], x: RingArray, y: RingArray,
                trunc: int) -> RingArray:
        # Beaver 1991: open d = x - a and e = y - b, then xy = c + d b + a e + d e. With
        # truncation, the same dealer request carries the output's TruncPr mask.
        pending = self._provider().get(kind, [x.shape[1:], y.shape[1:]], {"f": trunc} if trunc else None)
        a, b = pending.random[:2]
        d, e = self._open_all([x - a[None], y - b[None]])
        c = pending.derived()[0]
        z = c + op(d, b) + op(a, e)
        if self.me == 0:
            z += op(d, e)
        if not trunc:
            return z[None]
        return self._truncpr(z, trunc, pending.random[2], lambda: pending.derived()[1:])

    @ring_op
    def truncate(self, x: RingArray, bits: int) -> RingArray:
        if bits == 0:
            return x
        pending = self._provider().get("trunc", [x.shape[1:]], {"f": bits})
        return self._truncpr(x[0], bits, pending.random[0], pending.derived)

    @ring_op
    def permute(self, x: RingArray, owner: int, pi: npt.ArrayLike | None) -> RingArray:
        """One-party oblivious permutation (dealer-assisted permute-and-share), any n >= 2.

        The dealer's ``perm`` correlation gives every party a share of a random mask ``A``,
        gives the owner ``p`` a random permutation ``sigma`` (from the stream it shares with the
        dealer) and shares ``B = sigma(A)`` so that ``p`` holds its share from the dealer's
        correction and every other party ``j`` draws ``b_j`` from its own stream. Online, one
        round: every ``j != p`` sends ``x_j - a_j`` to ``p``; ``p`` adds them to ``x_p - a_p``
        (giving ``x - A``) and sends everybody ``rho = sigma^-1 o pi`` (``pi[t] = sigma[rho[t]]``).
        Outputs: ``p`` holds ``(x - A)[pi] + b_p[rho]``, every other ``j`` holds ``b_j[rho]``;
        they sum to ``x[pi]`` because ``B[rho] = A[sigma[rho]] = A[pi]``.

        Security (semi-honest, dealer not colluding): ``p`` receives ``x_j - a_j`` and
        ``B - sum b_j``, each one-time padded by dealer randomness it does not know, so its view
        is uniform whatever ``x``; every other party receives only ``rho``, which is a uniformly
        random permutation independent of ``pi`` because ``sigma`` is uniform and known only to
        ``p`` and the dealer; the dealer receives nothing but the public request and never sees
        ``rho``, so it learns neither ``x`` nor ``pi``. Non-owners' outputs ``b_j[rho]`` are fresh
        dealer randomness, so output shares cannot be linked to input shares.
        """
        shape = x.shape[1:]
        if not shape:
            raise ShapeError("permute needs a tensor of at least one dimension")
        m = shape[0]
        pending = self._provider().get("perm", [shape], {"owner": owner})
        a = pending.random[0]
        if self.me != owner:
            self.ch.send(owner, np.ascontiguousarray(x[0] - a).data)
            self.ch.round()
            rho = check_permutation(np.frombuffer(self.ch.recv(owner), dtype=np.int64), m)
            (b,) = pending.derived()
            return b[rho][None]
        if pi is None:
            raise ShapeError("the permuting party must pass its permutation")
        pi = check_permutation(pi, m)
        sigma = pending.random[1].view(np.int64)  # the permutation component (correlations.draw)
        rho = np.ascontiguousarray(inverse_permutation(sigma)[pi])
        for j in range(self.n):
            if j != owner:
                self.ch.send(j, rho.data)
        self.ch.round()
        masked = x[0] - a
        for j in range(self.n):
            if j != owner:
                masked += np.frombuffer(self.ch.recv(j), dtype=np.uint64).reshape(shape)
        (b,) = pending.derived()
        out: RingArray = masked[pi] + b[rho]
        return out[None]

    def _truncpr(self, x: RingArray, f: int, r: RingArray, masks: Callable[[], list[RingArray]]) -> RingArray:
        """TruncPr: open ``c = x + 2^62 + r``; the rest is local (see :func:`trunc_public_part`)."""
        masked = x + r
        if self.me == 0:
            masked += const(1 << 62)
        (c,) = self._open_all([masked[None]])
        r_msb, r_mid = masks()
        public, factor = trunc_public_part(c, f)
        z = r_msb * factor - r_mid
        if self.me == 0:
            z += public
        return z[None]

    # -- binary ------------------------------------------------------------------------------

    @ring_op
    def xor_public(self, x: RingArray, p: RingArray) -> RingArray:
        pub = np.asarray(p, dtype=np.uint64)[None]
        if self.me != 0:
            return np.broadcast_to(x, np.broadcast_shapes(x.shape, pub.shape)).copy()
        return x ^ pub

    def open_binary(self, xs: Sequence[RingArray]) -> list[RingArray]:
        shapes = [x.shape[1:] for x in xs]
        flat = concat_flat([x[0] for x in xs])
        for j in range(self.n):
            if j != self.me:
                self.ch.send(j, flat.data)
        self.ch.round()
        total = flat.copy()
        for j in range(self.n):
            if j != self.me:
                total ^= np.frombuffer(self.ch.recv(j), dtype=np.uint64)
        values = split_flat(total, shapes)
        self._opened("masked-binary", xs, tuple(range(self.n)), values)
        return values

    @ring_op
    def and_(self, x: RingArray, y: RingArray) -> RingArray:
        # Beaver's trick over GF(2)^64: open d = x ^ a, e = y ^ b; xy = c ^ db ^ ae ^ de.
        pending = self._provider().get("and", [x.shape[1:]])
        a, b = pending.random
        d, e = self.open_binary([x ^ a[None], y ^ b[None]])
        (c,) = pending.derived()
        z: RingArray = c ^ (d & b) ^ (e & a)
        if self.me == 0:
            z ^= d & e
        return z[None]

    @ring_op
    def a2b_addends(self, x: RingArray) -> tuple[RingArray, RingArray, bool]:
        # edaBit: r shared arithmetically and as bits; x = (x - r) + r with x - r opened.
        pending = self._provider().get("edabit", [x.shape[1:]])
        (r,) = pending.random
        (c,) = self._open_all([x - r[None]])
        (r_bits,) = pending.derived()
        return c, r_bits[None], True

    @ring_op
    def b2a_bit(self, x: RingArray) -> RingArray:
        # daBit: a random bit b both XOR- and additively shared; open c = x ^ b, x = c + b - 2cb.
        # The masked bits travel packed, 64 to a word (one bit per element instead of a word).
        pending = self._provider().get("dabit", [x.shape[1:]])
        (b_bin,) = pending.random
        masked = ((x & np.uint64(1)) ^ b_bin[None]).reshape(1, -1)
        (packed,) = self.open_binary([pack_bits(masked)])
        c = unpack_bits(packed, masked.shape[1]).reshape(x.shape[1:])
        (b_arith,) = pending.derived()
        z = b_arith * (np.uint64(1) - np.uint64(2) * c)
        if self.me == 0:
            z += c
        return z[None]
