"""A node's dataset sources (``node.toml``) as sources of the data layer: a CSV or Parquet file,
a DuckDB query over named files, or a file or table in a Spark cluster (``engine = "spark"``).
All reading goes through :mod:`tessera.data`."""

from __future__ import annotations

from pathlib import Path

from tessera.data.frames import copy_to_parquet, count_rows
from tessera.data.sources import Source, SparkSource, SqlSource
from tessera.jobs.model import SparkData, SqlData
from tessera.jobs.party import spark_data
from tessera.node.config import ConfigError, NodeConfig

__all__ = ["source_for", "rows_of", "data_for_job"]


def _sql(cfg: NodeConfig, dataset: str) -> SqlData:
    src = cfg.datasets[dataset]
    bad = [name for name in src.tables if not name.isidentifier()]
    if bad:
        raise ConfigError(f"table name {bad[0]!r} in a SQL source is not an identifier")
    return SqlData(query=src.sql or "", tables={name: str(cfg.path(p)) for name, p in src.tables.items()})


def source_for(cfg: NodeConfig, dataset: str) -> Source:
    """The dataset's rows as the data layer reads them."""
    src = cfg.datasets[dataset]
    if src.engine == "spark":  # a URL (hdfs://, s3a://) as it is, a local path from the config's folder
        path = src.path if src.path is None or "://" in src.path else str(cfg.path(src.path))
        return SparkSource(path, src.table, src.master, src.format, dict(src.conf), src.cache)
    if src.path is not None:
        return str(cfg.path(src.path))
    sql = _sql(cfg, dataset)
    return SqlSource(sql.query, dict(sql.tables))


def rows_of(cfg: NodeConfig, dataset: str) -> int:
    """The dataset's number of rows (what policy compares with the contract's minimum)."""
    return count_rows(source_for(cfg, dataset))


def data_for_job(cfg: NodeConfig, dataset: str, workdir: Path) -> str | SparkData:
    """What the job's party process reads: the dataset's file in place, a SQL source's rows copied
    once to ``workdir/data.parquet`` (so the job reads one fixed set of rows), or the Spark source
    (the party process connects to the cluster and reduces the rows there)."""
    source = source_for(cfg, dataset)
    if isinstance(source, SqlSource):
        return copy_to_parquet(source, workdir / "data.parquet")
    if isinstance(source, SparkSource):
        return spark_data(source)
    return str(source)
