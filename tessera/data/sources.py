"""Where a party's rows come from: the forms of :data:`Source` the local engine accepts.

* a pandas ``DataFrame`` — scanned in place by DuckDB (no copy); pandas' NaN and None are NULL;
* a path (``str`` or ``os.PathLike``) chosen by its suffix:

  - ``.parquet``, ``.pq``, ``.parq`` — read with DuckDB's ``read_parquet``; typed columns;
  - ``.csv``, ``.tsv``, ``.txt``, optionally compressed (``.gz``, ``.zst``) — read with
    ``read_csv``; the file must have a header row; every column is read as text and converted
    by the schema check, so a stray word in a numeric column is counted as a type error rather
    than failing the read, and identifiers keep their leading zeros;

* :class:`SparkSource` — a file or table in a Spark cluster; the checks and every reduction run
  there as Spark SQL (:mod:`tessera.data.spark`);
* :class:`SqlSource` — a DuckDB SQL query over named tables, each a DataFrame or a path as above
  (CSV tables inside a query are read with DuckDB's type detection, for the query to compute on).

A SQL source is the data owner's own configuration of its node (it can read any file the node
can); analysts never send SQL: jobs name library analyses only.

pandas is not imported here (it costs most of a second per process): an object can only be a
DataFrame if its owner imported pandas, so :func:`is_frame` looks in ``sys.modules``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeGuard, Union

import duckdb

from tessera.data._sql import ident, text
from tessera.errors import DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Source", "SqlSource", "SparkSource", "PARQUET_SUFFIXES", "CSV_SUFFIXES", "describe_source", "is_frame"]

PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
CSV_SUFFIXES = (".csv", ".tsv", ".txt")
_COMPRESSION = (".gz", ".zst")

TableSource = Union["pd.DataFrame", str, "os.PathLike[str]"]


def is_frame(obj: object) -> TypeGuard[pd.DataFrame]:
    """Whether ``obj`` is a pandas DataFrame (without importing pandas)."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(obj, pandas.DataFrame)


@dataclass(frozen=True)
class SqlSource:
    """A DuckDB query over named tables: ``SqlSource("SELECT ... FROM tx JOIN acc USING (id)",
    tables={"tx": "tx.parquet", "acc": accounts_df})``. The query's result columns are checked
    against the schema like any other source's."""

    query: str
    tables: Mapping[str, TableSource] = field(default_factory=dict)


@dataclass(frozen=True)
class SparkSource:
    """Rows in a Spark cluster, reduced there (:mod:`tessera.data.spark`; needs the ``spark``
    extra): a file or directory the cluster reads (``path``, in ``format``: ``parquet``, ``orc``,
    ``csv`` with a header, ...) or a table of its catalog (``table``). ``master`` is the cluster
    (``spark://host:7077``, ``yarn``, ``local[4]``; None: whatever the process's Spark
    configuration says, ``local[*]`` without one); ``conf`` more Spark settings for the session
    this process starts. ``cache`` keeps the checked rows in the cluster's memory (iterative
    analyses rescan them)."""

    path: str | None = None
    table: str | None = None
    master: str | None = None
    format: str = "parquet"
    conf: Mapping[str, str] = field(default_factory=dict)
    cache: bool = False

    def __post_init__(self) -> None:
        if (self.path is None) == (self.table is None):
            raise DataError("a Spark source needs exactly one of path= or table=")

    @property
    def label(self) -> str:
        return f"Spark table {self.table}" if self.table is not None else Path(str(self.path)).name


Source = Union["pd.DataFrame", str, "os.PathLike[str]", SqlSource, SparkSource]


def describe_source(source: Source) -> str:
    """A short label for messages: the file name, ``DataFrame`` or ``SQL source``."""
    if is_frame(source):
        return "DataFrame"
    if isinstance(source, SqlSource):
        return "SQL source"
    if isinstance(source, SparkSource):
        return source.label
    if isinstance(source, (str, os.PathLike)):
        return Path(source).name
    return type(source).__name__


def _file_kind(path: Path) -> str:
    name = path.name.lower()
    for comp in _COMPRESSION:
        if name.endswith(comp):
            name = name[: -len(comp)]
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    raise DataError(
        f"{path.name}: cannot tell the file's format from its suffix; use one of "
        f"{', '.join(PARQUET_SUFFIXES + CSV_SUFFIXES)} (CSV may be .gz or .zst compressed), "
        "a DataFrame, or a SqlSource"
    )


def _file_relation(path: Path, typed_csv: bool) -> str:
    kind = _file_kind(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    if kind == "parquet":
        return f"read_parquet({text(str(path))})"
    if typed_csv:
        return f"read_csv_auto({text(str(path))}, header = true)"
    return f"read_csv({text(str(path))}, header = true, all_varchar = true)"


def attach(con: duckdb.DuckDBPyConnection, source: Source, view: str) -> str:
    """Make ``source`` readable as the view ``view`` on ``con``; returns its kind:
    ``"frame"``, ``"parquet"``, ``"csv"`` or ``"sql"``."""
    if is_frame(source):
        con.register(view + "_frame", source)
        con.execute(f"CREATE TEMP VIEW {ident(view)} AS SELECT * FROM {ident(view + '_frame')}")
        return "frame"
    if isinstance(source, SqlSource):
        for name, table in source.tables.items():
            if is_frame(table):
                con.register(name, table)
            elif isinstance(table, (str, os.PathLike)):
                rel = _file_relation(Path(table), typed_csv=True)
                con.execute(f"CREATE TEMP VIEW {ident(name)} AS SELECT * FROM {rel}")
            else:
                raise DataError(f"SQL source table {name!r}: give a DataFrame or a file path, "
                                f"not {type(table).__name__}")
        query = source.query.strip().rstrip(";")
        con.execute(f"CREATE TEMP VIEW {ident(view)} AS {query}")
        return "sql"
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        rel = _file_relation(path, typed_csv=False)
        con.execute(f"CREATE TEMP VIEW {ident(view)} AS SELECT * FROM {rel}")
        return _file_kind(path)
    raise DataError(f"cannot read a {type(source).__name__}; give a DataFrame, a CSV or Parquet "
                    "path, or a SqlSource")
