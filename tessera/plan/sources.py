"""Reading a party's own data for a job: the local engine reads the file and checks it."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np

from tessera.data.schema import ColumnType, Schema
from tessera.errors import DataError

__all__ = ["load_columns"]


def load_columns(path: str, schema: Schema, columns: list[str]) -> dict[str, np.ndarray]:
    """The named columns of a CSV or Parquet file as float64 arrays, checked against ``schema``.

    Booleans become 0/1 and categories the index of their level. Values outside the declared
    bounds, NULLs in non-nullable columns and unknown category levels are refused with a
    DataError naming the column and the count (never the values). Rows with a NULL in a used
    nullable column are left out of the analysis.
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"data file {p} does not exist")
    reader = "read_parquet" if p.suffix.lower() in (".parquet", ".pq") else "read_csv_auto"
    con = duckdb.connect()
    try:
        con.execute(f"CREATE VIEW rel AS SELECT * FROM {reader}('{_quote(str(p))}')")
        present = [r[0] for r in con.execute("DESCRIBE rel").fetchall()]
        missing = [c for c in columns if c not in present]
        if missing:
            raise DataError(f"{p.name}: missing columns {missing}")
        problems: list[str] = []
        out = {}
        exprs: dict[str, str] = {}
        checks: list[tuple[str, str, str]] = []  # (column, kind, SQL aggregate) - one scan for all
        for c in columns:
            col = schema.column(c)
            q = _ident(c)
            checks.append((c, "null", f"count(*) FILTER (WHERE {q} IS NULL)"))
            if col.type is ColumnType.CATEGORY:
                assert col.levels is not None
                levels = ", ".join("'" + _quote(v) + "'" for v in col.levels)
                checks.append((c, "level", f"count(*) FILTER (WHERE CAST({q} AS VARCHAR) NOT IN ({levels}))"))
                cases = " ".join(f"WHEN '{_quote(v)}' THEN {i}" for i, v in enumerate(col.levels))
                exprs[c] = f"CAST(CASE CAST({q} AS VARCHAR) {cases} END AS DOUBLE)"
            else:
                lo, hi = col.bounds
                checks.append((c, "bounds", f"count(*) FILTER (WHERE CAST({q} AS DOUBLE) < {lo!r} "
                                            f"OR CAST({q} AS DOUBLE) > {hi!r})"))
                exprs[c] = f"CAST({q} AS DOUBLE)"
        counts = con.execute("SELECT " + ", ".join(sql for _, _, sql in checks) + " FROM rel").fetchone()
        for (c, kind, _), k in zip(checks, counts):
            col = schema.column(c)
            if not k:
                continue
            if kind == "null" and not col.nullable:
                problems.append(f"column {c!r}: {k} rows are NULL but the column is not nullable")
            elif kind == "level":
                problems.append(f"column {c!r}: {k} rows hold a value that is not a declared level")
            elif kind == "bounds":
                problems.append(f"column {c!r}: {k} rows outside the declared bounds {list(col.bounds)}")
        if problems:
            raise DataError(f"{p.name}: " + "; ".join(problems))
        select = ", ".join(f"{exprs[c]} AS {_ident(c)}" for c in columns)
        where = " AND ".join(f"{_ident(c)} IS NOT NULL" for c in columns)
        arr = con.execute(f"SELECT {select} FROM rel WHERE {where}").fetchnumpy()
        for c, key in zip(columns, arr):
            out[c] = np.asarray(arr[key], dtype=np.float64)
        return out
    except duckdb.Error as e:
        raise DataError(f"{p.name}: the local engine could not read it ({type(e).__name__})") from None
    finally:
        con.close()


def _quote(s: str) -> str:
    return s.replace("'", "''")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
