"""Oblivious transfer: the primitive under OPRF PSI and dealer-free MPC preprocessing.

In topological order: ``aes`` (AES PRG streams, fixed-key AES hashing, bit transpose),
``groups`` (prime-order groups: ristretto255 / edwards25519), ``base`` (Chou–Orlandi base OTs),
``kkrt`` (OT extension with a pseudorandom code, for OPRF PSI), ``iknp`` (IKNP OT extension and
its correlation-robust hash), ``cot`` (correlated and random OT between every pair of a session's
parties, over Z_2^64 and over bits).
"""

from typing import TYPE_CHECKING

from tessera._exports import lazy_exports

if TYPE_CHECKING:
    from tessera.ot.cot import Cot, OtMesh

__all__ = ["Cot", "OtMesh"]

#: Imported when first used: ``tessera.ot.groups`` or ``tessera.ot.aes`` load no OT extension.
_LAZY = {"Cot": "tessera.ot.cot", "OtMesh": "tessera.ot.cot"}

__getattr__ = lazy_exports(__name__, _LAZY)
