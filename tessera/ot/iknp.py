"""IKNP OT extension (Ishai–Kilian–Nissim–Petrank 2003), semi-honest, width ``KAPPA = 128``.

Roles are reversed with respect to the base OTs (:mod:`tessera.ot.base`): the *extension
receiver* was the base-OT sender of 128 seed pairs ``(k_i^0, k_i^1)``; the *extension sender*
was the base-OT receiver with secret bits ``s`` and holds ``k_i^{s_i}``. For ``m`` choice bits
``r`` the receiver sends the ``128 x m`` bit matrix with rows
``u^i = G(k_i^0) XOR G(k_i^1) XOR r`` (``G`` is AES-128-CTR, :class:`~tessera.ot.aes.PrgStreams`)
and keeps ``T`` (rows ``G(k_i^0)``); the sender computes ``q^i = G(k_i^{s_i}) XOR s_i u^i``.
Transposed (:func:`~tessera.ot.aes.transpose`), OT ``j`` gives the sender ``q_j`` and the
receiver ``t_j`` with

    ``q_j = t_j XOR (r_j AND s)``.

Hashing the rows with a tweakable correlation-robust hash gives ``m`` random OTs: the sender's
messages ``H(j, q_j)`` and ``H(j, q_j XOR s)``, the receiver's ``H(j, t_j)`` (the one its choice
``r_j`` selects). ``u^i`` is masked by ``G(k_i^{1-s_i})``, which the sender never learns, so it
sees nothing of ``r``; the receiver never learns ``s`` and so not the other message.

**The hash** is the TCCR hash of Guo–Katz–Wang–Yu ("Efficient and secure multiparty computation
from fixed-key block ciphers", S&P 2020): ``H(x, i) = pi(pi(x) XOR i) XOR pi(x)`` with ``pi``
fixed-key AES (the key is a public constant). It is vectorised over a whole batch (two AES calls
per 128-bit output block) and gives ``w`` 64-bit words per OT by using the tweaks ``(j, 0..)``.

Notes. KOS 2015 adds a consistency check against a malicious receiver and ALSZ 2013 shortens
messages for correlated OT; neither is needed in the semi-honest setting this serves, and the
Gilboa products (:mod:`tessera.ot.cot`) send full 64-bit words for every bit position (the ALSZ
saving of ``k`` bits at position ``k`` is not taken).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tessera.ot.aes import FixedKeyAes, PrgStreams, transpose

__all__ = ["KAPPA", "CrHash", "IknpSender", "IknpReceiver", "padded"]

KAPPA = 128
ROW_BYTES = KAPPA // 8
#: the public key of the fixed-key permutation (any constant works in the random-permutation model)
_HASH_KEY = b"tessera/ot/tccr\x00"

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]


def padded(m: int) -> int:
    """``m`` rounded up to a multiple of 64 (the extension's batch granularity)."""
    return max(64, -(-m // 64) * 64)


class CrHash:
    """The TCCR hash ``H(x, i) = pi(pi(x) XOR i) XOR pi(x)`` over 128-bit rows (module doc)."""

    def __init__(self) -> None:
        self._aes = FixedKeyAes(_HASH_KEY)

    def words(self, rows: U8, first: int, w: int) -> U64:
        """``(m, w)`` uint64: for row ``j`` (``(m, 16)`` uint8), the words of ``H(x_j, (first + j, b))``
        for blocks ``b = 0 .. ceil(w / 2) - 1``."""
        m = len(rows)
        x = np.ascontiguousarray(rows).view(np.uint64).reshape(m, 2)
        px = self._aes.permute(x)
        nb = -(-w // 2)
        y = np.empty((m, nb, 2), dtype=np.uint64)
        y[:, :, 0] = (np.arange(m, dtype=np.uint64) + np.uint64(first))[:, None]
        y[:, :, 1] = np.arange(nb, dtype=np.uint64)[None, :] | np.uint64(1 << 63)
        y ^= px[:, None, :]
        out = self._aes.permute(y) ^ px[:, None, :]
        words: U64 = out.reshape(m, 2 * nb)[:, :w]
        return words


class IknpSender:
    """The extension sender: the base-OT receiver with bits ``s`` and seeds ``k_i^{s_i}``."""

    def __init__(self, s: U8, seeds: list[bytes]) -> None:
        s = np.asarray(s, dtype=np.uint8)
        if s.shape != (KAPPA,) or len(seeds) != KAPPA:
            raise ValueError(f"IKNP takes {KAPPA} base OTs")
        self._ones = np.flatnonzero(s)
        #: ``s`` as one 16-byte row
        self.s_row = np.packbits(s, bitorder="little")
        self._g = PrgStreams(seeds)
        #: OTs extended so far (the tweak of the next one)
        self.count = 0

    def extend(self, u: U8) -> U8:
        """The rows ``q_j`` (``(m, 16)`` uint8) from the receiver's ``u`` (``(128, m/8)``)."""
        if u.ndim != 2 or u.shape[0] != KAPPA or u.shape[1] % 8:
            raise ValueError("an IKNP message has 128 rows of a multiple of 8 bytes")
        g = self._g.next(u.shape[1])
        g[self._ones] ^= u[self._ones]
        self.count += 8 * u.shape[1]
        return transpose(g)


class IknpReceiver:
    """The extension receiver: the base-OT sender of seed pairs ``(k_i^0, k_i^1)``."""

    def __init__(self, k0: list[bytes], k1: list[bytes]) -> None:
        if len(k0) != KAPPA or len(k1) != KAPPA:
            raise ValueError(f"IKNP takes {KAPPA} base OTs")
        self._g0 = PrgStreams(k0)
        self._g1 = PrgStreams(k1)
        self.count = 0

    def extend(self, choices: U8) -> tuple[U8, U8]:
        """``(u, t)`` for choice bits ``choices`` (``(m,)`` of 0/1, ``m`` a multiple of 64):
        the message ``u`` (``(128, m/8)`` uint8) and this side's rows ``t_j`` (``(m, 16)``)."""
        m = len(choices)
        if m % 64:
            raise ValueError("IKNP extends a multiple of 64 OTs at a time")
        r = np.packbits(np.asarray(choices, dtype=np.uint8), bitorder="little")
        g0 = self._g0.next(m // 8)
        u = self._g1.next(m // 8)
        u ^= g0
        u ^= r[None, :]
        self.count += m
        return u, transpose(g0)
