"""A CSPRNG: AES-128 in counter mode over a 16-byte seed.

Two parties holding the same seed draw the same stream, in the same order; that is how pairwise
agreed seeds produce correlated randomness without communication. Fresh seeds come from
``os.urandom``. numpy's generators are never used for anything a party must not predict.

The stream is the same however it is cut into calls: ``ring(a)`` then ``ring(b)`` gives the
words of ``ring(a + b)``, and :meth:`PRG.fill` writes the next bytes into any array (so a
protocol may draw several masks, of several word sizes, in one call or into its output).
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

__all__ = ["PRG", "fresh_seed", "SEED_BYTES"]

SEED_BYTES = 16

#: 64-bit words (ring elements, for the layers above): numpy uint64.
_Words = npt.NDArray[np.uint64]

# The key stream is AES-CTR over zeros, encrypted a chunk at a time: the zeros stay in the
# cache, so a large draw reads no memory besides the output it writes (~25% faster at 8 MB).
_CHUNK = 1 << 18
_SPARE = 15  # update_into wants block_size - 1 spare bytes after its output (cryptography < 43)
_ZEROS = memoryview(bytes(_CHUNK))


def fresh_seed() -> bytes:
    """16 bytes from the operating system's CSPRNG."""
    return os.urandom(SEED_BYTES)


class PRG:
    """A deterministic stream of random bytes, ring elements and bits from a secret seed."""

    __slots__ = ("_enc", "_tail")

    def __init__(self, seed: bytes | None = None) -> None:
        seed = fresh_seed() if seed is None else seed
        if len(seed) != SEED_BYTES:
            raise ValueError(f"a PRG seed has {SEED_BYTES} bytes")
        self._enc = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
        self._tail = bytearray(_CHUNK + _SPARE)

    def __repr__(self) -> str:  # the seed is secret
        return "PRG(<secret seed>)"

    def _into(self, out: memoryview) -> None:
        """Write the next ``len(out)`` bytes of the stream into the byte view ``out``."""
        n, done = len(out), 0
        while n - done > _CHUNK + _SPARE:  # a chunk with room after it: written in place
            self._enc.update_into(_ZEROS, out[done:])
            done += _CHUNK
        tail = memoryview(self._tail)
        while done < n:  # the rest (at most a chunk and 15 bytes) through a buffer with room
            k = min(n - done, _CHUNK)
            self._enc.update_into(_ZEROS[:k], tail)
            out[done : done + k] = tail[:k]
            done += k

    def fill(self, out: npt.NDArray[np.generic]) -> None:
        """Overwrite the C-contiguous array ``out`` with the next ``out.nbytes`` bytes of the
        stream (uniform words of ``out``'s dtype)."""
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("PRG.fill needs a writable C-contiguous array")
        self._into(out.reshape(-1).view(np.uint8).data)

    def bytes(self, n: int) -> bytearray:
        """The next ``n`` bytes of the stream."""
        out = bytearray(n)
        self._into(memoryview(out))
        return out

    def ring(self, shape: int | tuple[int, ...]) -> _Words:
        """Uniformly random ring elements (uint64) of the given shape."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        out = np.empty(shape, dtype=np.uint64)
        self.fill(out)
        return out

    def bits(self, shape: int | tuple[int, ...], nbits: int = 1) -> _Words:
        """Uniform values in ``[0, 2^nbits)`` as uint64 (``nbits = 1`` gives random bits)."""
        x = self.ring(shape)
        if nbits < 64:
            x &= np.uint64((1 << nbits) - 1)
        return x
