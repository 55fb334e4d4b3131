"""The ring Z_2^64 on numpy uint64 and fixed-point encodings into it."""

from tessera.ring.fixedpoint import FixedPoint
from tessera.ring.ring import RING_BITS, RING_DTYPE, RingArray, SignedArray

__all__ = ["FixedPoint", "RING_BITS", "RING_DTYPE", "RingArray", "SignedArray"]
