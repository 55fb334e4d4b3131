"""Draft a schema from data: column types, nullability, categorical levels and round bounds.

``draft_schema(sources)`` reads one or more sources (DataFrames, CSV or Parquet paths, each read
by DuckDB with its type detection, as :mod:`tessera.data.frames` reads them, or SQL sources) and proposes the
:class:`~tessera.data.schema.Schema` that covers all of them: over several sources (one per party)
a column's type is the widest it has anywhere (bool < int < float), its levels the union of every
source's, its bounds the union of every source's range, and a column any source holds a NULL (or
NaN) in is ``nullable``. Columns some sources lack are drafted from the others (vertically
partitioned data: each party holds some of the columns).

* **types** — DuckDB BOOLEAN is ``bool``; integer types ``int``; floating and decimal types
  ``float``; text (and pandas categoricals) ``category`` when it has at most ``max_levels``
  distinct values, otherwise it is skipped (an identifier such as a join key is not a column
  of a schema) and the draft says so; dates, times and other types are skipped too.
* **levels** — a pandas categorical keeps its declared order; text levels are sorted. The first
  level is the reference level of a one-hot encoded feature.
* **bounds** — widened outward to a grid of *round* numbers: the grid step ``s`` is the
  smallest number of the 1-2-5 series (1, 2, 5 x 10^k) at least half the observed range, and
  the bounds are ``floor(min / s) s`` and ``ceil(max / s) s`` (a step of at least 1 for ``int``
  columns). So 3.2..987.1 becomes 0..1000, 18..90 becomes 0..100, 0.3..0.7 becomes 0.2..0.8,
  1990..2020 becomes 1980..2020, and a non-negative column never gets a negative lower bound.

Bounds and levels are *public* once they are in a contract (they fix encodings and every party
and analyst sees them); the exact observed minimum and maximum are never proposed, but the
draft is still derived from the data: :meth:`SchemaDraft.to_toml` writes a ``DRAFT`` header
saying the owners must review it before it goes into a contract.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from tessera.data._sql import ident
from tessera.data.schema import Column, ColumnType, Schema
from tessera.data.sources import (
    Source,
    SparkSource,
    SqlSource,
    _file_relation,
    attach,
    describe_source,
    is_frame,
)
from tessera.errors import DataError

__all__ = ["SchemaDraft", "draft", "draft_schema", "round_bounds", "DRAFT_HEADER"]

#: The comment block every drafted schema file starts with.
DRAFT_HEADER = """\
# DRAFT schema proposed by `tessera schema draft` from {sources}.
# REVIEW BEFORE USE: once this schema is in a contract its bounds and categorical levels are
# PUBLIC (every party and analyst sees them). They were derived from the data: the bounds are
# widened to round numbers (a 1-2-5 grid step of at least half the observed range),
# the levels are the values seen. The data owners must check every bound and level (widen
# bounds to what any future data may hold, drop levels that identify someone) and then delete
# this header.
"""

_ORDER = {ColumnType.BOOL: 0, ColumnType.INT: 1, ColumnType.FLOAT: 2}
_INT = {"TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
        "UHUGEINT"}
_FLOAT = {"FLOAT", "DOUBLE", "REAL"}


def _step(span: float) -> float:
    """The smallest number of the 1-2-5 series that is at least ``span`` (``span > 0``)."""
    e = math.floor(math.log10(span))
    for k in (e - 1, e, e + 1):
        for m in (1, 2, 5):
            s = m * 10.0**k
            if s >= span * (1 - 1e-12):
                return s
    return 10.0 ** (e + 2)  # not reached


def _clean(x: float) -> float:
    """``x`` without binary noise (``0.30000000000000004`` is 0.3); -0.0 is 0.0."""
    return float(f"{x:.12g}") + 0.0


def round_bounds(lo: float, hi: float, *, integer: bool = False) -> tuple[float, float]:
    """``[lo, hi]`` widened outward to multiples of a round step: the smallest 1-2-5 number
    (1, 2, 5 x 10^k) at least ``(hi - lo) / 2`` (for ``lo == hi``: half of ``|lo|``, or 1), and
    at least 1 for ``integer`` columns; a constant column gets one step above it. ``round_bounds(3.2, 987.1) == (0.0, 1000.0)``."""
    span = (hi - lo) / 2 if hi > lo else abs(lo) / 2
    s = _step(span) if span > 0 else 1.0
    if integer:
        s = max(s, 1.0)
    down = _clean(round(lo / s) * s)  # lo / s is 2.9999999999999996 for 0.3 / 0.1
    up = _clean(round(hi / s) * s)
    down = down if down <= lo else _clean(math.floor(lo / s) * s)
    up = up if up >= hi else _clean(math.ceil(hi / s) * s)
    return down, up if up > down else _clean(down + s)


@dataclass
class _Seen:
    """What one column looks like over the sources read so far."""

    type: ColumnType
    lo: float | None = None
    hi: float | None = None
    levels: list[str] = field(default_factory=list)
    ordered: bool = False  # levels from a pandas categorical: keep its order
    nullable: bool = False
    where: str = ""


@dataclass
class SchemaDraft:
    """A proposed schema, the columns left out (name -> why) and the sources it was drafted from."""

    schema: Schema
    skipped: dict[str, str]
    sources: list[str]

    def to_toml(self) -> str:
        """The draft as a schema file (``[[columns]]`` tables, as ``--schema`` reads it) under the
        ``DRAFT`` header; skipped columns are listed as comments."""
        out = [DRAFT_HEADER.format(sources=", ".join(self.sources))]
        for name, why in self.skipped.items():
            out.append(f"# skipped column {_toml_str(name)}: {why}\n")
        for c in self.schema.columns:
            out.append("\n[[columns]]\n")
            out.append(f"name = {_toml_str(c.name)}\n")
            for key, value in c.to_dict().items():
                out.append(f"{key} = {_toml_value(value)}\n")
        return "".join(out)


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return _toml_str(str(v))


def _kind(duck_type: str) -> ColumnType | None:
    t = duck_type.upper()
    if t == "BOOLEAN":
        return ColumnType.BOOL
    if t in _INT:
        return ColumnType.INT
    if t in _FLOAT or t.startswith("DECIMAL"):
        return ColumnType.FLOAT
    if t == "VARCHAR" or t.startswith("ENUM"):
        return ColumnType.CATEGORY
    return None


def _open(con: duckdb.DuckDBPyConnection, source: Source) -> None:
    if isinstance(source, (str, os.PathLike)):  # typed CSV: DuckDB's detection proposes the types
        con.execute(f"CREATE TEMP VIEW tessera_draft AS SELECT * FROM {_file_relation(Path(source), True)}")
    else:
        attach(con, source, "tessera_draft")


def _frame_order(source: Source, name: str) -> list[str] | None:
    """The declared categories of a pandas categorical column (None for any other column)."""
    if not is_frame(source):
        return None
    dtype = source[name].dtype
    cats = getattr(dtype, "categories", None)
    return None if cats is None else [str(c) for c in cats]


def _read(source: Source, label: str, max_levels: int, exclude: set[str],
          seen: dict[str, _Seen], skipped: dict[str, str]) -> set[str]:
    """Fold one source's columns into ``seen`` (and the columns it cannot draft into ``skipped``);
    returns the columns of no type (every value NULL, e.g. an object column of None)."""
    con = duckdb.connect()
    try:
        _open(con, source)
        described = [(str(r[0]), str(r[1])) for r in con.execute("DESCRIBE tessera_draft").fetchall()]
        untyped = set()
        for name, duck_type in described:
            if name in exclude:
                continue
            if duck_type.strip('"').upper() == "NULL":
                untyped.add(name)
                continue
            kind = _kind(duck_type)
            if kind is None:
                skipped[name] = f"{duck_type} values in {label} (only numbers, booleans and text are drafted)"
                continue
            q = ident(name)
            nan = f" OR isnan({q})" if duck_type.upper() in _FLOAT else ""
            if kind is ColumnType.CATEGORY:
                (n_null, n_distinct), = con.execute(
                    f"SELECT count_if({q} IS NULL), count(DISTINCT {q}) FROM tessera_draft").fetchall()
                if n_distinct > max_levels:
                    skipped[name] = (f"text with {n_distinct} distinct values in {label}, more than max_levels="
                                     f"{max_levels} (an identifier, or a category to group first?)")
                    continue
                order = _frame_order(source, name)
                present = sorted(str(r[0]) for r in con.execute(
                    f"SELECT DISTINCT CAST({q} AS VARCHAR) FROM tessera_draft WHERE {q} IS NOT NULL").fetchall())
                levels = [lv for lv in order if lv in present] if order is not None else present
                lo = hi = None
            else:
                (n_null, lo, hi), = con.execute(
                    f"SELECT count_if({q} IS NULL{nan}), min(CASE WHEN {q} IS NULL{nan} THEN NULL ELSE "
                    f"CAST({q} AS DOUBLE) END), max(CASE WHEN {q} IS NULL{nan} THEN NULL ELSE "
                    f"CAST({q} AS DOUBLE) END) FROM tessera_draft").fetchall()
                levels, order = [], None
            _fold(seen, skipped, name, label, kind, lo, hi, levels, order is not None, bool(n_null))
        return untyped
    except duckdb.Error as e:
        raise DataError(f"{label}: cannot draft a schema from it, {type(e).__name__}") from None
    finally:
        con.close()


def _fold(seen: dict[str, _Seen], skipped: dict[str, str], name: str, label: str, kind: ColumnType,
          lo: float | None, hi: float | None, levels: list[str], ordered: bool, nullable: bool) -> None:
    if name in skipped:
        return
    if lo is not None and hi is not None and not (math.isfinite(lo) and math.isfinite(hi)):
        skipped[name] = f"infinite values in {label} (declare its bounds by hand)"
        seen.pop(name, None)
        return
    old = seen.get(name)
    if old is None:
        seen[name] = _Seen(kind, lo, hi, list(levels), ordered, nullable, label)
        return
    if (old.type is ColumnType.CATEGORY) != (kind is ColumnType.CATEGORY):
        raise DataError(f"column {name!r} is text in {old.where if old.type is ColumnType.CATEGORY else label} "
                        f"but numbers in {label if old.type is ColumnType.CATEGORY else old.where}: give it one "
                        "type in every source")
    if kind is not ColumnType.CATEGORY and _ORDER[kind] > _ORDER[old.type]:
        old.type = kind
    if lo is not None:
        old.lo = lo if old.lo is None else min(old.lo, lo)
    if hi is not None:
        old.hi = hi if old.hi is None else max(old.hi, hi)
    old.levels += [lv for lv in levels if lv not in old.levels]
    old.ordered = old.ordered or ordered
    old.nullable = old.nullable or nullable


def _column(name: str, s: _Seen) -> Column:
    if s.type is ColumnType.BOOL:
        return Column(name=name, type=s.type, nullable=s.nullable)
    if s.type is ColumnType.CATEGORY:
        levels = s.levels if s.ordered else sorted(s.levels)
        return Column(name=name, type=s.type, levels=tuple(levels), nullable=s.nullable)
    assert s.lo is not None and s.hi is not None
    lo, hi = round_bounds(s.lo, s.hi, integer=s.type is ColumnType.INT)
    return Column(name=name, type=s.type, min=lo, max=hi, nullable=s.nullable)


def draft(sources: Source | Sequence[Source] | Mapping[str, Source], *, max_levels: int = 20,
          exclude: Sequence[str] = ()) -> SchemaDraft:
    """A :class:`SchemaDraft` covering every source (see the module docstring for the rules).

    ``sources``: one DataFrame or CSV/Parquet path, a list of them, or a mapping party -> source
    (the party names label the draft). ``max_levels``: text columns with more distinct values are
    skipped. ``exclude``: columns to leave out (e.g. a join key). Raises DataError for a source
    that cannot be read, a column that is text in one source and numbers in another, or no
    column to draft."""
    if max_levels < 2:
        raise DataError(f"max_levels must be at least 2, not {max_levels}")
    if isinstance(sources, Mapping):
        items = [(str(k), v) for k, v in sources.items()]
    elif is_frame(sources) or isinstance(sources, (str, os.PathLike, SqlSource, SparkSource)):
        items = [(describe_source(sources), sources)]
    else:
        items = [(describe_source(s), s) for s in sources]
    spark = [label for label, s in items if isinstance(s, SparkSource)]
    if spark:
        raise DataError(f"a schema is drafted from DataFrames or files, not a Spark source ({', '.join(spark)}): "
                        "export a sample of the table to Parquet and draft from that")
    if not items:
        raise DataError("no data to draft a schema from")
    seen: dict[str, _Seen] = {}
    skipped: dict[str, str] = {}
    untyped: set[str] = set()
    for label, source in items:
        untyped |= _read(source, label, max_levels, set(exclude), seen, skipped)
    for n in sorted(untyped):
        if n in seen:
            seen[n].nullable = True
        else:
            seen[n] = _Seen(ColumnType.CATEGORY, nullable=True)  # no values anywhere: skipped below
    for n, s in seen.items():
        if n not in skipped and s.type is not ColumnType.BOOL and not s.levels and s.lo is None:
            skipped[n] = "no values (only NULLs) in any source: declare it by hand"
    cols = [_column(n, s) for n, s in seen.items() if n not in skipped]
    if not cols:
        raise DataError("none of the columns could be drafted: " +
                        "; ".join(f"{n}: {why}" for n, why in skipped.items()))
    return SchemaDraft(Schema(columns=tuple(cols)), skipped, [label for label, _ in items])


def draft_schema(sources: Source | Sequence[Source] | Mapping[str, Source], *, max_levels: int = 20,
                 exclude: Sequence[str] = ()) -> Schema:
    """A proposed :class:`~tessera.data.schema.Schema` covering every source: :func:`draft`'s
    schema. Review it before it goes into a contract: its bounds and levels become public."""
    return draft(sources, max_levels=max_levels, exclude=exclude).schema
