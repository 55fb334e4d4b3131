"""Local steps on arrays of encodings: random permutations, gathering, matching.

Nothing here communicates. Arrays of points are flat byte buffers of 32-byte encodings.
"""

from __future__ import annotations

import os

import numpy as np

from tessera.ot.groups import POINT_BYTES

__all__ = ["random_permutation", "take", "drop", "match", "Duplicates", "as_rows"]


class Duplicates(Exception):
    """Internal: a list of encodings holds the same point twice (``side`` is 0 or 1)."""

    def __init__(self, side: int) -> None:
        super().__init__(f"side {side} holds a repeated encoding")
        self.side = side


def random_permutation(n: int) -> np.ndarray:
    """A uniformly random permutation of ``range(n)`` from the operating system's CSPRNG.

    Sorting independent uniform 64-bit keys gives a uniform permutation when the keys are
    distinct; on a tie (probability below n^2 / 2^65) the keys are drawn again.
    """
    while True:
        keys = np.frombuffer(os.urandom(8 * n), dtype=np.uint64)
        perm = np.argsort(keys, kind="stable")
        if n < 2 or not np.any(keys[perm[1:]] == keys[perm[:-1]]):
            return perm.astype(np.int64)


def as_rows(points: bytes | bytearray | memoryview) -> np.ndarray:
    """A read-only ``(n, 32)`` uint8 view of a buffer of encodings."""
    return np.frombuffer(points, dtype=np.uint8).reshape(-1, POINT_BYTES)


def take(points: bytes | bytearray | memoryview, index: np.ndarray) -> bytes:
    """The encodings at ``index``, in that order: ``out[i] = points[index[i]]``."""
    return as_rows(points)[np.asarray(index, dtype=np.int64)].tobytes()


def drop(points: bytes | bytearray | memoryview, positions: np.ndarray) -> bytes:
    """``points`` without the encodings at ``positions``, order kept."""
    keep = np.ones(len(points) // POINT_BYTES, dtype=bool)
    keep[np.asarray(positions, dtype=np.int64)] = False
    return as_rows(points)[keep].tobytes()


def match(a: bytes | bytearray | memoryview, b: bytes | bytearray | memoryview) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``(ia, ib)`` with ``a[ia[k]] == b[ib[k]]``, in increasing order of the encoding.

    The order of the common encodings is the *common order* every party can reproduce: it
    depends only on the encodings (pseudorandom), never on any party's row order. Raises
    :class:`Duplicates` if either side repeats an encoding.
    """
    na = len(a) // POINT_BYTES
    both = np.concatenate([as_rows(a), as_rows(b)]).view(f"S{POINT_BYTES}").ravel()
    order = np.argsort(both, kind="stable")
    s = both[order]
    eq = np.flatnonzero(s[1:] == s[:-1])
    first, second = order[eq], order[eq + 1]
    side1, side2 = first >= na, second >= na
    same = side1 == side2
    if np.any(same):
        raise Duplicates(int(side1[same][0]))
    # stable sort: within an equal pair the element of ``a`` comes first
    return first.astype(np.int64), (second - na).astype(np.int64)
