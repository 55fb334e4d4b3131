"""The bit-sliced layout of ring words: one row per bit position, 64 elements to a word.

``slice_bits`` turns ``(..., n)`` words into ``(..., rows, ceil(n / 64))`` words whose row ``j``
packs bit ``j`` of every element (element ``e`` at bit ``e % 64`` of word ``e // 64``; padding
elements are 0). The map is linear over XOR, so it turns XOR shares into XOR shares of the
sliced value, and a party can slice a value it knows before sharing it. Binary circuits on the
sliced layout (:mod:`tessera.mpc.circuits`) pay one bit per element for an AND gate.

The transpose works in blocks of :data:`BLOCK` elements so that its temporaries stay in cache
(the whole-array form was memory-bound, about 3x slower at 10^5 elements and more).
"""

from __future__ import annotations

import numpy as np

from tessera.ring.ring import RingArray

__all__ = ["slice_bits", "unslice_bits", "sliced_shape", "transpose8", "BLOCK"]

#: Elements transposed at a time (a multiple of 64): 512 KiB of input words.
BLOCK = 1 << 16

# Hacker's Delight 7-3: three masked swaps transpose the 8 x 8 bit matrix of a word (bit 8r + c
# to bit 8c + r)
_T8 = ((np.uint64(7), np.uint64(0x00AA00AA00AA00AA)), (np.uint64(14), np.uint64(0x0000CCCC0000CCCC)),
       (np.uint64(28), np.uint64(0x00000000F0F0F0F0)))


def sliced_shape(n: int, rows: int) -> tuple[int, int]:
    """The sliced shape of ``n`` elements' lowest ``rows`` bits."""
    return rows, -(-n // 64)


def transpose8(x: RingArray, t: RingArray) -> None:
    """In place: transpose the 8 x 8 bit matrix in every word of ``x`` (bit ``8r + c`` to bit
    ``8c + r``; ``t``: scratch of the same shape). Also the OT extension's bit-matrix transpose."""
    for shift, mask in _T8:
        np.right_shift(x, shift, out=t)
        t ^= x
        t &= mask
        x ^= t
        t <<= shift
        x ^= t


def slice_bits(words: RingArray, rows: int) -> RingArray:
    """The bit-sliced layout of the lowest ``rows`` bits of ``words`` (``(..., n)`` uint64):
    ``(..., rows, ceil(n / 64))``, row ``j`` packing bit ``j`` of every element."""
    if not 1 <= rows <= 64:
        raise ValueError(f"a word has 64 bits, not {rows}")
    lead, n = words.shape[:-1], words.shape[-1]
    if n == 0 or not words.size:
        return np.zeros((*lead, *sliced_shape(n, rows)), dtype=np.uint64)
    flat = np.ascontiguousarray(words, dtype=np.uint64).reshape(-1, n)
    width = sliced_shape(n, rows)[1]
    out = np.empty((flat.shape[0], rows, width), dtype=np.uint64)
    nbytes = (rows + 7) // 8
    scratch = np.empty(nbytes * BLOCK // 8, dtype=np.uint64)
    for k in range(flat.shape[0]):
        for start in range(0, n, BLOCK):
            block = flat[k, start : start + BLOCK]
            if block.size % 64:
                block = np.concatenate([block, np.zeros(64 - block.size % 64, dtype=np.uint64)])
            groups = block.size // 8
            # word (b, g): byte b of the 8 elements of group g, element e at byte e
            grid = np.empty((nbytes, groups), dtype=np.uint64)
            grid.view(np.uint8).reshape(nbytes, groups, 8)[...] = (
                block.view(np.uint8).reshape(groups, 8, 8)[:, :, :nbytes].transpose(2, 0, 1))
            transpose8(grid, scratch[: grid.size].reshape(grid.shape))  # byte i of word (b, g): bit 8b + i
            by_row = np.ascontiguousarray(grid.view(np.uint8).reshape(nbytes, groups, 8).transpose(0, 2, 1))
            by_row = by_row.reshape(nbytes * 8, groups)
            out[k, :, start // 64 : start // 64 + groups // 8] = by_row[:rows].view(np.uint64)
    return out.reshape(*lead, rows, width)


def unslice_bits(rows: RingArray, n: int) -> RingArray:
    """Inverse of :func:`slice_bits` for whole rows: ``(..., words)`` to ``(..., n)`` 0/1 words."""
    as_bytes = np.ascontiguousarray(rows, dtype=np.uint64).view(np.uint8)
    return np.unpackbits(as_bytes, axis=-1, bitorder="little")[..., :n].astype(np.uint64)
