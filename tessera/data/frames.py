"""Reading a source whole, for what happens before the checked load: its column names, its row
count, its rows as a DataFrame (a PSI needs the join key), or a copy of a SQL source's rows.

Everything goes through the same source forms as :func:`tessera.data.load`
(:data:`~tessera.data.sources.Source`) and the same quoting (:mod:`tessera.data._sql`); callers
above the data layer never write SQL. CSV files are read with DuckDB's type detection here (the
rows are checked against the schema afterwards by :func:`~tessera.data.load`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from tessera.data._sql import ident, text
from tessera.data.sources import Source, SparkSource, SqlSource, _file_relation, attach, is_frame
from tessera.data.spark import spark_columns, spark_rows

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["columns_of", "count_rows", "read_frame", "copy_to_parquet"]

_VIEW = "source"


def _open(source: Source) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    try:
        if isinstance(source, (str, os.PathLike)):
            con.execute(f"CREATE TEMP VIEW {ident(_VIEW)} AS SELECT * FROM {_file_relation(Path(source), True)}")
        else:
            attach(con, source, _VIEW)
    except BaseException:
        con.close()
        raise
    return con


def columns_of(source: Source) -> list[str]:
    """The source's column names (public metadata, read without the rows)."""
    if is_frame(source):
        return [str(c) for c in source.columns]
    if isinstance(source, SparkSource):
        return spark_columns(source)
    con = _open(source)
    try:
        return [str(r[0]) for r in con.execute(f"DESCRIBE SELECT * FROM {ident(_VIEW)}").fetchall()]
    finally:
        con.close()


def count_rows(source: Source) -> int:
    """The number of rows of the source."""
    if is_frame(source):
        return len(source)
    if isinstance(source, SparkSource):
        return spark_rows(source)
    con = _open(source)
    try:
        row = con.execute(f"SELECT count(*) FROM {ident(_VIEW)}").fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


def read_frame(source: Source) -> pd.DataFrame:
    """All rows of the source as a DataFrame (typed columns)."""
    if is_frame(source):
        return source
    con = _open(source)
    try:
        frame: pd.DataFrame = con.execute(f"SELECT * FROM {ident(_VIEW)}").df()
        return frame
    finally:
        con.close()


def copy_to_parquet(source: SqlSource, path: str | os.PathLike[str]) -> str:
    """Run a SQL source once and keep its rows in a Parquet file (the job then reads that copy)."""
    con = _open(source)
    try:
        con.execute(f"COPY (SELECT * FROM {ident(_VIEW)}) TO {text(str(path))} (FORMAT PARQUET)")
    finally:
        con.close()
    return str(path)
