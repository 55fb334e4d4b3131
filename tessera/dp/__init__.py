"""Differential privacy inside MPC: noise drawn jointly over secret shares, accounted by OpenDP.

* :mod:`tessera.dp.accounting` — zCDP of the discrete Gaussian, composition, conversion to
  (epsilon, delta), calibration; pure epsilon of the discrete Laplace;
* :mod:`tessera.dp.noise` — exact discrete Gaussian / Laplace samples and :func:`joint_noise`.

OpenDP is imported only when a measurement is built (:mod:`tessera.dp._opendp`).
"""

from tessera.dp.accounting import calibrate_scale, compose_rho, gaussian_rho, laplace_epsilon, rho_for, rho_to_epsilon
from tessera.dp.noise import discrete_gaussian, discrete_laplace, joint_noise

__all__ = [
    "laplace_epsilon",
    "gaussian_rho",
    "compose_rho",
    "rho_to_epsilon",
    "calibrate_scale",
    "rho_for",
    "discrete_gaussian",
    "discrete_laplace",
    "joint_noise",
]
