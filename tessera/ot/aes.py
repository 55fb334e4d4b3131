"""Vectorised symmetric primitives for OPRF PSI: AES PRG, fixed-key AES hashing, bit transpose.

Everything works on whole numpy arrays at once (one AES call per batch, no Python loop per item).
AES comes from ``cryptography`` (OpenSSL, AES-NI where the CPU has it).

* :func:`prg` expands a 16-byte seed with AES-128-CTR (zero IV): the PRG of the OT extension.
* :func:`mmo` is the Matyas–Meyer–Oseas function ``pi(x) XOR x`` of a fixed-key AES permutation
  ``pi`` (the key is public, derived from the job's salt). In the random-permutation model it is
  a correlation-robust hash of one block (Guo–Katz–Wang–Yu, S&P 2020). The pseudorandom code of
  the OT extension is four ``mmo`` blocks of distinct inputs.
* :func:`row_hash` hashes a 512-bit row with a 64-bit tweak (the bin index) by *chaining* ``mmo``
  over the row's four 128-bit blocks: ``z_0 = tweak block``, ``z_{b+1} = mmo(z_b XOR r_b)``,
  output ``z_4``. The OPRF needs ``H(t XOR (d AND s))`` to look random when the receiver knows
  ``t`` and ``d`` but not ``s`` (``d`` of Hamming weight well above 128). Computing ``z_4`` needs
  a query of ``pi`` at the exact input of every step in turn, and the output is masked by the
  last one, so a guesser must get all unknown bits of the row right at once: about
  ``2^wt(d AND s-unknown)`` work. (XOR-folding four independent ``mmo`` blocks would *not* do: a
  meet-in-the-middle attack then costs only about ``2^(largest unknown part of one block)``.)
  Per-row ``blake2b`` from ``hashlib`` would be a standard random oracle but costs one Python call
  per row (about 0.4 s per million rows here, and the sender hashes three rows per item), where
  the four chained AES passes over a batch cost a few hundredths of a second per million rows.
* :func:`transpose` transposes a bit matrix by 64x64 bit blocks (six mask-and-swap stages on
  ``uint64`` words, vectorised over all blocks of a cache-sized chunk), falling back to 8x8
  blocks for shapes that are not multiples of 64 rows and 8 bytes.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tessera.ring.bitslice import transpose8

__all__ = ["prg", "PrgStreams", "FixedKeyAes", "transpose"]

_ZERO_IV = bytes(16)


def prg(seed: bytes, nbytes: int) -> np.ndarray:
    """``nbytes`` pseudorandom bytes from a 16-byte seed (AES-128-CTR, IV 0), as uint8."""
    enc = Cipher(algorithms.AES(seed), modes.CTR(_ZERO_IV)).encryptor()
    return np.frombuffer(enc.update(bytes(nbytes)), dtype=np.uint8)


class PrgStreams:
    """Many :func:`prg` streams read in step: ``next(k)`` gives the next ``k`` bytes of each.

    ``next`` fills row ``i`` of its result with bytes of stream ``i``, continuing where the
    previous call stopped, so reading ``k_1, k_2, ...`` bytes equals ``prg(seed, k_1 + k_2 + ...)``.
    With ``offset`` the streams start at that byte of :func:`prg`'s stream (so that threads can
    produce disjoint parts).
    """

    def __init__(self, seeds: list[bytes], offset: int = 0) -> None:
        if offset % 16:
            raise ValueError("PRG streams start at a multiple of 16 bytes")
        iv = (offset // 16).to_bytes(16, "big")  # CTR: the counter block of byte ``offset``
        self._encs = [Cipher(algorithms.AES(s), modes.CTR(iv)).encryptor() for s in seeds]

    def next(self, nbytes: int, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty((len(self._encs), nbytes), dtype=np.uint8) if out is None else out
        zeros = bytes(nbytes)
        for i, enc in enumerate(self._encs):
            out[i] = np.frombuffer(enc.update(zeros), dtype=np.uint8)
        return out


class FixedKeyAes:
    """A fixed-key AES-128 permutation ``pi`` and the hashes built on it (see the module doc)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 16:
            raise ValueError("fixed-key AES takes a 16-byte key")
        self._cipher = Cipher(algorithms.AES(key), modes.ECB())

    def permute(self, blocks: np.ndarray) -> np.ndarray:
        """``pi`` applied to every 16-byte block of a C-contiguous array (same shape and dtype)."""
        arr = np.ascontiguousarray(blocks)
        if arr.size == 0:
            return arr.copy()
        out = self._cipher.encryptor().update(arr.reshape(-1).view(np.uint8).data)
        return np.frombuffer(out, dtype=arr.dtype).reshape(arr.shape)

    def mmo(self, blocks: np.ndarray) -> np.ndarray:
        """``pi(x) XOR x`` for every block (a writable array of the same shape and dtype)."""
        out = self.permute(blocks).copy()
        out ^= blocks
        return out

    def row_hash(self, rows: np.ndarray, tweaks: np.ndarray) -> np.ndarray:
        """Chained MMO of ``rows`` (``(N, 8)`` uint64: 512 bits each) under ``tweaks`` (``(N,)``).

        Returns ``(N, 2)`` uint64. Blocks enter in the order 0..3 of the row.
        """
        n = len(rows)
        z = np.empty((n, 2), dtype=np.uint64)
        z[:, 0] = tweaks
        z[:, 1] = 0x7465737365726121  # domain constant: the tweak block differs from code inputs
        for b in range(4):
            z ^= rows[:, 2 * b : 2 * b + 2]
            z = self.mmo(z)
        return z


# --- bit transpose -------------------------------------------------------------------------------

_MASKS64 = tuple(
    (np.uint64(j), np.uint64(m))
    for j, m in [(32, 0x00000000FFFFFFFF), (16, 0x0000FFFF0000FFFF), (8, 0x00FF00FF00FF00FF),
                 (4, 0x0F0F0F0F0F0F0F0F), (2, 0x3333333333333333), (1, 0x5555555555555555)]
)


def _transpose64(x: np.ndarray) -> None:
    """In place: transpose every 64x64 bit block ``x[b, :, w]`` of ``x`` (``(B, 64, W)`` uint64).

    Word ``r`` of a block is row ``r``; bit ``c`` of a word is column ``c``. Stage ``j`` swaps
    the off-diagonal ``j x j`` sub-blocks of every ``2j x 2j`` sub-block.
    """
    b, _, w = x.shape
    for j, m in _MASKS64:
        v = x.reshape(b, 64 // (2 * int(j)), 2, int(j), w)
        x0, x1 = v[:, :, 0], v[:, :, 1]
        t = x0 >> j
        t ^= x1
        t &= m
        x1 ^= t
        t <<= j
        x0 ^= t


def transpose(a: np.ndarray, chunk_bytes: int = 1 << 21, out: np.ndarray | None = None) -> np.ndarray:
    """The transpose of a bit matrix.

    ``a`` is ``(R, C)`` uint8: ``R`` rows of ``8C`` bits, bit ``j`` of a row in byte ``j // 8``
    at bit ``j % 8`` (numpy's ``bitorder="little"``). ``R`` must be a multiple of 8. Returns
    ``(8C, R // 8)`` uint8 in the same layout: row ``j`` of the result is column ``j`` of ``a``
    (written into ``out`` if given).
    """
    rows, cols = a.shape
    if rows % 8:
        raise ValueError("the number of rows must be a multiple of 8")
    if out is None:
        out = np.empty((8 * cols, rows // 8), dtype=np.uint8)
    elif out.shape != (8 * cols, rows // 8) or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous array of the transposed shape")
    if rows == 0 or cols == 0:
        return out
    if rows % 64 == 0 and cols % 8 == 0 and a.flags.c_contiguous:
        words = cols // 8
        a64 = a.view(np.uint64).reshape(rows // 64, 64, words)
        o64 = out.view(np.uint64).reshape(words, 64, rows // 64)
        cw = max(1, min(words, chunk_bytes // (512 * min(rows // 64, 64))))
        cb = max(1, min(rows // 64, chunk_bytes // (512 * cw)))
        for w0 in range(0, words, cw):
            w1 = min(words, w0 + cw)
            for b0 in range(0, rows // 64, cb):
                b1 = min(rows // 64, b0 + cb)
                x = a64[b0:b1, :, w0:w1].copy()
                _transpose64(x)
                o64[w0:w1, :, b0:b1] = x.transpose(2, 1, 0)
        return out
    out3 = out.reshape(cols, 8, rows // 8)
    # chunk over row blocks and column bytes so each piece stays in cache
    rb_total = rows // 8
    cb = max(1, min(cols, chunk_bytes // max(1, 8 * min(rb_total, 4096))))
    rb = max(1, min(rb_total, chunk_bytes // (8 * cb)))
    a3 = a.reshape(rb_total, 8, cols)
    w = np.empty((cb, rb, 8), dtype=np.uint8)
    t = np.empty((cb, rb), dtype=np.uint64)
    for c0 in range(0, cols, cb):
        c1 = min(cols, c0 + cb)
        for r0 in range(0, rb_total, rb):
            r1 = min(rb_total, r0 + rb)
            ww = w[: c1 - c0, : r1 - r0]
            ww[...] = a3[r0:r1, :, c0:c1].transpose(2, 0, 1)
            x = ww.view(np.uint64).reshape(c1 - c0, r1 - r0)
            transpose8(x, t[: c1 - c0, : r1 - r0])
            out3[c0:c1, :, r0:r1] = ww.transpose(0, 2, 1)
    return out
