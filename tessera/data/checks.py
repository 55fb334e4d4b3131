"""Checking a source's columns against the schema, inside DuckDB.

For every schema column this module writes two pieces of SQL from the column's declaration and
the type DuckDB reads it as: the *value* expression (float64 for float, int and bool columns,
bool as 0/1; the level index for a category; NULL where the value is missing) and the
*conditions* that make a row invalid. All conditions of all columns are counted in one scan
(``count_if``), so only counts ever leave DuckDB — never a value.

Kinds of violation (:class:`Violation.kind`):

``missing``  the column is not in the source
``type``     text (or another type) that does not read as a number, in a float or int column
``null``     NULL (or NaN, which counts as missing) in a column not declared nullable
``bounds``   a number outside the declared ``[min, max]`` (infinities included)
``integer``  a number that is not whole, in an int column
``bool``     a value other than 0, 1, true, false (any case), in a bool column
``level``    a value that is not one of the declared levels, in a category column
``key``      a NULL identifier in the key column
``rows``     more rows than the declared bound on the row count
"""

from __future__ import annotations

from dataclasses import dataclass

from tessera.data._sql import ident, number, text
from tessera.data.schema import Column, ColumnType

__all__ = ["Violation", "ColumnSql", "column_sql", "key_sql", "violation_detail", "format_violations", "row_count_problem"]

_INT_TYPES = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
              "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT"}
_FLOAT_TYPES = {"FLOAT", "DOUBLE", "REAL"}


@dataclass(frozen=True)
class Violation:
    """One kind of problem in one column, with the number of rows that have it (never values)."""

    column: str
    kind: str
    rows: int
    detail: str = ""

    def describe(self) -> str:
        """The problem without the column name, e.g. ``2 rows with a value outside ...``."""
        n = f"{self.rows} row" + ("" if self.rows == 1 else "s")
        return {
            "missing": "missing from the source",
            "type": f"{n} with a value that is not a number ({self.detail})",
            "null": f"{n} with NULL or NaN, but the column is not nullable",
            "bounds": f"{n} with a value outside the declared bounds {self.detail}",
            "integer": f"{n} with a value that is not a whole number (declared int)",
            "bool": f"{n} with a value that is not a boolean (0, 1, true or false)",
            "level": f"{n} with a value that is not one of the {self.detail} declared levels",
            "key": f"{n} with no identifier (NULL) in the key column",
            "rows": f"{n} beyond the declared bound of {self.detail} rows",
        }[self.kind]

    def message(self) -> str:
        return self.describe() if self.kind == "rows" else f"column {self.column!r}: {self.describe()}"


@dataclass(frozen=True)
class ColumnSql:
    """How one schema column reads from its source column ``q``: the value expression and the
    (kind, condition) pairs whose rows are invalid."""

    value: str
    checks: tuple[tuple[str, str], ...]


def _family(duck_type: str) -> str:
    t = duck_type.upper()
    if t in _INT_TYPES:
        return "int"
    if t in _FLOAT_TYPES:
        return "float"
    if t.startswith("DECIMAL") or t.startswith("NUMERIC"):
        return "decimal"
    if t == "BOOLEAN":
        return "bool"
    return "text"  # VARCHAR, ENUM and anything else: read through its text form


def column_sql(col: Column, source_name: str, duck_type: str) -> ColumnSql:
    """The value expression and invalid-row conditions for ``col`` read from the source column
    ``source_name`` of DuckDB type ``duck_type``."""
    q = ident(source_name)
    fam = _family(duck_type)
    checks: list[tuple[str, str]] = []
    if col.type in (ColumnType.FLOAT, ColumnType.INT):
        if fam in ("int", "decimal", "bool"):
            v = f"CAST({q} AS DOUBLE)"
        elif fam == "float":
            v = f"(CASE WHEN isnan({q}) THEN NULL ELSE CAST({q} AS DOUBLE) END)"
        else:
            num = f"TRY_CAST(CAST({q} AS VARCHAR) AS DOUBLE)"
            checks.append(("type", f"{q} IS NOT NULL AND {num} IS NULL"))
            v = f"(CASE WHEN isnan({num}) THEN NULL ELSE {num} END)"
        lo, hi = col.bounds
        checks.append(("bounds", f"{v} < {number(lo)} OR {v} > {number(hi)}"))
        if col.type is ColumnType.INT and fam != "int":
            checks.append(("integer", f"{v} <> round({v})"))
        if col.nullable:
            return ColumnSql(v, tuple(checks))
        checks.append(("null", f"{v} IS NULL" if fam != "text" else
                       f"{q} IS NULL OR isnan(TRY_CAST(CAST({q} AS VARCHAR) AS DOUBLE))"))
        # once checked, a non-nullable numeric column holds no NULL and no NaN: a plain cast
        return ColumnSql(f"CAST({q} AS DOUBLE)" if fam != "text" else v, tuple(checks))
    if col.type is ColumnType.BOOL:
        if fam == "bool":
            v = f"CAST({q} AS DOUBLE)"
            missing = f"{q} IS NULL"
        elif fam in ("int", "decimal", "float"):
            x = (f"(CASE WHEN isnan({q}) THEN NULL ELSE CAST({q} AS DOUBLE) END)" if fam == "float"
                 else f"CAST({q} AS DOUBLE)")
            checks.append(("bool", f"{x} NOT IN (0, 1)"))
            v = f"(CASE WHEN {x} IN (0, 1) THEN {x} END)"
            missing = f"{x} IS NULL"
        else:
            s = f"lower(trim(CAST({q} AS VARCHAR)))"
            v = f"(CASE {s} WHEN 'true' THEN 1.0 WHEN '1' THEN 1.0 WHEN 'false' THEN 0.0 WHEN '0' THEN 0.0 END)"
            checks.append(("bool", f"{q} IS NOT NULL AND {v} IS NULL"))
            missing = f"{q} IS NULL"
        if not col.nullable:
            checks.append(("null", missing))
        return ColumnSql(v, tuple(checks))
    assert col.levels is not None
    s = f"CAST({q} AS VARCHAR)"
    cases = " ".join(f"WHEN {text(level)} THEN {i}" for i, level in enumerate(col.levels))
    v = f"(CASE {s} {cases} END)"
    checks.append(("level", f"{q} IS NOT NULL AND {v} IS NULL"))
    if not col.nullable:
        checks.append(("null", f"{q} IS NULL"))
    return ColumnSql(f"CAST({v} AS BIGINT)", tuple(checks))


def key_sql(source_name: str) -> ColumnSql:
    """The key column as text; a NULL identifier is a violation."""
    q = ident(source_name)
    return ColumnSql(f"CAST({q} AS VARCHAR)", (("key", f"{q} IS NULL"),))


def violation_detail(col: Column | None, kind: str) -> str:
    """The public part of a message: declared bounds, type or number of levels."""
    if col is None:
        return ""
    if kind == "bounds":
        lo, hi = col.bounds
        return f"[{lo!r}, {hi!r}]"
    if kind == "type":
        return f"declared {col.type.value}"
    if kind == "level":
        return str(len(col.levels or ()))
    return ""


def format_violations(label: str, violations: list[Violation]) -> str:
    """One message naming every offending column, each kind of problem and its row count."""
    missing = [v.column for v in violations if v.kind == "missing"]
    parts = [f"missing columns {missing}"] if missing else []
    by_column: dict[str, list[str]] = {}
    for v in violations:
        if v.kind == "rows":
            parts.append(v.describe())
        elif v.kind != "missing":
            by_column.setdefault(v.column, []).append(v.describe())
    parts += [f"column {c!r}: " + ", ".join(d) for c, d in by_column.items()]
    return f"{label}: " + "; ".join(parts)


def row_count_problem(label: str, n_rows: int, min_rows: int = 0, max_rows: int | None = None) -> str | None:
    """Why ``n_rows`` breaks the bounds a contract declares for a dataset (its size is the only
    thing named, never a value), or None. E.g. ``dataset 'tx' has 12 rows, the contract requires
    at least 100``."""
    rows = f"{n_rows} row" + ("" if n_rows == 1 else "s")
    if n_rows < min_rows:
        return f"{label} has {rows}, the contract requires at least {min_rows}"
    if max_rows is not None and n_rows > max_rows:
        return f"{label} has {rows}, the contract allows at most {max_rows}"
    return None
