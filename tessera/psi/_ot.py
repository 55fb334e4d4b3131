"""Oblivious transfer for OPRF PSI: base OTs over the PSI group, and KKRT-style OT extension.

**Base OTs** (Chou–Orlandi 2015, "The simplest protocol for oblivious transfer", in the
prime-order group of ``_groups.py``; semi-honest use). The OT sender draws ``a`` and sends
``A = aG``. For OT ``i`` the receiver with choice bit ``c_i`` draws ``b_i`` and sends
``B_i = b_i G + c_i A``. The sender's keys are ``k_i^0 = H(i, A, B_i, a B_i)`` and
``k_i^1 = H(i, A, B_i, a (B_i - A))``; the receiver's is ``H(i, A, B_i, b_i A) = k_i^{c_i}``.
``B_i`` is uniform whatever ``c_i`` (it hides the choice perfectly); the other key needs
``ab_i G`` from ``aG`` and ``b_i G``, i.e. CDH. ``H`` is SHA-256 with the job's salt and a
domain tag, truncated to a 16-byte PRG seed. Invalid points and the identity are refused (the
group's checks).

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

import hashlib
import itertools
from collections.abc import Callable, Iterator

import numpy as np

from tessera.psi._aes import PrgStreams, transpose
from tessera.psi._groups import POINT_BYTES, Engine

__all__ = ["WIDTH", "BaseOtSender", "BaseOtReceiver", "extend_receiver", "receiver_rows", "extend_sender", "choice_mask"]

WIDTH = 512  # code width k: bits per row, number of base OTs
SEED_BYTES = 16



def _seed(salt: bytes, i: int, a_point: bytes, b_point: bytes, shared: bytes) -> bytes:
    h = hashlib.sha256(b"tessera/psi/oprf/v1/base-ot\x00" + salt)
    h.update(i.to_bytes(4, "little") + a_point + b_point + shared)
    return h.digest()[:SEED_BYTES]


class BaseOtSender:
    """The sender of ``count`` base OTs: first :attr:`message` (``A``), then :meth:`keys`."""

    def __init__(self, engine: Engine, salt: bytes, count: int = WIDTH) -> None:
        self._engine = engine
        self._salt = salt
        self.count = count
        self._a = engine.group.random_scalar()
        self.message = engine.base_mul(self._a)

    def keys(self, b_points: bytes | bytearray | memoryview) -> tuple[list[bytes], list[bytes]]:
        """The seed pairs ``(k^0, k^1)`` from the receiver's ``B_i`` (:class:`BadPoints` if invalid)."""
        group = self._engine.group
        ab = self._engine.mul(self._a, b_points)
        aa = self._engine.mul_one(self._a, self.message)
        a_pt, raw = self.message, bytes(b_points)
        k0, k1 = [], []
        for i in range(self.count):
            b_i, p = raw[POINT_BYTES * i : POINT_BYTES * (i + 1)], bytes(ab[POINT_BYTES * i : POINT_BYTES * (i + 1)])
            k0.append(_seed(self._salt, i, a_pt, b_i, p))
            k1.append(_seed(self._salt, i, a_pt, b_i, group.sub(p, aa)))
        return k0, k1


class BaseOtReceiver:
    """The receiver of base OTs with choice bits ``choices``: :meth:`message` then :meth:`keys`."""

    def __init__(self, engine: Engine, salt: bytes, choices: np.ndarray) -> None:
        self._engine = engine
        self._salt = salt
        self.choices = np.asarray(choices, dtype=np.uint8)
        self._b = [engine.group.random_scalar() for _ in range(len(self.choices))]
        self._a_point = b""
        self._b_points = b""

    def message(self, a_point: bytes) -> bytes:
        """``B_i = b_i G + c_i A`` for every OT, concatenated (:class:`BadPoints` if ``A`` is invalid)."""
        group = self._engine.group
        self._engine.mul_one(group.random_scalar(), a_point)  # validates A (not the identity)
        out = []
        for b, c in zip(self._b, self.choices):
            p = self._engine.base_mul(b)
            out.append(group.add(p, a_point) if c else p)
        self._a_point = a_point
        self._b_points = b"".join(out)
        return self._b_points

    def keys(self) -> list[bytes]:
        """The chosen seeds ``k_i^{c_i} = H(i, A, B_i, b_i A)``."""
        out = []
        for i, b in enumerate(self._b):
            shared = self._engine.mul_one(b, self._a_point)
            out.append(_seed(self._salt, i, self._a_point, self._b_points[POINT_BYTES * i : POINT_BYTES * (i + 1)], shared))
        return out


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
