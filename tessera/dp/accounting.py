"""Privacy accounting with OpenDP: zero-concentrated DP for the discrete Gaussian mechanism,
composition, conversion to (epsilon, delta), and calibration of the noise scale.

The mathematics is OpenDP's (its measurements' privacy maps and its zCDP -> approximate-DP
conversion); this module only wires it to Tessera's mechanisms. OpenDP is imported where a
measurement is built (:mod:`tessera.dp._opendp` says why).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import TYPE_CHECKING

from tessera.dp._opendp import contrib

if TYPE_CHECKING:
    from opendp.mod import Measurement

__all__ = ["laplace_epsilon", "gaussian_rho", "compose_rho", "rho_to_epsilon", "calibrate_scale", "rho_for"]


@lru_cache(maxsize=256)
def _gaussian(scale: float) -> Measurement:
    from opendp.domains import atom_domain
    from opendp.measurements import make_gaussian
    from opendp.metrics import absolute_distance

    contrib()
    return make_gaussian(atom_domain(T=int), absolute_distance(T=int), scale=scale)


@lru_cache(maxsize=256)
def _laplace(scale: float) -> Measurement:
    from opendp.domains import atom_domain
    from opendp.measurements import make_laplace
    from opendp.metrics import absolute_distance

    contrib()
    return make_laplace(atom_domain(T=int), absolute_distance(T=int), scale=scale)


def laplace_epsilon(sensitivity: int, scale: float) -> float:
    """Pure epsilon of the discrete Laplace mechanism at this (integer L1) sensitivity."""
    return float(_laplace(float(scale)).map(int(sensitivity)))  # type: ignore[no-untyped-call]  # OpenDP: map is unannotated


def gaussian_rho(sensitivity: int, scale: float) -> float:
    """zCDP rho of the discrete Gaussian mechanism with this (integer L2) sensitivity and scale."""
    if sensitivity < 0 or scale <= 0:
        raise ValueError("sensitivity must be >= 0 and scale > 0")
    return float(_gaussian(float(scale)).map(int(sensitivity)))  # type: ignore[no-untyped-call]  # OpenDP: map is unannotated


def compose_rho(rhos: list[float]) -> float:
    """zCDP composes by addition (Bun & Steinke 2016)."""
    return float(sum(rhos))


def rho_to_epsilon(rho: float, delta: float) -> float:
    """The epsilon of a rho-zCDP mechanism at ``delta`` (OpenDP's conversion)."""
    if rho == 0:
        return 0.0
    from opendp.combinators import make_zCDP_to_approxDP
    from opendp.mod import OpenDPException

    contrib()
    meas = make_zCDP_to_approxDP(_rho_measurement(rho))
    try:
        return float(meas.map(1).epsilon(delta))  # type: ignore[no-untyped-call]  # OpenDP: map is unannotated
    except OpenDPException:  # rho so large that the conversion overflows: no useful guarantee
        return math.inf


def _rho_measurement(rho: float) -> Measurement:
    # a discrete Gaussian with sensitivity 1 whose rho is the given one: scale = 1 / sqrt(2 rho)
    return _gaussian(1.0 / math.sqrt(2 * rho))


def calibrate_scale(sensitivity: int, epsilon: float, delta: float) -> float:
    """The smallest discrete-Gaussian scale whose (epsilon, delta) guarantee holds (bisection
    over OpenDP's privacy map)."""
    if epsilon <= 0 or not 0 < delta < 1:
        raise ValueError("calibration needs epsilon > 0 and 0 < delta < 1")
    lo, hi = 1e-3, 1e7
    for _ in range(80):
        mid = math.sqrt(lo * hi)
        if rho_to_epsilon(gaussian_rho(sensitivity, mid), delta) <= epsilon:
            hi = mid
        else:
            lo = mid
    return hi


def rho_for(epsilon: float, delta: float) -> float:
    """The largest zCDP rho whose conversion gives at most ``epsilon`` at ``delta``."""
    lo, hi = 0.0, max(epsilon, 1.0) * 10
    for _ in range(100):
        mid = (lo + hi) / 2
        if rho_to_epsilon(mid, delta) <= epsilon:
            lo = mid
        else:
            hi = mid
    return lo
