"""``run_local``: run any analysis over several parties' data on this machine.

Each party is a separate OS process talking mutual TLS (``runtime="cluster"``, the default) or
a thread (``runtime="threads"``, for quick tests and notebooks). Party data given as pandas
DataFrames are written to Parquet files for the parties' local engines to read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from tessera.data.local import write_parquet
from tessera.data.schema import Schema
from tessera.errors import SessionError
from tessera.plan.executor import make_plan
from tessera.runtime.cluster import run_cluster
from tessera.runtime.inprocess import run_threads
from tessera.runtime.party import load_program

__all__ = ["run_local", "LocalResult"]


@dataclass
class LocalResult:
    """The outputs a recipient received, what was revealed to whom, and run figures."""

    outputs: dict[str, Any]
    revealed: list[str]
    plan_text: str
    per_party: dict[str, dict[str, Any]] = field(default_factory=dict)
    comm: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0

    def __getitem__(self, key: str) -> Any:
        return self.outputs[key]


def _as_file(data: pd.DataFrame | str | os.PathLike[str], path: Path) -> str:
    return write_parquet(data, path) if isinstance(data, pd.DataFrame) else str(data)


def _columns_of(path: str) -> list[str]:
    """Column names of a CSV or Parquet file (public metadata, read without the rows)."""
    reader = "read_parquet" if path.lower().endswith((".parquet", ".pq")) else "read_csv_auto"
    con = duckdb.connect()
    try:
        escaped = path.replace("'", "''")
        return [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {reader}('{escaped}')").fetchall()]
    finally:
        con.close()


def run_local(
    analysis: str,
    parties: Mapping[str, pd.DataFrame | str | os.PathLike[str]],
    schema: Schema,
    *,
    protocol: str | None = None,
    partition: str = "horizontal",
    recipients: list[str] | None = None,
    version: str | None = None,
    runtime: str = "cluster",
    timeout: float = 300.0,
    program: str = "tessera.plan.executor:run_analysis",
    party_args: Mapping[str, Mapping[str, Any]] | None = None,
    psi_mode: str | None = None,
    **params: Any,
) -> LocalResult:
    """Run ``analysis`` over ``parties`` (name -> DataFrame or CSV/Parquet path).

    ``protocol`` defaults to rep3 for three parties and semi2k otherwise. Raises PlanError
    before anything runs if the job is unsafe (e.g. could overflow the ring). ``program`` names
    another party program with the executor's arguments (e.g. one that accounts privacy
    budgets, :func:`tessera.governance.budgeted.run_budgeted`), and ``party_args`` adds
    per-party arguments to it.

    ``psi_mode`` (vertical jobs over rows not yet aligned; each party's ``party_args`` name its
    ``id_column``): run :func:`tessera.plan.vertical.psi_then_analysis` (unless ``program``
    names another PSI program) in ``"intersection"`` mode (each party learns which of its rows
    are common) or ``"aligned"`` mode (nobody does: the join exists only as secret shares;
    every party learns the intersection size and the sizes of the parties' sets).
    """
    names = list(parties)
    protocol = protocol or ("rep3" if len(names) == 3 else "semi2k")
    _, _, plan = make_plan(analysis, version, params, schema, partition, names, recipients, psi_mode=psi_mode)
    if psi_mode is not None and program == "tessera.plan.executor:run_analysis":
        program = "tessera.plan.vertical:psi_then_analysis"
    tmp = Path(tempfile.mkdtemp(prefix="tessera-run-"))
    try:
        files = {n: _as_file(d, tmp / f"{n}.parquet") for n, d in parties.items()}
        holders = None
        if partition == "vertical":
            present = {n: set(_columns_of(f)) for n, f in files.items()}
            holders = {c: [n for n in names if c in present[n]] for c in plan.columns}
        common = {"analysis": analysis, "version": version, "params": params, "holders": holders,
                  "schema": schema.model_dump(mode="json"), "partition": partition, "recipients": recipients}
        if psi_mode is not None:
            common["psi_mode"] = psi_mode
        per_party = {n: {"data": files[n], **dict((party_args or {}).get(n, {}))} for n in names}
        if runtime == "cluster":
            res = run_cluster(program, names, protocol=protocol, args=common, party_args=per_party,
                              frac_bits=plan.frac_bits, timeout=timeout)
        elif runtime == "threads":
            fn = load_program(program)
            res = run_threads(lambda s: fn(s, **common, **per_party[s.party]), names,
                              protocol=protocol, frac_bits=plan.frac_bits)
        else:
            raise SessionError(f"unknown runtime {runtime!r}; use 'cluster' or 'threads'")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    receiver = (recipients or names)[0]
    return LocalResult(
        outputs=res.results[receiver]["outputs"],
        revealed=plan.reveals(),
        plan_text=plan.explain(),
        per_party={n: r["outputs"] for n, r in res.results.items()},
        comm=res.comm,
        seconds=res.seconds,
    )
