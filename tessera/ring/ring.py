"""Arithmetic in Z_2^64: numpy uint64 arrays, where wrap-around is free.

Signed values use two's complement: ``x`` in ``[-2^63, 2^63)`` is stored as ``x mod 2^64``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np
import numpy.typing as npt

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["RING_BITS", "RING_DTYPE", "RingArray", "SignedArray", "as_ring", "to_signed", "arith_shift", "msb", "const",
           "ring_op", "pack_bits", "unpack_bits", "matmul"]

RING_BITS = 64
RING_DTYPE = np.dtype(np.uint64)

#: Elements of Z_2^64 (and share arrays of them; XOR shares are 64-bit words of the same type).
RingArray = npt.NDArray[np.uint64]
#: Ring elements read as signed two's-complement integers.
SignedArray = npt.NDArray[np.int64]


def const(value: int) -> np.uint64:
    """A ring constant from any Python int (reduced mod 2^64)."""
    return np.uint64(value % (1 << RING_BITS))


def as_ring(x: npt.ArrayLike) -> RingArray:
    """View or convert an integer array as ring elements (two's complement for negatives)."""
    a = np.asarray(x)
    if a.dtype == RING_DTYPE:
        return a.view(np.uint64)
    if a.dtype == np.int64:
        return a.view(np.uint64)
    if a.dtype.kind in "iub":
        return a.astype(np.int64).view(np.uint64)
    raise TypeError(f"cannot view {a.dtype} as ring elements")


def to_signed(x: npt.ArrayLike) -> SignedArray:
    """Ring elements as signed int64 (two's complement)."""
    return np.asarray(x, dtype=np.uint64).view(np.int64)


def arith_shift(x: npt.ArrayLike, bits: int) -> RingArray:
    """Arithmetic right shift of ring elements read as signed (floor division by 2^bits)."""
    return (to_signed(x) >> np.int64(bits)).view(np.uint64)


def msb(x: npt.ArrayLike) -> RingArray:
    """The top bit of each ring element, as uint64 0/1."""
    return np.asarray(x, dtype=np.uint64) >> np.uint64(RING_BITS - 1)


def pack_bits(bits: RingArray) -> RingArray:
    """The lowest bit of every word of ``(..., n)``, packed 64 to a word: ``(..., ceil(n / 64))``
    (element ``e`` at bit ``e % 64`` of word ``e // 64``). Linear over XOR, so it packs XOR
    shares of bits into XOR shares of the packed words."""
    lead, n = bits.shape[:-1], bits.shape[-1]
    pad = (-n) % 64
    low = (np.asarray(bits) & np.uint64(1)).astype(np.uint8)
    if pad:
        low = np.concatenate([low, np.zeros((*lead, pad), dtype=np.uint8)], axis=-1)
    return np.ascontiguousarray(np.packbits(low, axis=-1, bitorder="little")).view(np.uint64)


def unpack_bits(words: RingArray, n: int) -> RingArray:
    """Inverse of :func:`pack_bits`: ``(..., words)`` to ``(..., n)`` words of 0 or 1."""
    as_bytes = np.ascontiguousarray(words, dtype=np.uint64).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n].astype(np.uint64)


_EINSUM = {(2, 2): "ik,kj->ij", (2, 1): "ik,k->i", (1, 2): "k,kj->j", (1, 1): "k,k->"}
_LONG = 4096  # contractions at least this long take the layout-aware paths below
_BLOCK = 4096


def matmul(a: RingArray, b: RingArray) -> RingArray:
    """``a @ b`` in Z_2^64 (numpy ``matmul`` semantics).

    numpy has no integer BLAS and its uint64 ``matmul`` runs a naive strided loop (0.3-0.5 s
    for an 11 x 10^5 by 10^5 x 12 product, logistic regression's gradient and Hessian);
    ``einsum``'s sum-of-products loops compute the same wrapped sums about 10x faster. Its
    inner loop runs over the columns of ``b``, so for a long contraction into few columns
    (``66 x 10^5`` by ``10^5 x 2``, the Hessian's sums) a column at a time is 3x faster, and
    for a handful of columns contiguous blocks of both operands 1.7x (:func:`_long_matmul`).
    Batched operands stay with ``matmul``. The sums wrap modulo 2^64 in any order: exact.
    """
    if np.ndim(a) == 2 and np.ndim(b) == 2 and a.shape[1] >= _LONG:
        fast = _long_matmul(a, b)
        if fast is not None:
            return fast
    spec = _EINSUM.get((np.ndim(a), np.ndim(b)))
    if spec is None:
        prod: RingArray = np.matmul(a, b)
        return prod
    out: RingArray = np.asarray(np.einsum(spec, a, b), dtype=np.uint64)
    return out


def _long_matmul(a: RingArray, b: RingArray) -> RingArray | None:
    """``a @ b`` for a long contraction (``a`` is ``m x K``, ``b`` ``K x p``), or None where
    plain ``einsum`` is as fast (many columns, or a single row)."""
    m, k = a.shape
    p = b.shape[1]
    out = np.empty((m, p), dtype=np.uint64)
    if p <= 2:  # a column at a time, reading a along its contiguous axis
        for j in range(p):
            col = np.ascontiguousarray(b[:, j])
            if a.strides[0] <= a.strides[1]:
                np.einsum("ki,k->i", a.T, col, out=out[:, j])
            else:
                np.einsum("ik,k->i", a, col, out=out[:, j])
        return out
    if p > 16 or m < 4:
        return None
    out[...] = 0
    for s in range(0, k, _BLOCK):  # dot products of contiguous rows, a block of K at a time
        blk_a = np.ascontiguousarray(a[:, s : s + _BLOCK])
        blk_b = np.ascontiguousarray(b[s : s + _BLOCK].T)
        out += np.einsum("ik,jk->ij", blk_a, blk_b)
    return out


def ring_op(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with numpy's overflow warnings off: wrap-around is the ring's arithmetic.

    (numpy warns about overflow only for 0-d results; arrays wrap silently.)
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with np.errstate(over="ignore"):
            return fn(*args, **kwargs)

    return wrapper
