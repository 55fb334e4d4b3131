"""Additive shares over Z_2^64 and XOR shares over 64-bit words."""

from __future__ import annotations

from functools import reduce

import numpy as np

from tessera.prg import PRG

__all__ = ["additive_split", "additive_join", "xor_split", "xor_join"]


def additive_split(value: np.ndarray, n: int, prg: PRG) -> list[np.ndarray]:
    """``n`` uniformly random ring arrays that sum to ``value`` mod 2^64."""
    shares = [prg.ring(value.shape) for _ in range(n - 1)]
    last = np.asarray(value, dtype=np.uint64).copy()
    for s in shares:
        last -= s
    return shares + [last]


def additive_join(shares: list[np.ndarray]) -> np.ndarray:
    """The sum mod 2^64 of additive shares."""
    return reduce(np.add, shares)


def xor_split(value: np.ndarray, n: int, prg: PRG) -> list[np.ndarray]:
    """``n`` uniformly random 64-bit words whose XOR is ``value``."""
    shares = [prg.ring(value.shape) for _ in range(n - 1)]
    last = np.asarray(value, dtype=np.uint64).copy()
    for s in shares:
        last ^= s
    return shares + [last]


def xor_join(shares: list[np.ndarray]) -> np.ndarray:
    """The XOR of binary shares."""
    return reduce(np.bitwise_xor, shares)
