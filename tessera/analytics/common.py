"""Pieces every analysis shares: public scaling from declared bounds, overflow checks, and the
secure sum of the parties' local reductions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from tessera.analytics.base import Holders, Local, Plan, SharedRows
from tessera.data.local import Values
from tessera.data.schema import ColumnType, Schema
from tessera.errors import PlanError
from tessera.mpc.session import Opened, Session
from tessera.mpc.tensor import SecretTensor, concatenate

__all__ = ["scaling_for", "scale_columns", "check_magnitude", "secure_sum", "numeric_columns", "DEFAULT_MAX_ROWS",
           "local_gram", "normalized_gram", "first_holders", "vertical_local", "share_columns", "shared_gram",
           "received", "owner_rows"]

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


def scale_columns(columns: Mapping[str, Values], scaling: dict[str, tuple[float, float]]) -> npt.NDArray[np.float64]:
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


def secure_sum(session: Session, local: npt.NDArray[Any] | None, shape: Sequence[int]) -> SecretTensor:
    """The sum over all data owners of each owner's ``local`` array (every owner inputs its own;
    a compute party that owns no data passes None).

    Reveals nothing; every owner must pass an array of the same public ``shape``.
    """
    total: SecretTensor | None = None
    for part in session.owner_inputs(local, shape=tuple(shape)):
        total = part if total is None else total + part
    assert total is not None
    return total


def owner_rows(session: Session, local: Local, plan: Plan) -> SharedRows:
    """The data owners' rows, concatenated, as shared rows (each owner inputs its
    :func:`vertical_local` rows of ``plan.columns``; a party that owns none passes ``{}``).
    How analyses that pool after a reveal (``owner_contributions = "rows"``) combine the
    contributions of owners that do not compute. Reveals every owner's row count."""
    block = np.column_stack([local[c] for c in plan.columns]) if session.owns else None
    rows = concatenate(session.owner_inputs(block), axis=0)
    return {c: rows[:, j] for j, c in enumerate(plan.columns)}


def received(values: Sequence[Opened | None]) -> list[Opened] | None:
    """The values of one :meth:`~tessera.mpc.session.Session.reveal` as this party received them,
    or None if it is not a recipient (one reveal sends every value to the same parties)."""
    got = [v for v in values if v is not None]
    return got if len(got) == len(values) else None


def first_holders(columns: Sequence[str], holders: dict[str, list[str]]) -> dict[str, str]:
    """The party that shares each column (its first holder)."""
    return {c: holders[c][0] for c in columns}


def vertical_local(columns: Mapping[str, Values], plan: Plan) -> Local:
    """The vertical local stage: this party's columns of ``plan.columns``, row by row, scaled by
    ``plan.scaling`` where the plan scales them (others as they are, e.g. a 0/1 target).

    Row-wise only (nothing depends on the number of rows), so it serves both the aligned rows
    of PSI ``intersection`` mode and a party's whole list in PSI ``aligned`` mode.
    """
    out = {}
    for c in plan.columns:
        if c in columns:
            v = np.asarray(columns[c], dtype=np.float64)
            out[c] = (v - plan.scaling[c][0]) / plan.scaling[c][1] if c in plan.scaling else v
    return out


def share_columns(session: Session, local: Local, plan: Plan,
                  holders: dict[str, list[str]]) -> dict[str, SecretTensor]:
    """Shared rows from plaintext aligned rows: each column's first holder secret-shares it
    (one input per party, of all the columns it shares). ``local`` is :func:`vertical_local`'s
    output. Reveals the number of aligned rows (already public) and nothing else."""
    owner = first_holders(plan.columns, holders)
    cols: dict[str, SecretTensor] = {}
    for p, name in enumerate(session.parties):
        mine = [c for c in plan.columns if owner[c] == name]
        if not mine:
            continue
        block = np.column_stack([local[c] for c in mine]) if p == session.me else None
        t = session.input(p, block, bound=None)
        for j, c in enumerate(mine):
            cols[c] = t[:, j]
    return cols


def shared_gram(rows: SharedRows, plan: Plan) -> tuple[int, SecretTensor]:
    """``(n, Z'Z / n)`` for ``Z = [1, rows of plan.columns]`` from shared rows (``n`` public).

    The columns are multiplied by the public ``1/sqrt(n)`` first (one truncation, so every
    entry of the product stays below 1 before its truncation), then one secure matrix product.
    """
    n = len(rows[plan.columns[0]])
    x = concatenate([rows[c].reshape(n, 1) for c in plan.columns], axis=1)
    x = x.scale(1 / np.sqrt(max(n, 1)), bound=1.0)
    ones = x[:, :1] * 0 + 1 / np.sqrt(max(n, 1))
    z = concatenate([ones, x], axis=1)
    return n, z.T @ z


def local_gram(columns: Mapping[str, Values], plan: Plan) -> Local:
    """Local stage of the moment-based analyses, for ``Z = [1, scaled columns]``.

    Horizontal: this party's ``Z'Z`` (its count sits at ``[0, 0]``). Vertical: the scaled
    columns this party holds (:func:`vertical_local`), to be secret-shared row-wise.
    """
    if plan.partition == "vertical":
        return vertical_local(columns, plan)
    x = scale_columns(columns, plan.scaling)
    z = np.column_stack([np.ones(x.shape[0]), x])
    return {"gram": z.T @ z}


def normalized_gram(
    session: Session, local: Local, plan: Plan, holders: Holders
) -> tuple[int, SecretTensor]:
    """``(n, Z'Z / n)`` for ``Z = [1, scaled columns of plan.columns]`` over all parties' rows.

    Horizontal: the parties' local ``Z'Z`` are added securely and ``n`` is revealed (it is an
    output). Vertical: each column is secret-shared row-wise by its holder and ``Z'Z / n`` is a
    secure matrix product (:func:`shared_gram`); ``n`` is the public number of aligned rows.
    """
    k1 = len(plan.columns) + 1
    if plan.partition == "horizontal":
        totals = secure_sum(session, local["gram"].reshape(-1) if session.owns else None, (k1 * k1,))
        n = round(float(session.reveal(totals[0])[0]))
        return n, totals.reshape(k1, k1).scale(1 / max(n, 1), bound=float(max(n, 1)))
    return shared_gram(share_columns(session, local, plan, holders), plan)
