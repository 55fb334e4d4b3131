"""2-out-of-3 replicated shares: ``x = x0 + x1 + x2``; party ``i`` holds ``(x_i, x_{i+1})``."""

from __future__ import annotations

import numpy as np

__all__ = ["replicated_from_additive", "replicated_join"]


def replicated_from_additive(parts: list[np.ndarray]) -> list[np.ndarray]:
    """Each party's ``(2, ...)`` share array from the three additive components."""
    if len(parts) != 3:
        raise ValueError("replicated sharing has exactly three components")
    return [np.stack([parts[i], parts[(i + 1) % 3]]) for i in range(3)]


def replicated_join(shares: list[np.ndarray]) -> np.ndarray:
    """The value from the three parties' share arrays (checks that they are consistent)."""
    comps = [s[0] for s in shares]
    for i in range(3):
        if not np.array_equal(shares[i][1], comps[(i + 1) % 3]):
            raise ValueError("inconsistent replicated shares")
    return comps[0] + comps[1] + comps[2]
