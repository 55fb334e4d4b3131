"""Binary circuits over XOR-shared 64-bit words: conversion from arithmetic shares, sign bits.

Works on share arrays and any :class:`~tessera.protocols.base.Protocol`. The adder is a
Kogge-Stone parallel-prefix adder on packed words (Kogge & Stone 1973; as used for A2B in
ABY, Demmler et al. 2015): 6 rounds of AND gates for 64 bits, two ANDs per level batched into
one round. ``G`` and ``P`` stay disjoint, so OR is XOR and costs nothing.

Comparisons and bit extraction need only a few sum bits, so they run a *bit-sliced* adder
instead (:func:`ltz`, :func:`bits_of`): the addends are transposed so that one row packs bit
``j`` of every element, 64 elements a word (:mod:`tessera.ring.bitslice`; linear over XOR, so
local — and the protocol's :meth:`~tessera.protocols.base.Protocol.a2b_sliced` lets a party that
knows an addend in the clear slice it once before sharing it), and the same
Kogge-Stone prefix network is pruned backwards to the gates the wanted carries depend on. An
AND gate then costs one bit per element instead of a whole word: the sign of a 64-bit value
takes 182 AND bits (23 bytes) per element in place of 12 words (96 bytes), in the same rounds.
"""

from __future__ import annotations

import numpy as np

from tessera.protocols.base import Protocol
from tessera.ring.bitslice import unslice_bits
from tessera.ring.ring import RingArray, ring_op

__all__ = ["a2b", "ltz", "bits_of", "sum_bits", "BIT_ROUNDS"]

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


def _carry_plan(want: list[int]) -> tuple[set[int], set[int], list[tuple[int, list[int], list[int]]]]:
    """The Kogge-Stone prefix network pruned to the carries into the positions ``want`` (all >= 1).

    Returns the generate and propagate rows the first level needs and, per level ``(shift,
    G rows, P rows)``, the gates to compute: ``G_i ^= P_i & G_(i-s)`` and ``P_i &= P_(i-s)``.
    The carry into ``j`` is the final ``G_(j-1)`` (the group ``[0, j-1]``)."""
    top = max(want) - 1
    shifts = []
    s = 1
    while s <= top:
        shifts.append(s)
        s *= 2
    need_g: set[int] = {j - 1 for j in want}
    need_p: set[int] = set()
    plan = []
    for s in reversed(shifts):
        g_gates = sorted(i for i in need_g if i >= s)
        p_gates = sorted(i for i in need_p if i >= s)
        plan.append((s, g_gates, p_gates))
        need_g = need_g | {i - s for i in g_gates}
        need_p = need_p | set(g_gates) | {i - s for i in p_gates}
    plan.reverse()
    return need_g, need_p, plan


def sum_bits(proto: Protocol, x: RingArray, positions: list[int]) -> RingArray:
    """Binary shares of the chosen bits of ``x`` (flat: ``(components, n)``), bit-sliced:
    ``(components, len(positions), ceil(n / 64))``, row ``k`` holding bit ``positions[k]`` of
    every element. Only the carries into those bits are computed (see :func:`_carry_plan`).
    Rounds: the protocol's conversion front end, one for the generate bits and one per prefix
    level (``ceil(log2(max(positions)))``). Reveals nothing."""
    sa, sb, a_public = proto.a2b_sliced(x, max(positions) + 1)
    p = proto.xor_public(sb, sa) if a_public else sa ^ sb
    want = sorted({j for j in positions if j > 0})
    carries: dict[int, RingArray] = {}
    if want:
        need_g, need_p, plan = _carry_plan(want)
        idx = sorted(need_g)
        g_rows = _and_public(sb[:, idx], sa[idx]) if a_public else proto.and_(sa[:, idx], sb[:, idx])
        gen = {i: g_rows[:, k] for k, i in enumerate(idx)}
        prop = {i: p[:, i] for i in need_p}
        for s, g_gates, p_gates in plan:
            if not g_gates and not p_gates:
                continue
            xs = np.stack([prop[i] for i in g_gates] + [prop[i] for i in p_gates], axis=1)
            ys = np.stack([gen[i - s] for i in g_gates] + [prop[i - s] for i in p_gates], axis=1)
            prod = proto.and_(xs, ys)
            for k, i in enumerate(g_gates):
                gen[i] = gen[i] ^ prod[:, k]
            for k, i in enumerate(p_gates):
                prop[i] = prod[:, len(g_gates) + k]
        carries = {j: gen[j - 1] for j in want}
    return np.stack([p[:, j] ^ carries[j] if j else p[:, j] for j in positions], axis=1)


@ring_op
def ltz(proto: Protocol, x: RingArray) -> RingArray:
    """Arithmetic shares of ``[x < 0]`` (0 or 1, no fractional bits) for signed ``x``.

    Exact for every ring element: bit 63 of the bit-sliced sum (:func:`sum_bits`). Rounds: the
    conversion front end (1), 7 AND levels, the protocol's bit conversion (1 for semi2k, 2 for
    rep3). Reveals nothing.
    """
    flat = x.reshape(x.shape[0], -1)
    n = flat.shape[1]
    if n == 0:
        return np.zeros(x.shape, dtype=np.uint64)
    sign = unslice_bits(sum_bits(proto, flat, [63])[:, 0], n)
    return proto.b2a_bit(sign).reshape(x.shape)


@ring_op
def bits_of(proto: Protocol, x: RingArray, positions: list[int]) -> RingArray:
    """Arithmetic shares of the chosen bits of ``x``, stacked on a new last axis.

    One bit-sliced adder up to the highest position and one batched bit conversion, whatever
    the number of positions.
    """
    lead = x.shape[1:]
    flat = x.reshape(x.shape[0], -1)
    n = flat.shape[1]
    if n == 0:
        return np.zeros((*x.shape, len(positions)), dtype=np.uint64)
    bits = unslice_bits(sum_bits(proto, flat, positions), n)  # (components, k, n)
    return proto.b2a_bit(np.moveaxis(bits, 1, -1).reshape(x.shape[0], *lead, len(positions)))
