"""Noise produced jointly inside the secure computation.

Every party samples an exact discrete Gaussian of the full scale (OpenDP's sampler, integers
only: no floating-point Laplace) and secret-shares it; the secret sum is added to the value
before it is opened. No party knows the total noise. Assumption and cost: as long as one party
is honest, its own noise alone is a discrete Gaussian mechanism of that scale, and the other
parties' independent noise is post-processing, so the accounted guarantee is that of one
discrete Gaussian (:mod:`tessera.dp.accounting`) whatever the others do; the released value
then carries ``n`` times the variance (each party's share is sized for the worst case, where
the others collude and subtract their own noise). OpenDP is imported where a sampler is built
(:mod:`tessera.dp._opendp` says why).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tessera.dp._opendp import contrib
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor

__all__ = ["discrete_gaussian", "discrete_laplace", "joint_noise"]


def discrete_laplace(scale: float, size: int) -> npt.NDArray[np.int64]:
    """``size`` exact samples of the discrete Laplace with this scale (OpenDP, integers only)."""
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    from opendp.domains import atom_domain, vector_domain
    from opendp.measurements import make_laplace
    from opendp.metrics import l1_distance

    contrib()
    meas = make_laplace(vector_domain(atom_domain(T=int)), l1_distance(T=int), scale=float(scale))
    return np.asarray(meas([0] * size), dtype=np.int64)


def discrete_gaussian(scale: float, size: int) -> npt.NDArray[np.int64]:
    """``size`` exact samples of the discrete Gaussian N_Z(0, scale^2) (OpenDP, CSPRNG-backed)."""
    if size == 0:
        return np.zeros(0, dtype=np.int64)
    from opendp.domains import atom_domain, vector_domain
    from opendp.measurements import make_gaussian
    from opendp.metrics import l2_distance

    contrib()
    meas = make_gaussian(vector_domain(atom_domain(T=int)), l2_distance(T=int), scale=float(scale))
    return np.asarray(meas([0] * size), dtype=np.int64)


def joint_noise(
    session: Session, scale: float, shape: tuple[int, ...], frac_bits: int, mechanism: str = "gaussian"
) -> SecretTensor:
    """Secret integer noise: the sum over parties of independent discrete Gaussian (or, for
    pure epsilon-DP, discrete Laplace) samples of this scale, read at ``frac_bits`` fractional
    bits (scale in units of 2^-frac_bits). Reveals nothing."""
    sampler = {"gaussian": discrete_gaussian, "laplace": discrete_laplace}[mechanism]
    size = int(np.prod(shape, dtype=np.int64))
    total: SecretTensor | None = None
    for p in range(session.n_parties):
        mine = sampler(scale, size).reshape(shape) if p == session.me else None
        part = session.input(p, mine, shape=shape, frac_bits=0, bound=None)
        total = part if total is None else total + part
    assert total is not None
    return total._relabel(frac_bits)
