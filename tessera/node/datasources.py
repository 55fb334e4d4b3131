"""A node's dataset sources (``node.toml``) as sources of the data layer: a CSV or Parquet file,
or a DuckDB query over named files. All reading goes through :mod:`tessera.data`."""

from __future__ import annotations

from pathlib import Path

from tessera.data.frames import copy_to_parquet, count_rows
from tessera.data.sources import Source, SqlSource
from tessera.jobs.model import SqlData
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
    if src.path is not None:
        return str(cfg.path(src.path))
    sql = _sql(cfg, dataset)
    return SqlSource(sql.query, dict(sql.tables))


def rows_of(cfg: NodeConfig, dataset: str) -> int:
    """The dataset's number of rows (what policy compares with the contract's minimum)."""
    return count_rows(source_for(cfg, dataset))


def data_for_job(cfg: NodeConfig, dataset: str, workdir: Path) -> str:
    """The file the job's party process reads: the dataset's file in place, or a SQL source's rows
    copied once to ``workdir/data.parquet`` (so the job reads one fixed set of rows)."""
    source = source_for(cfg, dataset)
    if isinstance(source, SqlSource):
        return copy_to_parquet(source, workdir / "data.parquet")
    return str(source)
