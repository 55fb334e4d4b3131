"""Binary circuits over XOR-shared 64-bit words: conversion from arithmetic shares, sign bits.

Works on share arrays and any :class:`~tessera.protocols.base.Protocol`. The adder is a
Kogge-Stone parallel-prefix adder on packed words (Kogge & Stone 1973; as used for A2B in
ABY, Demmler et al. 2015): 6 rounds of AND gates for 64 bits, two ANDs per level batched into
one round. ``G`` and ``P`` stay disjoint, so OR is XOR and costs nothing.
"""

from __future__ import annotations

import numpy as np

from tessera.protocols.base import Protocol
from tessera.ring.ring import RingArray, ring_op

__all__ = ["a2b", "ltz", "bits_of", "BIT_ROUNDS"]

_SHIFTS = (1, 2, 4, 8, 16, 32)
#: Rounds of the adder (one per prefix level).
BIT_ROUNDS = len(_SHIFTS)


@ring_op
def _and_public(x: RingArray, p: RingArray) -> RingArray:
    return x & np.asarray(p, dtype=np.uint64)[None]


@ring_op
def a2b(proto: Protocol, x: RingArray) -> RingArray:
    """Binary shares of the arithmetically shared ``x`` (same value, as a 64-bit word).

    Rounds: the protocol's conversion front end (1) plus 6 for the adder. Reveals nothing.
    """
    a, b, a_public = proto.a2b_addends(x)
    if a_public:
        p = proto.xor_public(b, a)
        g = _and_public(b, a)
    else:
        p = a ^ b
        g = proto.and_(a, b)
    p0 = p
    for i, s in enumerate(_SHIFTS):
        sh = np.uint64(s)
        if i == len(_SHIFTS) - 1:
            g = g ^ proto.and_(p, g << sh)
        else:
            both = proto.and_(np.stack([p, p], axis=1), np.stack([g << sh, p << sh], axis=1))
            g = g ^ both[:, 0]
            p = both[:, 1]
    # sum bit i = a_i ^ b_i ^ carry into i, and the carry into i is G at bit i-1
    return p0 ^ (g << np.uint64(1))


@ring_op
def ltz(proto: Protocol, x: RingArray) -> RingArray:
    """Arithmetic shares of ``[x < 0]`` (0 or 1, no fractional bits) for signed ``x``.

    Exact for every ring element. Rounds: a2b (7) + the protocol's bit conversion (1 for
    semi2k, 2 for rep3). Reveals nothing.
    """
    return proto.b2a_bit(a2b(proto, x) >> np.uint64(63))


@ring_op
def bits_of(proto: Protocol, x: RingArray, positions: list[int]) -> RingArray:
    """Arithmetic shares of the chosen bits of ``x``, stacked on a new last axis.

    One a2b and one batched bit conversion, whatever the number of positions.
    """
    words = a2b(proto, x)
    stacked = np.stack([(words >> np.uint64(i)) & np.uint64(1) for i in positions], axis=-1)
    return proto.b2a_bit(stacked)
