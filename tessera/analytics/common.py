"""Pieces every analysis shares: public scaling from declared bounds, overflow checks, and the
secure sum of the parties' local reductions."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tessera.data.schema import ColumnType, Schema
from tessera.errors import PlanError
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor

__all__ = ["scaling_for", "scale_columns", "check_magnitude", "secure_sum", "numeric_columns", "DEFAULT_MAX_ROWS"]

#: Rows assumed per dataset when the job does not declare a bound (contracts declare one).
DEFAULT_MAX_ROWS = 10**9


def numeric_columns(schema: Schema, names: Sequence[str]) -> list[str]:
    """``names`` checked to be numeric (float, int or bool) columns of ``schema``."""
    out = []
    for n in names:
        try:
            col = schema.column(n)
        except KeyError as e:
            raise PlanError(str(e)) from None
        if col.type is ColumnType.CATEGORY:
            raise PlanError(f"column {n!r} is categorical; this analysis needs numeric columns")
        out.append(n)
    if not out:
        raise PlanError("no columns selected")
    return out


def scaling_for(schema: Schema, names: Sequence[str]) -> dict[str, tuple[float, float]]:
    """Per column (center, half width) from the declared bounds, so scaled values lie in [-1, 1].

    Scaling is a public affine map: revealing a scaled statistic reveals exactly the same as
    revealing the statistic. It keeps sums of squares and cross products of any declared range
    inside the ring.
    """
    out = {}
    for n in names:
        lo, hi = schema.column(n).bounds
        half = (hi - lo) / 2
        out[n] = ((hi + lo) / 2, half if half > 0 else 1.0)
    return out


def scale_columns(columns: dict[str, np.ndarray], scaling: dict[str, tuple[float, float]]) -> np.ndarray:
    """Rows x columns matrix of scaled values (column order of ``scaling``)."""
    return np.column_stack([(np.asarray(columns[c], dtype=np.float64) - m) / h for c, (m, h) in scaling.items()])


def check_magnitude(quantity: str, bound: float, frac_bits: int, fix: str) -> None:
    """Refuse a plan in which ``quantity`` could reach ``bound`` in magnitude: it must stay below
    2^(62 - frac_bits) to be encoded and truncated exactly."""
    limit = 2.0 ** (62 - frac_bits)
    if bound >= limit:
        raise PlanError(
            f"{quantity} could reach {bound:.3g}, beyond the ring's range of {limit:.3g} at "
            f"{frac_bits} fractional bits; {fix}"
        )


def secure_sum(session: Session, local: np.ndarray, shape: Sequence[int]) -> SecretTensor:
    """The sum over all parties of each party's ``local`` array (every party inputs its own).

    Reveals nothing; every party must pass an array of the same public ``shape``.
    """
    total: SecretTensor | None = None
    for p in range(session.n_parties):
        part = session.input(p, local if p == session.me else None, shape=tuple(shape))
        total = part if total is None else total + part
    assert total is not None
    return total
