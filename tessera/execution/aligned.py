"""The secret-shared join of PSI ``aligned`` mode: shared rows that nobody can map to its own rows.

PSI in ``aligned`` mode (:func:`tessera.psi.run_psi` with ``PsiSpec("aligned")``) gives every
party an :class:`~tessera.psi.Alignment`: a plan for joining the parties' lists without anybody
learning which rows are common. :func:`shared_rows` carries it out over secret shares:

1. every list owner ``q`` secret-shares its columns of the job, one row per distinct
   identifier, in the order ``input_rows`` of its alignment (a private order);
2. party ``shuffler[q]`` permutes that shared list with its private permutation
   ``shuffles[q]``, obliviously (:func:`tessera.mpc.functions.permute_rows`: fresh shares,
   and nobody else learns the permutation);
3. everybody keeps the public positions ``select[q]``.

The ``k``-th kept row of every list then belongs to the same identifier, and the kept rows are
exactly the intersection, as secret shares. What the parties learn: the intersection size and
the sizes of the lists (public in the alignment), the columns' shapes, and nothing else — the
kept positions lie in a space permuted by two parties (the owner's order, the shuffler's
permutation), each known to one party only. The analysis then runs its secure stage on these
rows (:meth:`tessera.analytics.base.Analysis.secure_rows`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tessera.analytics.base import Plan
from tessera.analytics.common import first_holders
from tessera.errors import DataError, SessionError
from tessera.mpc import functions as fn
from tessera.mpc.session import Session
from tessera.mpc.tensor import SecretTensor
from tessera.psi import Alignment

__all__ = ["shared_rows"]


def shared_rows(session: Session, alignment: Alignment, local: Mapping[str, np.ndarray], plan: Plan,
                holders: dict[str, list[str]]) -> dict[str, SecretTensor]:
    """The job's columns of the common rows as secret shares (see the module docstring).

    ``local`` is this party's vertical local stage over its whole list, in ``input_rows`` order
    (one value per distinct identifier). Each column is shared by its first holder. Party
    indices of the alignment are the session's (the PSI ran over the session's parties).
    """
    owner = first_holders(plan.columns, holders)
    size = None
    out: dict[str, SecretTensor] = {}
    for q in alignment.lists:
        name = session.parties[q]
        mine = [c for c in plan.columns if owner[c] == name]
        if not mine:
            continue  # its list still took part in the intersection; no columns to carry
        n_q = alignment.sizes[q]
        block = None
        if q == session.me:
            short = [c for c in mine if len(local[c]) != n_q]
            if short:
                raise DataError(f"columns {short} do not have one value per distinct identifier ({n_q}): PSI "
                                "aligned mode cannot leave out rows (NULLs in a nullable column, or duplicate ids)")
            block = np.column_stack([local[c] for c in mine])
        shared = session.input(q, block, shape=(n_q, len(mine)), bound=None)
        shuffler = alignment.shuffler[q]
        pi = alignment.shuffles.get(q) if shuffler == session.me else None
        if shuffler == session.me and pi is None:
            raise SessionError(f"the alignment names {name!r}'s list for this party to shuffle but holds no permutation")
        kept = fn.take_rows(fn.permute_rows(shared, shuffler, pi), alignment.select[q])
        if size is not None and len(kept) != size:
            raise SessionError("the alignment's selections have different lengths")
        size = len(kept)
        for j, c in enumerate(mine):
            out[c] = kept[:, j]
    return out
