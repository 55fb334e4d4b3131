"""Vertical jobs over rows that are not yet aligned: private set intersection, then the analysis.

The party program :func:`psi_then_analysis` runs in each party's process over the session's own
authenticated channel: a PSI on the join key, then the vertical analysis. The join key never
leaves the party's process in the clear. Two modes (``psi_mode``):

``"intersection"`` (default)
    Each party learns which of its own rows are common, in one common order (and so the
    intersection size), and nothing about the others' other rows; then the analysis runs over
    its common rows (two parties: OPRF PSI, which reveals the same as ECDH in this mode).
``"aligned"``
    No party learns which of its rows are common: ECDH PSI in ``aligned`` mode gives every
    party only the intersection size and a plan for a secret-shared join
    (:mod:`tessera.plan.aligned`); every party secret-shares its columns for all its distinct
    identifiers, the join keeps the common rows obliviously, and the analysis's secure stage
    runs on those shares (:meth:`~tessera.analytics.base.Analysis.secure_rows`; ``describe``,
    ``covariance``, ``correlation``, ``linear_regression``, ``logistic_regression``). Costs
    more: every party's whole list is shared and permuted, not only the common rows.

Both modes reveal every party's number of distinct identifiers (PSI hello) and the intersection
size. :func:`psi_aligned_then_analysis` is the ``aligned`` mode under its own program name.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import duckdb

from tessera.data.local import write_parquet
from tessera.errors import DataError, PlanError
from tessera.mpc.session import Session
from tessera.plan.executor import run_analysis
from tessera.psi import PsiSpec, run_psi

__all__ = ["psi_then_analysis", "psi_aligned_then_analysis"]


def _read(path: str) -> Any:
    reader = "read_parquet" if path.lower().endswith((".parquet", ".pq")) else "read_csv_auto"
    con = duckdb.connect()
    try:
        escaped = path.replace("'", "''")
        return con.execute(f"SELECT * FROM {reader}('{escaped}')").df()
    finally:
        con.close()


def psi_then_analysis(session: Session, data: str, id_column: str, psi_mode: str = "intersection",
                      **job: Any) -> dict[str, Any]:
    """Align this party's rows with the others' by PSI on ``id_column``, then run ``job``
    (the executor's arguments) with ``partition="vertical"``.

    ``psi_mode="intersection"``: over this party's common rows in the common order.
    ``psi_mode="aligned"``: over the secret-shared join; nobody learns which rows are common.
    The outputs gain ``psi_size``, the number of common identifiers (every party learns it).
    """
    if psi_mode not in ("intersection", "aligned"):
        raise PlanError(f"unknown PSI mode {psi_mode!r}; use 'intersection' or 'aligned'")
    frame = _read(data)
    if id_column not in frame.columns:
        raise DataError(f"{Path(data).name}: no join-key column {id_column!r}")
    if psi_mode == "aligned":
        spec = PsiSpec("aligned")  # ECDH: the only PSI protocol with this mode
    else:
        # two parties: the OT-based OPRF PSI (same leakage as ECDH in intersection mode, ~70x faster)
        spec = PsiSpec("intersection", protocol="oprf" if session.n_parties == 2 else "ecdh")
    psi = run_psi(session.protocol.ch, frame[id_column].tolist(), spec, parties=list(range(session.n_parties)))
    if psi_mode == "aligned":
        assert psi.alignment is not None and psi.rows is None
        rows, alignment = psi.alignment.input_rows, psi.alignment
    else:
        assert psi.rows is not None
        rows, alignment = psi.rows, None
    mine = frame.iloc[rows].drop(columns=[id_column]).reset_index(drop=True)
    with tempfile.TemporaryDirectory(prefix="tessera-aligned-") as tmp:
        path = str(Path(tmp) / "aligned.parquet")
        write_parquet(mine, path)
        job["partition"] = "vertical"
        out = run_analysis(session, data=path, alignment=alignment, **job)
    out["outputs"]["psi_size"] = psi.size  # every party learns it, in both modes
    return out


def psi_aligned_then_analysis(session: Session, data: str, id_column: str, **job: Any) -> dict[str, Any]:
    """:func:`psi_then_analysis` in ``aligned`` mode: joined rows exist only as secret shares."""
    if job.pop("psi_mode", "aligned") != "aligned":
        raise PlanError("psi_aligned_then_analysis runs PSI in aligned mode only")
    return psi_then_analysis(session, data, id_column, psi_mode="aligned", **job)
