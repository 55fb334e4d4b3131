"""The local engine: a party's own rows, loaded and checked in DuckDB, reduced in place.

(Or in a Spark cluster: :func:`load` of a :class:`~tessera.data.sources.SparkSource` runs the same
checks and reductions there, :mod:`tessera.data.spark`; a :class:`LocalTable` runs its SQL on an
:class:`~tessera.data.engine.Engine`, and :mod:`tessera.data.reductions` writes it once for both.)

``load(source, schema)`` reads a :data:`~tessera.data.sources.Source` (DataFrame, CSV or
Parquet path, or :class:`~tessera.data.sources.SqlSource`), keeps the schema's columns (and an
optional key column of identifiers), checks every row against the schema in one DuckDB scan, and
returns a :class:`LocalTable`. A violation raises :class:`~tessera.errors.DataError` naming
every offending column, the kind of problem and the number of rows — never a value
(:mod:`tessera.data.checks` lists the kinds).

Values, as every method returns them: float and int columns as float64; bool as 0.0 / 1.0;
category as the int64 index of its level in the declared ``levels``.

**NULLs.** A NULL (or NaN) is allowed only in a column declared ``nullable``. A reduction
(:meth:`LocalTable.sums`) leaves out the rows with a NULL in any column *it uses* (listwise
deletion) and reports how many it left out (``dropped``); the mapping view (``table[name]``)
uses the rows complete in every loaded column. ``arrays(..., nulls="keep")`` keeps every row
(NaN, or -1 for a category).

**Speed** (10^7 rows x 10 float columns from Parquet, 2 cores): the check scan takes about
0.4 s and count, sum and sum of squares of all columns about 0.4 s more; both run inside DuckDB
and no row reaches Python. Pulling all ten columns into numpy costs 1-2 s. A Parquet file or DataFrame is rescanned by each query (scans are cheap); a CSV
file or a SQL query is read once and its checked values kept in DuckDB (``materialize``).

**Freshness.** What was checked is what is used: a file scanned in place is refused if its
size or modification time changed since ``load`` (load it again); a CSV or SQL source is
copied. A DataFrame is scanned in place too and cannot be watched: do not change it while its
table is open, or pass ``materialize=True`` to copy the checked rows into DuckDB.

DuckDB's statistics-propagation optimiser is switched off on these connections: it trusts
Parquet min/max statistics that leave out NaN and would fold ``isnan(x)`` to false, hiding NaNs
from the checks (seen with DuckDB 2.0). Object-dtype DataFrame columns are read as text.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import numpy.typing as npt

from tessera.data._sql import ident, number, text
from tessera.data.checks import ColumnSql, Violation, column_sql, key_sql, violation_detail
from tessera.data.engine import Engine
from tessera.data.onehot import base_columns, indicator_of, with_indicators
from tessera.data.reductions import (
    Family,
    GlmDerivatives,
    GlmDesign,
    contingency_sql,
    cross_products_sql,
    glm_design_sql,
    glm_result,
    glm_sql,
    gram_result,
    histogram_sql,
)
from tessera.data.results import Sums, ValidationReport
from tessera.data.schema import ColumnType, Schema
from tessera.data.sources import Source, SparkSource, attach, describe_source
from tessera.data.spark import load_spark
from tessera.errors import DataError

__all__ = ["LocalTable", "Values", "load", "validate", "write_parquet", "glm_blocks", "GLM_MEMORY"]

#: Above this many bytes of design matrix, :meth:`LocalTable.glm_derivatives` scans in SQL
#: at every iterate instead of keeping the matrix in memory.
GLM_MEMORY = 4 * 2**30


def glm_blocks(design: npt.NDArray[np.float64], beta: npt.NDArray[np.float64], family: Family,
               offset: float = 0.0) -> GlmDerivatives:
    """:func:`tessera.data.reductions.glm_sql`'s sums over a design matrix ``[1, x, y]`` in numpy
    (:class:`~tessera.data.reductions.GlmDesign`'s cache-sized blocks)."""
    k = design.shape[1] - 1
    return GlmDesign([design[:, j] for j in range(1, k)], design[:, k]).derivatives(beta, family, offset)

#: A loaded column: float64 values (float, int, bool columns) or int64 level indices (category).
Values = npt.NDArray[np.float64] | npt.NDArray[np.int64]

_SRC, _RAW, _DATA = "tessera_source", "tessera_raw", "tessera_data"
_SAFE_ENGINE_ERRORS = (duckdb.ParserException, duckdb.CatalogException, duckdb.BinderException)


def _engine_error(label: str, exc: duckdb.Error) -> DataError:
    """A DataError for a DuckDB failure. Messages of errors about the query text (parser,
    catalog, binder) are kept; others (conversion, invalid input) may quote data and are not."""
    detail = f": {exc}" if isinstance(exc, _SAFE_ENGINE_ERRORS) else " (details withheld: they may quote data)"
    return DataError(f"{label}: the local engine could not read it, {type(exc).__name__}{detail}")


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET disabled_optimizers = 'statistics_propagation'")
    # object columns of a DataFrame are read through their text form, whatever their first
    # values look like (sampling them could pick BOOLEAN and then fail on a 7, quoting it)
    con.execute("SET pandas_analyze_sample = 0")
    return con


def _check(
    con: duckdb.DuckDBPyConnection, source: Source, schema: Schema, columns: list[str],
    key: str | None, max_rows: int | None, label: str, materialize: bool | None,
) -> tuple[ValidationReport, dict[str, ColumnSql], str, bool]:
    """Attach ``source``, count every violation in one scan; returns the report, the SQL of each
    present column, the relation the checks ran over and whether to keep the values in DuckDB."""
    kind = attach(con, source, _SRC)
    # CSV is slow to parse and a query may be costly: by default both are read once into DuckDB
    # (the checks and the conversion read that copy); DataFrames and Parquet are scanned in place.
    copy = kind in ("csv", "sql") if materialize is None else materialize
    described = con.execute(f"DESCRIBE {ident(_SRC)}").fetchall()
    types = {str(r[0]): str(r[1]) for r in described}
    wanted = columns + ([key] if key is not None else [])
    violations = [Violation(c, "missing", 0) for c in wanted if c not in types]
    sql = {c: column_sql(schema.column(c), c, types[c]) for c in columns if c in types}
    if key is not None and key in types:
        sql[key] = key_sql(key)
    base = _SRC
    if copy and kind in ("csv", "sql"):
        present = ", ".join(ident(c) for c in wanted if c in types) or "1 AS tessera_one"
        con.execute(f"CREATE TEMP TABLE {ident(_RAW)} AS SELECT {present} FROM {ident(_SRC)}")
        base = _RAW
    checks = [(c, what, cond) for c, s in sql.items() for what, cond in s.checks]
    aggs = ["count(*)"] + [f"count_if({cond})" for _, _, cond in checks]
    (counts,) = con.execute(f"SELECT {', '.join(aggs)} FROM {ident(base)}").fetchall()
    n_rows = int(counts[0])
    for (c, what, _), k in zip(checks, counts[1:]):
        if k:  # count_if over no rows is NULL
            col = schema.column(c) if c != key else None
            violations.append(Violation(c, what, int(k), violation_detail(col, what)))
    if max_rows is not None and n_rows > max_rows:
        violations.append(Violation("", "rows", n_rows - max_rows, str(max_rows)))
    return ValidationReport(label, n_rows, tuple(violations)), sql, base, copy


def _stamp(source: Source) -> tuple[str, int, int] | None:
    """(path, size, modification time) of a file source, to notice it being replaced later."""
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_file():
            st = path.stat()
            return (str(path), st.st_size, st.st_mtime_ns)
    return None


def _columns_of(schema: Schema, columns: Sequence[str] | None, key: str | None) -> list[str]:
    cols = list(schema.names if columns is None else columns)
    unknown = [c for c in cols if c not in schema and indicator_of(schema, c) is None]
    if unknown:
        raise DataError(f"columns {unknown} are not in the schema; declared columns are {schema.names}")
    if len(set(cols)) != len(cols):
        raise DataError(f"columns {cols} name a column twice")
    if key is not None and key in cols:
        raise DataError(f"the key column {key!r} holds identifiers, not values: leave it out of the columns")
    return cols


def validate(
    source: Source, schema: Schema, columns: Sequence[str] | None = None, *, key: str | None = None,
    max_rows: int | None = None, name: str | None = None,
) -> ValidationReport:
    """Check ``source`` against ``schema`` (the named ``columns``, default all) without loading
    it; the report lists every violation. Raises DataError only if the source cannot be read."""
    cols = base_columns(schema, _columns_of(schema, columns, key))
    label = name or describe_source(source)
    if isinstance(source, SparkSource):
        engine, spark_report, _ = load_spark(source, schema, cols, key, max_rows, label)
        engine.close()
        return spark_report
    con = _connect()
    try:
        report, _, _, _ = _check(con, source, schema, cols, key, max_rows, label, materialize=False)
        return report
    except duckdb.Error as e:
        raise _engine_error(label, e) from None
    finally:
        con.close()


def load(
    source: Source, schema: Schema, columns: Sequence[str] | None = None, *, key: str | None = None,
    max_rows: int | None = None, name: str | None = None, materialize: bool | None = None,
) -> LocalTable:
    """Load and check a party's rows; see the module docstring for the sources and the rules.

    ``columns`` (default: every schema column) are the columns this party holds and an analysis
    may use; other source columns are ignored. A column may be an indicator ``col[level]`` of a
    categorical column (:mod:`tessera.data.onehot`): 1.0 where ``col`` is ``level``, else 0.0,
    loaded as a ``bool`` column after ``col`` is checked. ``key`` names a column of row identifiers (for
    vertical partitioning and PSI), read as text, never NULL, outside the schema. ``max_rows``
    is the declared bound on the row count (overflow planning relies on it). ``name`` labels
    messages (default: the file name). ``materialize`` keeps the checked values in DuckDB
    (default: for CSV and SQL sources only). Raises DataError listing every violation.
    """
    cols = _columns_of(schema, columns, key)
    label = name or describe_source(source)
    if isinstance(source, SparkSource):  # checked and reduced in the cluster
        engine, spark_report, relation = load_spark(source, schema, cols, key, max_rows, label, materialize)
        if not spark_report.ok:
            engine.close()
            spark_report.raise_for_violations()
        return LocalTable(engine, label, schema.select(cols), key, spark_report.n_rows, relation=relation)
    stamp = _stamp(source)  # before the checks, so a change during them is noticed too
    con = _connect()
    try:
        report, sql, base, copy = _check(con, source, schema, base_columns(schema, cols), key, max_rows, label,
                                         materialize)
        report.raise_for_violations()
        select = [f"{_value(schema, sql, c)} AS {ident(c)}" for c in cols]
        if key is not None:
            select.append(f"{sql[key].value} AS {ident(key)}")
        body = f"SELECT {', '.join(select) or '1 AS tessera_one'} FROM {ident(base)}"
        con.execute(f"CREATE TEMP {'TABLE' if copy else 'VIEW'} {ident(_DATA)} AS {body}")
        if base == _RAW:
            con.execute(f"DROP TABLE {ident(_RAW)}")
    except duckdb.Error as e:
        con.close()
        raise _engine_error(label, e) from None
    except BaseException:
        con.close()
        raise
    return LocalTable(con, label, with_indicators(schema, cols).select(cols), key, report.n_rows, source,
                      None if copy else stamp)


def _value(schema: Schema, sql: Mapping[str, ColumnSql], name: str) -> str:
    """The value expression of a loaded column: its checked value, or for an indicator
    (:mod:`tessera.data.onehot`) 1.0 / 0.0 by its categorical column's level index (NULL stays NULL)."""
    ind = indicator_of(schema, name)
    if ind is None:
        return sql[name].value
    column, index = ind
    return f"CAST(({sql[column].value}) = {index} AS DOUBLE)"


class DuckEngine:
    """The embedded engine: one DuckDB connection per table (:class:`~tessera.data.engine.Engine`)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def fetch(self, sql: str, label: str) -> list[tuple[Any, ...]]:
        try:  # fetchall, not fetchone: DuckDB 2 refuses new work while a result is unfinished
            return self.con.execute(sql).fetchall()
        except duckdb.Error as e:
            raise _engine_error(label, e) from None

    def numpy(self, sql: str, label: str) -> dict[str, Any]:
        try:  # a relation's fetchnumpy is ~2x faster than a DB-API cursor's (no extra copy)
            return dict(self.con.sql(sql).fetchnumpy())
        except duckdb.Error as e:
            raise _engine_error(label, e) from None

    def close(self) -> None:
        self.con.close()


class LocalTable(Mapping[str, Values]):
    """A party's checked rows in its local engine (made by :func:`load`; close it when done,
    or use it as a context manager). One thread at a time.

    As a mapping, ``table[name]`` is a loaded column's values over the rows complete in every
    loaded column (so all columns line up), and ``len(table)`` the number of columns; the row
    count is :attr:`n_rows`.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection | Engine, name: str, schema: Schema, key: str | None,
                 n_rows: int, source: Source | None = None, stamp: tuple[str, int, int] | None = None,
                 relation: str | None = None) -> None:
        self._engine: Engine = DuckEngine(con) if isinstance(con, duckdb.DuckDBPyConnection) else con
        self._source = source  # a registered DataFrame must outlive the connection's scans
        self._stamp = stamp  # a file scanned in place: its size and time when it was checked
        self.name = name
        self.schema = schema
        self.key = key
        self.n_rows = n_rows
        self._cache: dict[str, Values] | None = None
        #: the checked rows as the engine names them in SQL
        self._relation = relation or ident(_DATA)
        self._design: tuple[tuple[object, ...], GlmDesign] | None = None

    # -- metadata ---------------------------------------------------------------------------
    @property
    def columns(self) -> list[str]:
        """The loaded schema columns, in order."""
        return self.schema.names

    def _cols(self, columns: Sequence[str] | str | None) -> list[str]:
        if columns is None:
            return self.columns
        cols = [columns] if isinstance(columns, str) else list(columns)
        unknown = [c for c in cols if c not in self.schema]
        if unknown:
            raise DataError(f"{self.name}: columns {unknown} were not loaded; loaded columns are {self.columns}")
        return cols

    def _guard(self) -> None:
        if self._stamp is not None and _stamp(self._stamp[0]) != self._stamp:
            raise DataError(f"{self.name}: the file changed after it was loaded and checked; load it again")

    def _fetch(self, sql: str) -> list[tuple[Any, ...]]:
        self._guard()
        return self._engine.fetch(sql, self.name)

    def _numpy(self, sql: str) -> dict[str, Any]:
        self._guard()
        return self._engine.numpy(sql, self.name)

    def _where(self, cols: Sequence[str]) -> str:
        # only nullable columns can hold a NULL once the table is checked
        return " AND ".join(f"{ident(c)} IS NOT NULL" for c in cols if self.schema.column(c).nullable) or "TRUE"

    def _one(self, exprs: Sequence[str], cols: Sequence[str]) -> tuple[Any, ...]:
        (row,) = self._fetch(f"SELECT {', '.join(exprs)} FROM {self._relation} WHERE {self._where(cols)}")
        return row

    def count(self, columns: Sequence[str] | None = None) -> int:
        """Rows with no NULL in ``columns`` (default: every loaded column)."""
        return int(self._one(["count(*)"], self._cols(columns))[0])

    # -- rows as numpy ----------------------------------------------------------------------
    def arrays(self, columns: Sequence[str] | None = None, *,
               nulls: Literal["drop", "keep"] = "drop") -> dict[str, Values]:
        """The values of ``columns`` (default all loaded) as numpy arrays in row order: float64,
        or int64 level indices for categories. ``nulls="drop"`` keeps the rows complete in all
        of ``columns``; ``"keep"`` keeps every row, NULL as NaN (-1 for a category)."""
        cols = self._cols(columns)
        if not cols:
            return {}
        where = self._where(cols) if nulls == "drop" else "TRUE"
        sel = ", ".join(ident(c) for c in cols)
        data = self._numpy(f"SELECT {sel} FROM {self._relation} WHERE {where}")
        out: dict[str, Values] = {}
        for c in cols:
            a = data[c]
            if self.schema.column(c).type is ColumnType.CATEGORY:
                out[c] = (np.ma.filled(a.astype(np.int64), -1) if isinstance(a, np.ma.MaskedArray)
                          else np.asarray(a, dtype=np.int64))
            else:
                out[c] = (np.ma.filled(a.astype(np.float64), np.nan) if isinstance(a, np.ma.MaskedArray)
                          else np.asarray(a, dtype=np.float64))
        return out

    def mask(self, columns: Sequence[str] | None = None) -> npt.NDArray[np.bool_]:
        """Per row (in order), whether it is complete in ``columns``: the rows ``arrays`` keeps."""
        cols = self._cols(columns)
        res = self._numpy(f"SELECT ({self._where(cols)}) AS ok FROM {self._relation}")
        return np.asarray(res["ok"], dtype=bool)

    def ids(self, complete_in: Sequence[str] = ()) -> npt.NDArray[np.object_]:
        """The key column's identifiers (strings, object array) of the rows complete in
        ``complete_in`` (default: every row), aligned with ``arrays(complete_in)``. (Not ``keys``:
        that is the mapping's column names.)"""
        if self.key is None:
            raise DataError(f"{self.name}: no key column was loaded; pass key= to load()")
        cols = self._cols(complete_in) if complete_in else []
        res = self._numpy(f"SELECT {ident(self.key)} FROM {self._relation} WHERE {self._where(cols)}")
        return np.asarray(res[self.key], dtype=object)

    def __getitem__(self, name: str) -> Values:
        if name not in self.schema:
            raise KeyError(name)
        if self._cache is None:
            self._cache = self.arrays()
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    # -- reductions inside DuckDB -------------------------------------------------------------
    def _expr(self, c: str, scaling: Mapping[str, tuple[float, float]] | None) -> str:
        if scaling is not None and c in scaling:
            center, half = scaling[c]
            return f"(({ident(c)} - {number(center)}) / {number(half)})"
        return ident(c)

    def sums(self, columns: Sequence[str] | None = None, *,
             scaling: Mapping[str, tuple[float, float]] | None = None) -> Sums:
        """Count, and per column sum, sum of squares, min and max, in one scan. ``scaling``
        maps a column to ``(center, half)``: its values become ``(x - center) / half`` first."""
        cols = self._cols(columns)
        e = [self._expr(c, scaling) for c in cols]
        row = self._one(["count(*)"] + [f"sum({x})" for x in e] + [f"sum({x} * {x})" for x in e]
                        + [f"min({x})" for x in e] + [f"max({x})" for x in e], cols)
        n, p = int(row[0]), len(cols)
        v = np.array([np.nan if x is None else float(x) for x in row[1:]], dtype=np.float64).reshape(4, p)
        return Sums(tuple(cols), n, np.nan_to_num(v[0]), np.nan_to_num(v[1]), v[2], v[3], self.n_rows - n)

    def cross_products(self, columns: Sequence[str] | None = None, *,
                       scaling: Mapping[str, tuple[float, float]] | None = None) -> tuple[int, npt.NDArray[np.float64]]:
        """``(n, Z'Z)`` for ``Z = [1, columns]`` (scaled by ``scaling`` where it names a column) over
        the rows complete in ``columns``, in one scan inside the engine (``Z'Z[0, 0] = n``)."""
        cols = self._cols(columns)
        (row,) = self._fetch(cross_products_sql(self._relation, cols, scaling, self._where(cols)))
        return gram_result(row, len(cols) + 1)

    def histogram(self, column: str, edges: Sequence[float]) -> npt.NDArray[np.int64]:
        """Rows of ``column`` per public bin, as ``numpy.histogram(values, bins=edges)`` (the last
        bin closed; values outside the edges and NULLs are not counted), inside the engine."""
        (col,) = self._cols(column)
        (row,) = self._fetch(histogram_sql(self._relation, col, edges, self._where([col])))
        return np.array([int(v or 0) for v in row], dtype=np.int64)

    def _levels(self, column: str) -> int:
        col = self.schema.column(column)
        if col.type is ColumnType.BOOL:
            return 2
        if col.type is ColumnType.CATEGORY and col.levels is not None:
            return len(col.levels)
        raise DataError(f"{self.name}: a contingency table needs category or bool columns, not {column!r}")

    def contingency(self, a: str, b: str) -> npt.NDArray[np.int64]:
        """Rows per pair of levels of the category (or bool: 0, 1) columns ``a`` and ``b`` (levels x
        levels, in declared order; rows with a NULL in either left out), inside the engine."""
        ca, cb = self._cols([a, b])
        out = np.zeros((self._levels(ca), self._levels(cb)), dtype=np.int64)
        for i, j, k in self._fetch(contingency_sql(self._relation, ca, cb, self._where([ca, cb]))):
            out[int(i), int(j)] = int(k)
        return out

    def glm_derivatives(self, features: Sequence[str], target: str, beta: Sequence[float], family: Family, *,
                        scaling: Mapping[str, tuple[float, float]] | None = None, target_scale: float = 1.0,
                        offset: float = 0.0) -> GlmDerivatives:
        """A GLM's gradient and Hessian over this party's rows at the public iterate ``beta``
        (:func:`tessera.data.reductions.glm_sql` says what is summed). DuckDB: the scaled features
        and target are read into numpy once (8 bytes x rows x (features + 1), kept for the next
        iterates) and reduced in cache-sized blocks (:class:`~tessera.data.reductions.GlmDesign`);
        above :data:`GLM_MEMORY` bytes, and in any other engine (Spark), every iterate is one SQL
        scan instead."""
        design = self._glm_design(features, target, scaling, target_scale)
        if design is None:
            cols = self._cols([*features, target])
            sql = glm_sql(self._relation, features, target, beta, family, scaling, target_scale, offset,
                          self._where(cols))
            (row,) = self._fetch(sql)
            return glm_result(row, len(features) + 1)
        self._guard()
        return design.derivatives(np.asarray(beta, dtype=np.float64), family, offset)

    def glm_totals(self, features: Sequence[str], target: str, *,
                   scaling: Mapping[str, tuple[float, float]] | None = None,
                   target_scale: float = 1.0) -> tuple[int, float]:
        """The rows :meth:`glm_derivatives` sums over (complete in ``features`` and ``target``) and
        their sum of ``target / target_scale``. DuckDB below :data:`GLM_MEMORY`: read with the
        design :meth:`glm_derivatives` keeps (no scan of its own); otherwise one scan."""
        design = self._glm_design(features, target, scaling, target_scale)
        if design is not None:
            return design.n, design.y_sum
        used = self.sums([*features, target])
        return used.count, float(used.sum[-1]) / target_scale

    def _glm_design(self, features: Sequence[str], target: str, scaling: Mapping[str, tuple[float, float]] | None,
                    target_scale: float) -> GlmDesign | None:
        """The kept design of these columns (read on first use), or None where each iterate is a scan."""
        cols = self._cols([*features, target])
        if not isinstance(self._engine, DuckEngine) or 8 * self.n_rows * (len(features) + 1) > GLM_MEMORY:
            return None
        key = (tuple(features), target, tuple(sorted((scaling or {}).items())), target_scale)
        if self._design is None or self._design[0] != key:
            self._design = None
            sql = glm_design_sql(self._relation, list(features), target, scaling, target_scale, self._where(cols))
            self._design = (key, GlmDesign.from_arrays(self._numpy(sql), len(features) + 1))
        return self._design[1]

    # -- lifetime -------------------------------------------------------------------------------
    def close(self) -> None:
        """Release the engine's connection (and the values kept in it)."""
        self._engine.close()
        self._cache = None
        self._design = None

    def __enter__(self) -> LocalTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalTable({self.name!r}, rows={self.n_rows}, columns={self.columns}, key={self.key!r})"


def write_parquet(frame: Any, path: str | os.PathLike[str]) -> str:
    """Write a pandas DataFrame to a Parquet file with DuckDB (no pyarrow needed); returns the path.
    Column types are DuckDB's own reading of the frame (not the checked loader's text-first one)."""
    con = duckdb.connect()
    try:
        con.register("tessera_frame", frame)
        con.execute(f"COPY tessera_frame TO {text(str(path))} (FORMAT PARQUET)")
    finally:
        con.close()
    return str(path)
