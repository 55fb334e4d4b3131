"""Selections and order statistics on secret tensors, built from exact comparisons.

Every function here returns secret tensors and reveals nothing. Comparisons are exact for all
values in the fixed-point range; see :func:`tessera.mpc.circuits.ltz` for their cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.errors import SessionError, ShapeError
from tessera.mpc.tensor import SecretTensor, concatenate, stack

__all__ = ["where", "abs", "relu", "maximum", "minimum", "clip", "max", "min", "argmax", "argmin", "permute_rows",
           "take_rows"]

_builtin_abs = abs


def where(cond: SecretTensor | npt.ArrayLike, a: SecretTensor | npt.ArrayLike,
          b: SecretTensor | npt.ArrayLike) -> SecretTensor:
    """Elementwise ``a if cond else b`` for a secret (or public) 0/1 ``cond``. One product."""
    if isinstance(cond, SecretTensor):
        return cond * _minus(a, b) + b
    if isinstance(a, SecretTensor):
        c = np.asarray(cond).astype(np.int64)
        return a * c + (b * (1 - c) if isinstance(b, SecretTensor) else np.asarray(b) * (1 - c))
    if isinstance(b, SecretTensor):
        c = np.asarray(cond).astype(np.int64)
        return b * (1 - c) + np.asarray(a) * c
    raise TypeError("where() with a public condition needs a secret operand")


def _minus(a: SecretTensor | npt.ArrayLike, b: SecretTensor | npt.ArrayLike) -> SecretTensor | npt.NDArray[Any]:
    """``a - b`` for secret or public operands (a public difference stays public)."""
    if isinstance(a, SecretTensor):
        return a - b
    if isinstance(b, SecretTensor):
        return b.__rsub__(a)
    diff: npt.NDArray[Any] = np.asarray(a) - np.asarray(b)
    return diff


def abs(x: SecretTensor) -> SecretTensor:
    """``|x|``: one comparison and one product."""
    return x * (1 - 2 * (x < 0))


def relu(x: SecretTensor) -> SecretTensor:
    """``max(x, 0)``: one comparison and one product."""
    return x * (1 - (x < 0))


def maximum(a: SecretTensor, b: SecretTensor | npt.ArrayLike) -> SecretTensor:
    """Elementwise maximum (ties give ``a``)."""
    return where(a < b, b, a)


def minimum(a: SecretTensor, b: SecretTensor | npt.ArrayLike) -> SecretTensor:
    """Elementwise minimum (ties give ``a``)."""
    return where(b < a, b, a) if isinstance(b, SecretTensor) else where(a > b, b, a)


def clip(x: SecretTensor, lo: float, hi: float) -> SecretTensor:
    """``x`` clipped to the public interval ``[lo, hi]``: both comparisons in one batch."""
    if lo > hi:
        raise ValueError(f"clip bounds are inverted: {lo} > {hi}")
    below, above = x._sign_bits(x - lo, -(x - hi))
    return x + (stack([below, above]) * stack([lo - x, hi - x])).sum(axis=0)


def _tree(x: SecretTensor, axis: int, want_max: bool) -> tuple[SecretTensor, SecretTensor]:
    """Best value and its first index along ``axis`` by a pairwise tournament (log2 n levels)."""
    if x.ndim == 0:
        raise ShapeError("max/argmax need at least one dimension")
    ax = axis % x.ndim
    vals = SecretTensor(x.session, np.moveaxis(x.shares, ax + 1, -1), x.frac_bits)
    n = vals.shape[-1]
    if n == 0:
        raise ShapeError("max/argmax of an empty axis")
    # indices ride along as integers; the values' raw words join them in one product by the bit
    # (a product by 0/1 needs no truncation, so the raw words are exact at any scale)
    f = vals.frac_bits
    idx = (vals._relabel(0) * 0) + np.broadcast_to(np.arange(n), vals.shape)
    while vals.shape[-1] > 1:
        m = vals.shape[-1] // 2
        a, b = vals[..., 0 : 2 * m : 2], vals[..., 1 : 2 * m : 2]
        ia, ib = idx[..., 0 : 2 * m : 2], idx[..., 1 : 2 * m : 2]
        take_b = (b > a) if want_max else (b < a)  # strict: ties keep the earlier index
        both = stack([(b - a)._relabel(0), ib - ia]) * take_b
        new_v, new_i = a + both[0]._relabel(f), ia + both[1]
        if vals.shape[-1] % 2:
            new_v = concatenate([new_v, vals[..., -1:]], axis=-1)
            new_i = concatenate([new_i, idx[..., -1:]], axis=-1)
        vals, idx = new_v, new_i
    best = vals[..., 0]
    index = idx[..., 0]
    return best, index


def max(x: SecretTensor, axis: int = -1) -> SecretTensor:
    """Maximum along ``axis``: ceil(log2 n) comparison levels."""
    return _tree(x, axis, True)[0]


def min(x: SecretTensor, axis: int = -1) -> SecretTensor:
    return _tree(x, axis, False)[0]


def argmax(x: SecretTensor, axis: int = -1) -> SecretTensor:
    """Index of the first maximum along ``axis`` (an integer secret tensor), as numpy."""
    return _tree(x, axis, True)[1]


def argmin(x: SecretTensor, axis: int = -1) -> SecretTensor:
    return _tree(x, axis, False)[1]


def permute_rows(x: SecretTensor, owner: int | str, pi: npt.ArrayLike | None = None) -> SecretTensor:
    """Rows of ``x`` permuted by a permutation that only party ``owner`` knows: ``out[t] = x[pi[t]]``.

    The owner passes ``pi`` (a permutation of ``range(len(x))``); every other party passes
    ``None``. Returns fresh shares (re-randomised, so no party can link output rows to input
    rows); nobody learns the values and the other parties learn nothing about ``pi``. Works on
    any tensor of at least one dimension (rows along axis 0). Cost and the security argument:
    ``Protocol.permute`` of the session's protocol (semi2k: one round with the dealer's help;
    rep3: two rounds with the third party as helper).
    """
    session = x.session
    o = session.party_index(owner)
    if x.ndim == 0:
        raise ShapeError("permute_rows needs a tensor of at least one dimension")
    if session.me == o and pi is None:
        raise SessionError(f"party {session.party!r} permutes the rows but passed no permutation")
    if session.me != o and pi is not None:
        raise SessionError(f"party {session.party!r} passed a permutation, but {session.parties[o]!r} permutes")
    return SecretTensor(session, session.protocol.permute(x.shares, o, pi), x.frac_bits)


def take_rows(x: SecretTensor, rows: npt.ArrayLike) -> SecretTensor:
    """The rows of ``x`` at public positions ``rows`` (local; reveals nothing)."""
    idx = np.asarray(rows, dtype=np.int64)
    if idx.ndim != 1 or (len(idx) and (idx.min() < -len(x) or idx.max() >= len(x))):
        raise ShapeError(f"row positions out of range for {len(x)} rows")
    return x[idx]
