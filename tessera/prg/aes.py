"""A CSPRNG: AES-128 in counter mode over a 16-byte seed.

Two parties holding the same seed draw the same stream, in the same order; that is how pairwise
agreed seeds produce correlated randomness without communication. Fresh seeds come from
``os.urandom``. numpy's generators are never used for anything a party must not predict.
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


def fresh_seed() -> bytes:
    """16 bytes from the operating system's CSPRNG."""
    return os.urandom(SEED_BYTES)


class PRG:
    """A deterministic stream of random bytes, ring elements and bits from a secret seed."""

    __slots__ = ("_enc", "_zeros")

    def __init__(self, seed: bytes | None = None) -> None:
        seed = fresh_seed() if seed is None else seed
        if len(seed) != SEED_BYTES:
            raise ValueError(f"a PRG seed has {SEED_BYTES} bytes")
        self._enc = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
        self._zeros = bytearray(0)

    def __repr__(self) -> str:  # the seed is secret
        return "PRG(<secret seed>)"

    def _stream(self, n: int) -> npt.NDArray[np.uint8]:
        """The next ``n`` bytes of the stream as a writable uint8 array (no copies)."""
        if len(self._zeros) < n:
            self._zeros = bytearray(max(n, 2 * len(self._zeros)))
        out = np.empty(n + 16, dtype=np.uint8)  # update_into needs block_size - 1 spare bytes
        self._enc.update_into(memoryview(self._zeros)[:n], out.data)
        return out[:n]

    def bytes(self, n: int) -> bytearray:
        """The next ``n`` bytes of the stream."""
        return bytearray(self._stream(n))

    def ring(self, shape: int | tuple[int, ...]) -> _Words:
        """Uniformly random ring elements (uint64) of the given shape."""
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        n = int(np.prod(shape, dtype=np.int64))
        return self._stream(8 * n).view(np.uint64).reshape(shape)

    def bits(self, shape: int | tuple[int, ...], nbits: int = 1) -> _Words:
        """Uniform values in ``[0, 2^nbits)`` as uint64 (``nbits = 1`` gives random bits)."""
        x = self.ring(shape)
        if nbits < 64:
            x &= np.uint64((1 << nbits) - 1)
        return x
