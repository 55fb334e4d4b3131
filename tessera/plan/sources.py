"""Reading a party's own data for a job: the local engine reads the file and checks it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import numpy as np

from tessera.data.schema import ColumnType, Schema
from tessera.errors import DataError

__all__ = ["load_columns", "LocalColumns"]


class LocalColumns(Mapping[str, np.ndarray]):
    """A party's validated columns: read lazily as float64 arrays, or reduced in DuckDB.

    Booleans become 0/1 and categories the index of their level. Values outside the declared
    bounds, NULLs in non-nullable columns and unknown category levels are refused with a
    DataError naming the column and the count (never the values). Rows with a NULL in a used
    nullable column are left out of the analysis.
    """

    def __init__(self, path: str, schema: Schema, columns: list[str]) -> None:
        p = Path(path)
        if not p.is_file():
            raise DataError(f"data file {p} does not exist")
        self._name = p.name
        self._columns = list(columns)
        self._arrays: dict[str, np.ndarray] | None = None
        reader = "read_parquet" if p.suffix.lower() in (".parquet", ".pq") else "read_csv_auto"
        self._con = duckdb.connect()
        try:
            self._con.execute(f"CREATE VIEW rel AS SELECT * FROM {reader}('{_quote(str(p))}')")
            present = [r[0] for r in self._con.execute("DESCRIBE rel").fetchall()]
            missing = [c for c in columns if c not in present]
            if missing:
                raise DataError(f"{p.name}: missing columns {missing}")
            exprs = self._check(schema, columns)
            select = ", ".join(f"{exprs[c]} AS {_ident(c)}" for c in columns) or "1 AS one"
            where = " AND ".join(f"{_ident(c)} IS NOT NULL" for c in columns) or "TRUE"
            self._con.execute(f"CREATE VIEW used AS SELECT {select} FROM rel WHERE {where}")
        except duckdb.Error as e:
            self._con.close()
            raise DataError(f"{p.name}: the local engine could not read it ({type(e).__name__})") from None
        except DataError:
            self._con.close()
            raise

    def _check(self, schema: Schema, columns: list[str]) -> dict[str, str]:
        problems: list[str] = []
        exprs: dict[str, str] = {}
        checks: list[tuple[str, str, str]] = []  # (column, kind, SQL aggregate): one scan for all
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
                num = f"TRY_CAST({q} AS DOUBLE)"
                checks.append((c, "type", f"count(*) FILTER (WHERE {q} IS NOT NULL AND {num} IS NULL)"))
                checks.append((c, "bounds", f"count(*) FILTER (WHERE {num} < {lo!r} OR {num} > {hi!r})"))
                if col.type is ColumnType.INT:
                    checks.append((c, "integer", f"count(*) FILTER (WHERE {num} != round({num}))"))
                exprs[c] = f"CAST({q} AS DOUBLE)"
        if checks:
            counts = self._con.execute("SELECT " + ", ".join(sql for _, _, sql in checks) + " FROM rel").fetchone()
            for (c, kind, _), k in zip(checks, counts):
                col = schema.column(c)
                if not k:
                    continue
                if kind == "null" and not col.nullable:
                    problems.append(f"column {c!r}: {k} rows are NULL but the column is not nullable")
                elif kind == "level":
                    problems.append(f"column {c!r}: {k} rows hold a value that is not a declared level")
                elif kind == "type":
                    problems.append(f"column {c!r}: {k} rows are not numbers (declared {col.type.value})")
                elif kind == "integer":
                    problems.append(f"column {c!r}: {k} rows are not whole numbers (declared int)")
                elif kind == "bounds":
                    problems.append(f"column {c!r}: {k} rows outside the declared bounds {list(col.bounds)}")
        if problems:
            raise DataError(f"{self._name}: " + "; ".join(problems))
        return exprs

    def aggregate(self, exprs: list[str]) -> np.ndarray:
        """SQL aggregate expressions over the validated rows (column names double-quoted), in
        one scan, as float64 values."""
        row = self._con.execute("SELECT " + ", ".join(exprs) + " FROM used").fetchone()
        return np.array([np.nan if v is None else float(v) for v in row], dtype=np.float64)

    def _load(self) -> dict[str, np.ndarray]:
        if self._arrays is None:
            data = self._con.execute("SELECT * FROM used").fetchnumpy()
            self._arrays = {c: np.asarray(data[c], dtype=np.float64) for c in self._columns}
        return self._arrays

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._columns:
            raise KeyError(key)
        return self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def close(self) -> None:
        self._con.close()


def load_columns(path: str, schema: Schema, columns: list[str]) -> dict[str, np.ndarray]:
    """The named columns of a CSV or Parquet file as float64 arrays, checked against ``schema``
    (see :class:`LocalColumns`)."""
    table = LocalColumns(path, schema, columns)
    try:
        return {c: table[c] for c in columns}
    finally:
        table.close()


def _quote(s: str) -> str:
    return s.replace("'", "''")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
