"""Vertical jobs over rows that are not yet aligned: what each PSI mode means, and the PSI step.

Everything a PSI mode means is here, once: which contract leakage rule allows it
(:data:`MODE_FOR_LEAKAGE`), what it reveals (:data:`REVEALS`, written into the plan), which PSI
protocol runs it (:func:`spec_for`), and what a party holds afterwards (:func:`align`).

``"intersection"``
    Each party learns which of its own rows are common, in one common order (and so the
    intersection size), and nothing about the others' other rows; the analysis runs over its
    common rows (two parties: OPRF PSI, which reveals the same as ECDH in this mode).
``"aligned"``
    No party learns which of its rows are common: ECDH PSI in ``aligned`` mode gives every party
    only the intersection size and a plan for a secret-shared join (:mod:`tessera.execution.aligned`);
    every party secret-shares its columns for all its distinct identifiers, the join keeps the
    common rows obliviously, and the analysis's secure stage runs on those shares
    (:meth:`~tessera.analytics.base.Analysis.secure_rows`). Costs more: every party's whole list
    is shared and permuted, not only the common rows.

Both modes reveal every party's number of distinct identifiers (PSI hello) and the intersection
size. The join key never leaves the party's process in the clear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from tessera.data.frames import read_frame
from tessera.data.sources import Source, describe_source
from tessera.errors import DataError
from tessera.mpc.session import Session
from tessera.psi import Alignment, Normalisation, PsiSpec

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PsiMode", "PSI_MODES", "REVEALS", "MODE_FOR_LEAKAGE", "mode_for_leakage", "spec_for", "Aligned", "align",
           "duplicated_keys", "refuse_duplicate_keys", "duplicate_keys_note"]

PsiMode = Literal["intersection", "aligned"]
PSI_MODES: tuple[PsiMode, ...] = ("intersection", "aligned")

#: What each PSI mode of a vertical job reveals, beyond the analysis's own release.
REVEALS: dict[PsiMode, str] = {
    "intersection": "PSI (intersection mode): every party learns which of its own rows are common, in one common "
                    "order, hence the intersection size; and every party's number of distinct identifiers",
    "aligned": "PSI (aligned mode): every party learns the intersection size and every party's number of distinct "
               "identifiers, and no party learns which of its rows are common: the rows are joined as secret "
               "shares (oblivious permutations) and analysed without ever being opened",
}

#: The contract's ``leakage.psi_reveal`` -> the PSI mode of vertical jobs: ``intersection`` lets
#: each owner learn which of its rows are common; ``size`` keeps the joined rows secret-shared
#: (aligned mode), revealing only the number of common identifiers. Other values allow none.
MODE_FOR_LEAKAGE: dict[str, PsiMode] = {"intersection": "intersection", "size": "aligned"}


def mode_for_leakage(psi_reveal: str) -> PsiMode | None:
    """The PSI mode a contract's ``psi_reveal`` rule allows, or None."""
    return MODE_FOR_LEAKAGE.get(psi_reveal)


def spec_for(mode: PsiMode, n_parties: int) -> PsiSpec:
    """The PSI that runs a mode: ECDH for ``aligned`` (the only protocol with it); for
    ``intersection``, the OT-based OPRF PSI between two parties (same leakage, ~70x faster)."""
    if mode == "aligned":
        return PsiSpec("aligned")
    return PsiSpec("intersection", protocol="oprf" if n_parties == 2 else "ecdh")


@dataclass(frozen=True)
class Aligned:
    """A party's rows after the PSI: in ``intersection`` mode its common rows in the common order;
    in ``aligned`` mode one row per distinct identifier in ``alignment.input_rows`` order. The join
    key is dropped."""

    rows: pd.DataFrame
    alignment: Alignment | None
    size: int


def duplicate_keys_note(owners: list[str], keep_first: list[str]) -> str:
    """What the plan says about duplicated join keys (the contract's ``duplicate_keys``)."""
    refuse = [o for o in owners if o not in keep_first]
    parts = []
    if refuse:
        parts.append(f"{', '.join(refuse)}: the job is refused if a join-key value repeats (the error names the "
                     "dataset and the number of duplicated keys)")
    if keep_first:
        parts.append(f"{', '.join(keep_first)}: the first row of each repeated join-key value is used, the later "
                     "rows are left out")
    return "duplicate join keys (after normalisation): " + "; ".join(parts)


def refuse_duplicate_keys(label: str, ids: list[object], norm: Normalisation) -> None:
    """Raise a :class:`DataError` naming ``label`` and the number of repeated join-key values, if
    any repeat (the contract's ``duplicate_keys = 'refuse'``); before anything is sent."""
    keys, on_rows = duplicated_keys(ids, norm)
    if keys:
        raise DataError(f"{label}: {keys} join-key value{'s' if keys > 1 else ''} repeat{'' if keys > 1 else 's'} "
                        f"({on_rows} rows in all); the contract refuses duplicate join keys (duplicate_keys = "
                        "'refuse'): deduplicate the data, or agree duplicate_keys = 'first' to use the first row "
                        "of each")


def duplicated_keys(ids: list[object], norm: Normalisation) -> tuple[int, int]:
    """``(keys, rows)``: how many join-key values repeat after the PSI's normalisation, and on how
    many rows in all (counts only; identifiers the PSI would reject are left to it)."""
    counts: dict[str, int] = {}
    for v in ids:
        if isinstance(v, str):
            s = norm.text(v)
        elif isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            s = str(int(v))
        else:
            continue
        counts[s] = counts.get(s, 0) + 1
    repeated = [k for k in counts.values() if k > 1]
    return len(repeated), sum(repeated)


def align(session: Session, source: Source, join_key: str, mode: PsiMode,
          check_rows: Callable[[int], None] | None = None, label: str | None = None,
          keep_first: bool = False) -> Aligned:
    """Run the PSI on ``join_key`` over the session's own channel and keep this party's rows.
    ``check_rows`` sees the dataset's row count before the PSI starts (the contract's bounds
    are the dataset's, not the intersection's). A join-key value on several rows is refused
    (DataError naming ``label`` and the number of such keys, before anything is sent) unless
    ``keep_first``: then the first row of each is used."""
    frame = read_frame(source)
    if check_rows is not None:
        check_rows(len(frame))
    spec = spec_for(mode, session.n_parties)
    if join_key in frame.columns and not keep_first:
        refuse_duplicate_keys(label or describe_source(source), frame[join_key].tolist(), spec.normalisation)
    if join_key not in frame.columns:
        raise DataError(f"{describe_source(source)}: no join-key column {join_key!r}")
    from tessera.psi import run_psi  # the PSI protocols, groups and OT extension: PSI jobs only

    psi = run_psi(session.protocol.ch, frame[join_key].tolist(), spec, parties=list(range(session.n_parties)))
    if mode == "aligned":
        if psi.alignment is None or psi.rows is not None:
            raise DataError("the PSI in aligned mode returned no alignment")
        rows, alignment = psi.alignment.input_rows, psi.alignment
    else:
        if psi.rows is None:
            raise DataError("the PSI in intersection mode returned no rows")
        rows, alignment = psi.rows, None
    mine = frame.iloc[rows].drop(columns=[join_key]).reset_index(drop=True)
    return Aligned(mine, alignment, int(psi.size or 0))
