"""OT extension with a pseudorandom code (KKRT), as OPRF PSI uses it.

**OT extension** (Ishai–Kilian–Nissim–Petrank 2003 with the pseudorandom code of
Kolesnikov–Kumaresan–Rosulek–Trieu 2016, width ``k = 512``). Roles are reversed with respect to
the base OTs: the *extension receiver* (the PSI receiver) was the base-OT sender with seed
pairs ``(k_i^0, k_i^1)``; the *extension sender* (the PSI sender) chose the secret bits ``s``.
The extension receiver holds one 512-bit code row ``C_j`` per bin ``j`` (a matrix with ``m``
rows) and sends, column by column, ``u^i = G(k_i^0) XOR G(k_i^1) XOR c^i`` (``c^i`` is column
``i`` of the code matrix; ``G`` is AES-CTR). It keeps ``T`` with columns ``t^i = G(k_i^0)``.
The sender computes ``q^i = G(k_i^{s_i}) XOR s_i u^i = t^i XOR s_i c^i``, so that row by row

    ``q_j = t_j XOR (C_j AND s)``.

``u^i`` is masked by ``G(k_i^{1-s_i})`` which the sender never learns, so it sees nothing of the
code rows; the receiver never learns ``s``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import numpy as np

from tessera.ot.aes import PrgStreams, transpose
from tessera.ot.base import WIDTH

__all__ = ["WIDTH", "extend_receiver", "receiver_rows", "extend_sender", "choice_mask", "split", "BIN_CHUNK"]


def choice_mask(choices: np.ndarray) -> np.ndarray:
    """The sender's bits ``s`` as a 64-byte row mask (bit ``i`` of the row is ``s_i``)."""
    return np.packbits(np.asarray(choices, dtype=np.uint8), bitorder="little")


BIN_CHUNK = 1 << 16  # rows (bins) per step of the extension: 8 KiB of every column
Mapper = Callable[[Callable[[tuple[int, int]], None], list[tuple[int, int]]], object]


def _serial(fn: Callable[[tuple[int, int]], None], parts: list[tuple[int, int]]) -> None:
    for part in parts:
        fn(part)


def split(m: int, parts: int) -> list[tuple[int, int]]:
    """``[0, m)`` cut into up to ``parts`` ranges whose bounds are multiples of :data:`BIN_CHUNK`."""
    steps = -(-m // BIN_CHUNK)
    k = max(1, min(parts, steps))
    edges = [min(m, BIN_CHUNK * (steps * i // k)) for i in range(k + 1)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def extend_receiver(
    k0: list[bytes], k1: list[bytes], code: np.ndarray | Callable[[int, int], np.ndarray], m: int | None = None,
    u: np.ndarray | None = None, mapper: Mapper = _serial, parts: int = 1,
) -> np.ndarray:
    """The extension receiver's message ``u``: ``(512, m/8)`` uint8, one column per row.

    ``code`` is the ``(m, 64)`` uint8 matrix of code rows, or a function giving rows
    ``j0..j1`` of it on demand (then ``m`` says how many; a multiple of 64). ``u`` is written in
    place if given (e.g. into a message buffer). Works in steps of :data:`BIN_CHUNK` rows so every
    temporary stays in cache; ``parts`` ranges of rows go to ``mapper`` (e.g. a thread pool's
    map). The receiver's own rows ``t_j`` come from :func:`receiver_rows`, which it can run
    after sending ``u``.
    """
    if not callable(code):
        matrix = code
        m = len(matrix)

        def code(j0: int, j1: int) -> np.ndarray:
            return matrix[j0:j1]

    assert m is not None
    out = np.empty((WIDTH, m // 8), dtype=np.uint8) if u is None else u
    code_fn = code

    def part(bounds: tuple[int, int]) -> None:
        lo, hi = bounds
        g0s, g1s = PrgStreams(k0, lo // 8), PrgStreams(k1, lo // 8)
        for j0 in range(lo, hi, BIN_CHUNK):
            j1 = min(hi, j0 + BIN_CHUNK)
            c = transpose(np.ascontiguousarray(code_fn(j0, j1)))
            c ^= g0s.next((j1 - j0) // 8)
            c ^= g1s.next((j1 - j0) // 8)
            out[:, j0 // 8 : j1 // 8] = c

    mapper(part, split(m, parts))
    return out


def receiver_rows(k0: list[bytes], lo: int, hi: int) -> Iterator[tuple[int, np.ndarray]]:
    """The receiver's rows ``t_j`` for ``lo <= j < hi`` (columns ``G(k_i^0)`` transposed), as
    ``(j0, rows j0..)`` chunks of :data:`BIN_CHUNK` rows; ``lo`` a multiple of 128."""
    g0s = PrgStreams(k0, lo // 8)
    for j0 in range(lo, hi, BIN_CHUNK):
        j1 = min(hi, j0 + BIN_CHUNK)
        yield j0, transpose(g0s.next((j1 - j0) // 8))


def extend_sender(
    seeds: list[bytes], choices: np.ndarray, u: np.ndarray, mapper: Mapper = _serial, parts: int = 1
) -> np.ndarray:
    """The extension sender's step: ``q_rows`` (``(m, 64)`` uint8) with ``q_j = t_j XOR (C_j AND s)``."""
    nb = u.shape[1]
    q_rows = np.empty((8 * nb, WIDTH // 8), dtype=np.uint8)
    ones = np.flatnonzero(np.asarray(choices) != 0)

    def part(bounds: tuple[int, int]) -> None:
        lo, hi = bounds
        gs = PrgStreams(seeds, lo // 8)
        for j0 in range(lo, hi, BIN_CHUNK):
            j1 = min(hi, j0 + BIN_CHUNK)
            g = gs.next((j1 - j0) // 8)
            g[ones] ^= u[ones, j0 // 8 : j1 // 8]
            transpose(g, out=q_rows[j0:j1])

    mapper(part, split(8 * nb, parts))
    return q_rows
