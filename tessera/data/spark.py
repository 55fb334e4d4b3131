"""A party's rows in a Spark cluster: the checks and the reductions run there, as Spark SQL.

:func:`load_spark` reads a :class:`~tessera.data.sources.SparkSource` (a file the cluster reads,
or a table of its catalog), counts every schema violation in one Spark job — the same checks,
written by :mod:`tessera.data.checks`, as DuckDB runs — and returns a
:class:`~tessera.data.local.LocalTable` whose engine is Spark (:class:`SparkEngine`): ``count``,
``sums``, ``cross_products``, ``histogram``, ``contingency`` and ``glm_derivatives`` are each one
Spark SQL aggregation (:mod:`tessera.data.reductions`), so only aggregates reach the party's
process; ``arrays`` (the analyses that need row values) collects the columns through Arrow.

One Spark session per process (``SparkSession.builder.getOrCreate``), shared by every table
and kept up after a table closes (start-up takes seconds); each table registers its own
temporary views. The session reads double-quoted names as identifiers
(``spark.sql.ansi.doubleQuotedIdentifiers``, which needs ANSI mode), so the SQL is DuckDB's.
A cluster table cannot be watched for changes as a local file is: what a job reads is what the
cluster holds while it runs (pass ``cache=True`` to pin the checked rows in cluster memory).

pyspark is imported only here, when a Spark source is loaded (the ``spark`` extra).
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from tessera.data._sql import ident
from tessera.data.checks import ColumnSql, Violation, column_sql, key_sql, violation_detail
from tessera.data.results import ValidationReport
from tessera.data.schema import Schema
from tessera.data.sources import SparkSource
from tessera.errors import DataError

__all__ = ["SparkEngine", "load_spark", "spark_session", "spark_rows", "spark_columns"]

_LOCK = threading.Lock()
#: Spark type names -> the DuckDB names :func:`tessera.data.checks.column_sql` knows
_TYPES = {"tinyint": "TINYINT", "smallint": "SMALLINT", "int": "INTEGER", "bigint": "BIGINT", "float": "FLOAT",
          "double": "DOUBLE", "boolean": "BOOLEAN", "string": "VARCHAR"}
_SETTINGS = {"spark.sql.ansi.enabled": "true", "spark.sql.ansi.doubleQuotedIdentifiers": "true"}
#: defaults for a session this process starts (a source's ``conf`` overrides them)
_DEFAULTS = {"spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
             "spark.sql.shuffle.partitions": "8"}
#: more defaults where the master is ``local`` / ``local[n]`` (Spark inside the party's process):
#: its driver and block manager listen on the loopback address only (otherwise Spark binds the
#: address the host name resolves to, or the first other interface it finds)
_LOCAL_DEFAULTS = {"spark.driver.bindAddress": "127.0.0.1", "spark.driver.host": "127.0.0.1"}


def _is_local(master: str | None) -> bool:
    return master is not None and re.fullmatch(r"local(\[[^\]]*\])?", master) is not None


def _pyspark() -> Any:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise DataError("a Spark source needs pyspark: pip install 'tessera[spark]'") from None
    return SparkSession


def spark_session(source: SparkSource) -> Any:
    """This process's Spark session (started on first use with ``source.master`` and ``conf``; a
    ``local`` master listens on 127.0.0.1 only unless ``conf`` says otherwise)."""
    builder_cls = _pyspark()
    with _LOCK:
        builder = builder_cls.builder.appName("tessera")
        if source.master is not None:
            builder = builder.master(source.master)
        local = _LOCAL_DEFAULTS if _is_local(source.master) else {}
        for k, v in {**_DEFAULTS, **local, **_SETTINGS, **dict(source.conf)}.items():
            builder = builder.config(k, v)
        spark = builder.getOrCreate()
        for k, v in _SETTINGS.items():  # an existing session (another source's) gets them too
            spark.conf.set(k, v)
    return spark


def _dialect(sql: str) -> str:
    """DuckDB's text type in the checks' SQL, as Spark names it."""
    return sql.replace(" AS VARCHAR)", " AS STRING)")


def _spark_error(label: str, exc: Exception) -> DataError:
    from pyspark.errors import AnalysisException

    detail = f": {exc}" if isinstance(exc, AnalysisException) else " (details withheld: they may quote data)"
    first = detail.splitlines()[0] if detail else ""
    return DataError(f"{label}: Spark could not read it, {type(exc).__name__}{first}")


class SparkEngine:
    """Runs a table's SQL in a Spark session (:class:`~tessera.data.engine.Engine`)."""

    def __init__(self, spark: Any, views: Sequence[str], cached: str | None = None) -> None:
        self.spark = spark
        self._views = list(views)
        self._cached = cached

    def fetch(self, sql: str, label: str) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self.spark.sql(_dialect(sql)).collect()]
        except Exception as e:  # pyspark raises its own tree and py4j errors
            raise _spark_error(label, e) from None

    def numpy(self, sql: str, label: str) -> dict[str, Any]:
        import pyarrow.compute as pc

        try:
            table = self.spark.sql(_dialect(sql)).toArrow()
        except Exception as e:
            raise _spark_error(label, e) from None
        out: dict[str, Any] = {}
        for name in table.column_names:
            col = table.column(name)
            if col.null_count:
                filled = pc.fill_null(col, 0).to_numpy(zero_copy_only=False)
                out[name] = np.ma.MaskedArray(filled, mask=col.is_null().to_numpy(zero_copy_only=False))
            else:
                out[name] = col.to_numpy(zero_copy_only=False)
        return out

    def close(self) -> None:
        if self._cached is not None:
            self.spark.catalog.uncacheTable(self._cached)
            self._cached = None
        for v in self._views:
            self.spark.catalog.dropTempView(v)
        self._views = []


def _spark_type(t: str) -> str:
    if re.fullmatch(r"decimal\(\d+,\s*\d+\)", t):
        return t.upper()
    return _TYPES.get(t, "VARCHAR")


def _frame(spark: Any, source: SparkSource) -> Any:
    if source.table is not None:
        return spark.table(source.table)
    reader = spark.read.format(source.format)
    if source.format == "csv":
        reader = reader.option("header", "true")
    return reader.load(str(source.path))


def load_spark(source: SparkSource, schema: Schema, columns: list[str], key: str | None, max_rows: int | None,
               label: str, materialize: bool | None = None) -> tuple[SparkEngine, ValidationReport, str]:
    """Check ``source`` in Spark (one aggregation counting every violation) and register the checked
    values as a view; returns the engine, the report (raise on it: violations name column and
    count, never a value) and the view's quoted name. ``materialize`` (or ``source.cache``)
    caches the checked rows in the cluster."""
    spark = spark_session(source)
    tag = uuid.uuid4().hex[:12]
    src, data = f"tessera_src_{tag}", f"tessera_data_{tag}"
    engine = SparkEngine(spark, [src, data])
    try:
        try:
            frame = _frame(spark, source)
            frame.createOrReplaceTempView(src)
            types = {name: _spark_type(t) for name, t in frame.dtypes}
        except Exception as e:
            raise _spark_error(label, e) from None
        wanted = columns + ([key] if key is not None else [])
        violations = [Violation(c, "missing", 0) for c in wanted if c not in types]
        sql: dict[str, ColumnSql] = {c: column_sql(schema.column(c), c, types[c]) for c in columns if c in types}
        if key is not None and key in types:
            sql[key] = key_sql(key)
        checks = [(c, what, cond) for c, s in sql.items() for what, cond in s.checks]
        aggs = ["count(*)"] + [f"count_if({cond})" for _, _, cond in checks]
        (counts,) = engine.fetch(f"SELECT {', '.join(aggs)} FROM {ident(src)}", label)
        n_rows = int(counts[0])
        for (c, what, _), k in zip(checks, counts[1:]):
            if k:
                violations.append(Violation(c, what, int(k), violation_detail(schema.column(c) if c != key else None,
                                                                              what)))
        if max_rows is not None and n_rows > max_rows:
            violations.append(Violation("", "rows", n_rows - max_rows, str(max_rows)))
        report = ValidationReport(label, n_rows, tuple(violations))
        if report.ok:
            select = [f"{sql[c].value} AS {ident(c)}" for c in columns]
            if key is not None:
                select.append(f"{sql[key].value} AS {ident(key)}")
            body = f"SELECT {', '.join(select) or '1 AS tessera_one'} FROM {ident(src)}"
            try:
                spark.sql(_dialect(body)).createOrReplaceTempView(data)
                if source.cache if materialize is None else materialize:
                    spark.catalog.cacheTable(data)
                    engine._cached = data
            except Exception as e:
                raise _spark_error(label, e) from None
    except BaseException:
        engine.close()
        raise
    return engine, report, ident(data)


def spark_rows(source: SparkSource) -> int:
    """The number of rows of a Spark source (what a node's policy compares with a contract's minimum)."""
    spark = spark_session(source)
    try:
        return int(_frame(spark, source).count())
    except Exception as e:
        raise _spark_error(source.label, e) from None


def spark_columns(source: SparkSource) -> list[str]:
    """The column names of a Spark source (public metadata, read without the rows)."""
    spark = spark_session(source)
    try:
        return [str(c) for c in _frame(spark, source).columns]
    except Exception as e:
        raise _spark_error(source.label, e) from None
