"""Arithmetic in Z_2^64: numpy uint64 arrays, where wrap-around is free.

Signed values use two's complement: ``x`` in ``[-2^63, 2^63)`` is stored as ``x mod 2^64``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import numpy as np

P = ParamSpec("P")
R = TypeVar("R")

__all__ = ["RING_BITS", "RING_DTYPE", "as_ring", "to_signed", "arith_shift", "msb", "const", "ring_op"]

RING_BITS = 64
RING_DTYPE = np.dtype(np.uint64)


def const(value: int) -> np.uint64:
    """A ring constant from any Python int (reduced mod 2^64)."""
    return np.uint64(value % (1 << RING_BITS))


def as_ring(x: np.ndarray) -> np.ndarray:
    """View or convert an integer array as ring elements (two's complement for negatives)."""
    x = np.asarray(x)
    if x.dtype == RING_DTYPE:
        return x
    if x.dtype == np.int64:
        return x.view(RING_DTYPE)
    if x.dtype.kind in "iub":
        return x.astype(np.int64).view(RING_DTYPE)
    raise TypeError(f"cannot view {x.dtype} as ring elements")


def to_signed(x: np.ndarray) -> np.ndarray:
    """Ring elements as signed int64 (two's complement)."""
    return np.asarray(x, dtype=RING_DTYPE).view(np.int64)


def arith_shift(x: np.ndarray, bits: int) -> np.ndarray:
    """Arithmetic right shift of ring elements read as signed (floor division by 2^bits)."""
    return (to_signed(x) >> np.int64(bits)).view(RING_DTYPE)


def msb(x: np.ndarray) -> np.ndarray:
    """The top bit of each ring element, as uint64 0/1."""
    return np.asarray(x, dtype=RING_DTYPE) >> np.uint64(RING_BITS - 1)


def ring_op(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with numpy's overflow warnings off: wrap-around is the ring's arithmetic.

    (numpy warns about overflow only for 0-d results; arrays wrap silently.)
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with np.errstate(over="ignore"):
            return fn(*args, **kwargs)

    return wrapper
