"""Fixed-point encoding of real numbers into Z_2^64.

A real ``v`` with ``f`` fractional bits is stored as ``round(v * 2^f) mod 2^64``. Integers use
``f = 0`` and are stored exactly. The representable range is ``|v| * 2^f < 2^62`` so that every
encoded value can be truncated exactly (see :mod:`tessera.protocols`); products must stay in
that range too, which the planner checks from declared bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tessera.errors import EncodingError
from tessera.ring.ring import RING_DTYPE, RingArray, to_signed

__all__ = ["FixedPoint", "MAX_ABS_RAW", "Decoded", "encode", "decode"]

#: Decoded values: float64, or int64 for integers (``frac_bits == 0``).
Decoded = npt.NDArray[np.float64] | npt.NDArray[np.int64]

#: Largest magnitude of an encoded value (exclusive), 2^62.
MAX_ABS_RAW = 1 << 62


@dataclass(frozen=True)
class FixedPoint:
    """An encoding with ``frac_bits`` fractional bits (16 by default, 0 for integers)."""

    frac_bits: int = 16

    def __post_init__(self) -> None:
        if not 0 <= self.frac_bits <= 40:
            raise EncodingError(f"frac_bits must be in [0, 40], got {self.frac_bits}")

    @property
    def scale(self) -> float:
        return float(1 << self.frac_bits)

    @property
    def max_abs(self) -> float:
        """Largest magnitude (exclusive) this encoding represents."""
        return MAX_ABS_RAW / self.scale

    def encode(self, values: npt.ArrayLike) -> RingArray:
        """Encode a float, int or bool array-like; a clear error for NaN, inf and out-of-range."""
        return encode(values, self.frac_bits)

    def decode(self, ring: RingArray) -> Decoded:
        """Decode ring elements to float64 (or int64 when ``frac_bits == 0``)."""
        return decode(ring, self.frac_bits)


def encode(values: npt.ArrayLike, frac_bits: int) -> RingArray:
    """Encode ``values`` with ``frac_bits`` fractional bits as ring elements (uint64 array)."""
    x = np.asarray(values)
    if x.dtype == object:
        try:
            x = x.astype(np.float64)
        except (TypeError, ValueError):
            raise EncodingError("cannot encode non-numeric values") from None
    if x.dtype.kind == "b":
        x = x.astype(np.int64)
    if x.dtype.kind in "iu":
        if x.dtype == np.uint64 and x.size and int(x.max()) >= MAX_ABS_RAW >> frac_bits:
            raise EncodingError(_range_msg(frac_bits))
        xi = x.astype(np.int64)
        limit = MAX_ABS_RAW >> frac_bits
        if xi.size and (int(xi.max()) >= limit or int(xi.min()) <= -limit):
            raise EncodingError(_range_msg(frac_bits))
        return (xi << np.int64(frac_bits)).view(RING_DTYPE)
    if x.dtype.kind == "f":
        if x.size and not np.all(np.isfinite(x)):
            bad = "NaN" if np.isnan(x).any() else "infinity"
            raise EncodingError(f"cannot encode {bad}: secret values must be finite numbers")
        scaled = np.rint(x.astype(np.float64) * float(1 << frac_bits))
        if scaled.size and float(np.abs(scaled).max()) >= MAX_ABS_RAW:
            raise EncodingError(_range_msg(frac_bits))
        return scaled.astype(np.int64).view(RING_DTYPE)
    raise EncodingError(f"cannot encode values of dtype {x.dtype}")


def decode(ring: RingArray, frac_bits: int) -> Decoded:
    """Decode ring elements with ``frac_bits`` fractional bits (int64 if 0, else float64)."""
    s = to_signed(ring)
    if frac_bits == 0:
        return s.copy()
    return s.astype(np.float64) / float(1 << frac_bits)


def _range_msg(frac_bits: int) -> str:
    return (
        f"value outside the fixed-point range: |v| must be below 2^{62 - frac_bits} "
        f"(= {MAX_ABS_RAW / (1 << frac_bits):.4g}) with {frac_bits} fractional bits; "
        "rescale the data or use fewer fractional bits"
    )
