"""Shared test helpers: protocol configurations and fixed-point references."""

from __future__ import annotations

import numpy as np

from tessera.runtime import run_threads

#: (protocol, number of parties) combinations every SecretTensor property is checked under.
CONFIGS = [("semi2k", 2), ("semi2k", 3), ("semi2k", 4), ("semi2k", 5), ("rep3", 3)]
F = 16
ULP = 2.0**-F


def q(x: object, f: int = F) -> np.ndarray:
    """The value the fixed-point encoding actually stores (round to nearest 2^-f)."""
    return np.round(np.asarray(x, dtype=np.float64) * 2.0**f) / 2.0**f


def run(program, config, **kw):
    protocol, n = config
    return run_threads(program, n, protocol=protocol, **kw)
