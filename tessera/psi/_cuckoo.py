"""Cuckoo hashing for OPRF PSI: three hash functions, no stash, built with vectorised insertion.

**Parameters.** ``n`` items go into ``m = bins(n)`` bins: ``1.27 n`` (Pinkas–Schneider–
Tkachenko–Yanai, Eurocrypt 2019, estimate that three hash functions with ``1.27 n`` bins and no
stash fail with probability about ``2^-40``, by extrapolating their experiments), plus 256 bins
of headroom (small tables fail more often at the same load; the headroom makes tables of a few
hundred items lightly loaded and costs nothing at 2^20 items), rounded up to a multiple of 128.
``m`` depends only on ``n``, which is public anyway.

**Hash functions.** An item is a 128-bit digest ``v`` (salted ``blake2s`` of the identifier,
``_oprf.py``). Its candidate bins are ``h_i(v) = floor(m w_i / 2^64)`` for ``i = 0, 1, 2`` where
``w_0..w_3`` are the 64-bit words of ``AES_K(v)`` and ``AES_K(v XOR 1)`` under a key ``K`` derived
from the job's salt and the attempt number (computed from the top 53 bits in float64: bins are
uniform up to a relative bias below ``m / 2^53``).

**Insertion** is the parallel form of random-walk cuckoo hashing (as on GPUs, Alcantara et al.
2009): every unplaced item writes itself into its current candidate bin at once; one writer per
bin wins; losers and the items they displaced move to another of their candidate bins, chosen at
random; repeat. The loop runs per *round*, not per item; it ends when every item is placed, or
fails after :data:`MAX_ROUNDS` rounds. A failure is what the ``2^-40`` above bounds; the caller
then retries with the next attempt's hash functions (``_oprf.py``: at most :data:`ATTEMPTS`).
"""

from __future__ import annotations

import os

import numpy as np

from tessera.ot.aes import FixedKeyAes

__all__ = ["bins", "positions", "insert", "MAX_ROUNDS", "ATTEMPTS", "HASHES"]

HASHES = 3
MAX_ROUNDS = 2000
ATTEMPTS = 3


def bins(n: int) -> int:
    """The number of bins for ``n`` items (a multiple of 128)."""
    m = (127 * n + 99) // 100 + 256
    return -(-m // 128) * 128


def positions(aes: FixedKeyAes, digests: np.ndarray, m: int) -> np.ndarray:
    """The three candidate bins of every item: ``(N, 3)`` int64 from digests ``(N, 2)`` uint64."""
    both = np.empty((len(digests), 2, 2), dtype=np.uint64)
    both[:, 0] = digests
    both[:, 1] = digests
    both[:, 1, 0] ^= np.uint64(1)
    w = aes.permute(both).reshape(len(digests), 4)[:, :HASHES]
    # floor(m * w / 2^64) on the top 53 bits, in float64: no division, bias below m / 2^53
    f = (w >> np.uint64(11)).astype(np.float64)
    f *= m / 2.0**53
    np.minimum(f, m - 1, out=f)  # rounding can reach m itself
    return f.astype(np.int64)


def insert(pos: np.ndarray, m: int, max_rounds: int = MAX_ROUNDS) -> tuple[np.ndarray, np.ndarray] | None:
    """Place every item in one of its candidate bins ``pos`` (``(N, 3)``), at most one per bin.

    Returns ``(table, which)``: ``table[b]`` is the item in bin ``b`` (``-1`` if empty) and
    ``which[x]`` the hash function (0..2) that placed item ``x``; ``None`` if insertion failed.
    """
    n = len(pos)
    table = np.full(m, -1, dtype=np.int64)
    which = np.zeros(n, dtype=np.int64)
    pending = np.arange(n, dtype=np.int64)
    rng = np.random.default_rng(np.frombuffer(os.urandom(16), dtype=np.uint64))
    for _ in range(max_rounds):
        if len(pending) == 0:
            return table, which
        target = pos[pending, which[pending]]
        occupant = table[target]
        table[target] = pending  # with repeated targets one writer wins
        won = table[target] == pending
        displaced = occupant[won & (occupant >= 0)]  # one winner per bin: each occupant once
        moving = np.concatenate([pending[~won], displaced])
        which[moving] = (which[moving] + rng.integers(1, HASHES, size=len(moving))) % HASHES
        pending = moving
    return None
