"""Binary circuits over XOR-shared 64-bit words: conversion from arithmetic shares, sign bits.

Works on share arrays and any :class:`~tessera.protocols.base.Protocol`. The adder is a
Kogge-Stone parallel-prefix adder on packed words (Kogge & Stone 1973; as used for A2B in
ABY, Demmler et al. 2015): 6 rounds of AND gates for 64 bits, two ANDs per level batched into
one round. ``G`` and ``P`` stay disjoint, so OR is XOR and costs nothing.

Comparisons and bit extraction need only a few sum bits, so they run a *bit-sliced* adder
instead (:func:`ltz`, :func:`bits_of`): the addends are transposed so that one row packs bit
``j`` of every element, 64 elements a word (linear over XOR, so local), and the same
Kogge-Stone prefix network is pruned backwards to the gates the wanted carries depend on. An
AND gate then costs one bit per element instead of a whole word: the sign of a 64-bit value
takes 182 AND bits (23 bytes) per element in place of 12 words (96 bytes), in the same rounds.
"""

from __future__ import annotations

import numpy as np

from tessera.protocols.base import Protocol
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


_T8 = ((7, np.uint64(0x00AA00AA00AA00AA)), (14, np.uint64(0x0000CCCC0000CCCC)), (28, np.uint64(0x00000000F0F0F0F0)))


def _transpose8(x: RingArray) -> RingArray:
    """Transpose the 8 x 8 bit matrix in every word (bit ``8r + c`` to bit ``8c + r``; Hacker's
    Delight 7-3): three masked swaps, each linear over XOR."""
    for shift, mask in _T8:
        sh = np.uint64(shift)
        t = (x ^ (x >> sh)) & mask
        x = x ^ t ^ (t << sh)
    return x


@ring_op
def _slice(words: RingArray, rows: int) -> RingArray:
    """Bit-sliced layout: ``(..., n)`` words to ``(..., rows, ceil(n / 64))`` words whose row ``j``
    packs bit ``j`` of every element (element ``e`` at bit ``e % 64`` of word ``e // 64``; padding
    elements are 0). Linear over XOR: XOR shares map to XOR shares. Byte ``k`` of 8 consecutive
    elements forms one word whose 8 x 8 bit transpose holds bits ``8k..8k+7`` of the 8 elements."""
    lead, n = words.shape[:-1], words.shape[-1]
    pad = (-n) % 64
    if pad:
        words = np.concatenate([words, np.zeros((*lead, pad), dtype=np.uint64)], axis=-1)
    m = (n + pad) // 8
    nbytes = (rows + 7) // 8
    by = np.ascontiguousarray(words, dtype=np.uint64).view(np.uint8).reshape(*lead, m, 8, 8)[..., :nbytes]
    # (..., group, element, byte k) -> (..., byte k, group, element): one word per (k, group)
    grouped = np.ascontiguousarray(np.moveaxis(by, -1, -3)).view(np.uint64)[..., 0]  # (..., nbytes, m)
    out = _transpose8(grouped).view(np.uint8).reshape(*lead, nbytes, m, 8)  # byte i: bit 8k+i
    rows_bytes = np.ascontiguousarray(np.moveaxis(out, -1, -2)).reshape(*lead, nbytes * 8, m)
    return rows_bytes.view(np.uint64)[..., :rows, :]


def _unslice(rows: RingArray, n: int) -> RingArray:
    """Inverse of :func:`_slice` for whole rows: ``(..., words)`` to ``(..., n)`` 0/1 words."""
    as_bytes = np.ascontiguousarray(rows, dtype=np.uint64).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n].astype(np.uint64)


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
    a, b, a_public = proto.a2b_addends(x)
    rows = max(positions) + 1
    sa, sb = _slice(a, rows), _slice(b, rows)
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
    sign = _unslice(sum_bits(proto, flat, [63])[:, 0], n)
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
    bits = _unslice(sum_bits(proto, flat, positions), n)  # (components, k, n)
    return proto.b2a_bit(np.moveaxis(bits, 1, -1).reshape(x.shape[0], *lead, len(positions)))
