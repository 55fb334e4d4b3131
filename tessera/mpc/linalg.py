"""Linear algebra on secret matrices: inverse and solve for symmetric positive definite systems.

Newton–Schulz iteration (Schulz 1933; as used for MPC regression by e.g. Gascón et al. 2017):
``X_{k+1} = X_k (2I - A X_k)`` from ``X_0 = I / u`` with a public bound ``u >= λ_max(A)``. The
residual ``I - A X_k`` squares every step, so ``k`` steps reach accuracy
``(1 - λ_min/u)^(2^k)``: about ``log2(u/λ_min) + 5`` steps for 1e-6. Only matrix products
are used (two per step), so nothing is revealed and the cost is ``2k`` secure matmuls.
"""

from __future__ import annotations

import math

import numpy as np

from tessera.errors import ShapeError
from tessera.mpc.tensor import SecretTensor

__all__ = ["inv_spd", "refine_inverse", "solve_spd", "newton_schulz_steps"]


def newton_schulz_steps(condition_bound: float, tol: float = 1e-7) -> int:
    """Steps that reach ``tol`` for ``u/λ_min <= condition_bound``."""
    if condition_bound < 1:
        raise ValueError("the condition bound is at least 1")
    return max(1, math.ceil(math.log2(max(1.0, condition_bound * math.log(1 / tol)))) + 1)


def inv_spd(a: SecretTensor, eig_upper: float, steps: int) -> SecretTensor:
    """Inverse of a secret symmetric positive definite ``p x p`` matrix.

    ``eig_upper`` is a public upper bound on its largest eigenvalue (e.g. its trace bound from
    declared column bounds). Converges when ``steps >= newton_schulz_steps(eig_upper / λ_min)``.
    Rounds: ``2 * steps`` matmul rounds of the protocol.
    """
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ShapeError(f"inv_spd needs a square matrix, got shape {a.shape}")
    p = a.shape[0]
    eye = np.eye(p)
    x = (a * 0) + eye / eig_upper  # a secret zero plus the public start
    for _ in range(steps):
        x = x @ (2 * eye - a @ x)
    return x


def refine_inverse(a: SecretTensor, start: SecretTensor, steps: int) -> SecretTensor:
    """Newton–Schulz iteration for ``A^{-1}`` from a secret start ``X_0`` (e.g. the inverse of a
    nearby matrix), ``steps`` steps of two matrix products each.

    The residual ``I - A X_k`` is ``(I - A X_0)^(2^k)``: it converges when every eigenvalue of
    ``A X_0`` lies in (0, 2). For SPD ``A`` and ``X_0 = B^{-1}`` with ``0 < A <= B`` (Loewner
    order) they lie in (0, 1], and the start is at least as good as ``I / u`` for any ``u >=
    λ_max(B)``: ``λ_min(B^{-1} A) >= λ_min(A) / u``, so :func:`newton_schulz_steps` of
    ``u / λ_min(A)`` steps suffice here too, and far fewer when ``A`` is close to ``B``.
    """
    if a.ndim != 2 or a.shape[0] != a.shape[1] or start.shape != a.shape:
        raise ShapeError(f"refine_inverse needs square matrices of one shape, got {a.shape} and {start.shape}")
    eye = np.eye(a.shape[0])
    x = start
    for _ in range(steps):
        x = x @ (2 * eye - a @ x)
    return x


def solve_spd(a: SecretTensor, b: SecretTensor, eig_upper: float, steps: int) -> SecretTensor:
    """``A^{-1} b`` for a secret SPD ``A`` (see :func:`inv_spd` for the conditions)."""
    return inv_spd(a, eig_upper, steps) @ b
