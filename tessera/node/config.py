"""A node's configuration (``node.toml``): who it is, its contract, its data, where it listens.

Relative paths are relative to the directory of the configuration file. Analysts' API tokens
and the admin token are stored as SHA-256 hashes only; ``tessera node init`` and
``tessera node add-analyst`` print a new token once.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import tomllib
from pathlib import Path
from typing import Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from tessera.errors import TesseraError
from tessera.net.identity import write_private

__all__ = ["NodeConfig", "DatasetSource", "ConfigError", "hash_token", "new_token"]


class ConfigError(TesseraError):
    """A node configuration that cannot be used."""


def new_token() -> str:
    """A fresh API token (256 bits from the OS CSPRNG)."""
    return "tsr_" + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class DatasetSource(BaseModel):
    """Where a dataset's rows are: a CSV or Parquet file, or a DuckDB query over named files
    (``engine = "duckdb"``, the default); or, with ``engine = "spark"``, a file (``path``, any URL
    the cluster reads: ``hdfs://``, ``s3a://``, a local path) or catalog ``table`` in the Spark
    cluster ``master``, where the checks and the local stage's reductions then run."""

    model_config = ConfigDict(extra="forbid")

    engine: Literal["duckdb", "spark"] = "duckdb"
    path: str | None = None
    sql: str | None = None
    tables: dict[str, str] = {}
    #: Spark only: a table of the cluster's catalog, the cluster, the file format, more settings
    table: str | None = None
    master: str | None = None
    format: str = "parquet"
    conf: dict[str, str] = {}
    cache: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> DatasetSource:
        if self.engine == "spark":
            if self.sql is not None or self.tables:
                raise ValueError("a Spark dataset source reads a 'path' or a 'table', not 'sql'")
            if (self.path is None) == (self.table is None):
                raise ValueError("a Spark dataset source needs exactly one of 'path' or 'table'")
            return self
        if self.table is not None or self.master is not None or self.conf:
            raise ValueError("'table', 'master' and 'conf' are for engine = \"spark\" dataset sources")
        if (self.path is None) == (self.sql is None):
            raise ValueError("a dataset source needs exactly one of 'path' or 'sql'")
        return self


class NodeConfig(BaseModel):
    """Everything a node needs to run; saved as TOML."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    #: this node's role in the contract: ``party`` (owns data and computes), ``dealer``, ``owner``
    #: (owns data, only inputs: it sends its shares to the compute parties and is done),
    #: ``compute`` (computes, owns no data) or ``both``
    role: Literal["party", "dealer", "owner", "compute", "both"] = "party"
    contract: str = "contract.toml"
    identity_dir: str = "keys"
    store: str = "store"
    api_host: str = "127.0.0.1"
    api_port: int = Field(ge=1, le=65535)
    #: the first and last port of the range this node's per-job MPC listeners use
    mpc_ports: tuple[int, int]
    approval: Literal["auto", "manual"] = "auto"
    datasets: dict[str, DatasetSource] = {}
    #: analyst id -> SHA-256 of its API token
    analysts: dict[str, str] = {}
    admin_token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    max_running_jobs: int = Field(4, ge=1)
    job_timeout: float = Field(900.0, gt=0)
    recv_timeout: float = Field(120.0, gt=0)
    #: seconds between sweeps that settle budget reservations no running process holds
    sweep_interval: float = Field(1.0, gt=0)
    peer_timeout: float = Field(30.0, gt=0)
    #: seconds a port reserved by *prepare* stays reserved without a *start* (then it is freed)
    prepare_lease: float = Field(60.0, gt=0)
    #: the largest request body the API reads (bytes); a larger one is refused with 413 unread
    max_body_bytes: int = Field(1 << 20, ge=1024)
    #: seconds a request body (once its head is in) may take to arrive; a slower one is 408
    body_timeout: float = Field(30.0, gt=0)
    #: the most HTTP connections the API keeps open; beyond it the oldest idle one is closed
    max_connections: int = Field(512, ge=8)
    #: connections waiting in the kernel to be accepted
    backlog: int = Field(128, ge=1)
    #: seconds an open connection may wait for its (first or next) request before it is closed
    keep_alive: float = Field(5.0, gt=0)

    _base: Path = PrivateAttr(default_factory=Path.cwd)
    _file: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _ports(self) -> NodeConfig:
        lo, hi = self.mpc_ports
        if not 1 <= lo <= hi <= 65535:
            raise ValueError("mpc_ports must be [first, last] with 1 <= first <= last <= 65535")
        return self

    def path(self, p: str) -> Path:
        """``p`` resolved against the configuration file's directory."""
        q = Path(p)
        return q if q.is_absolute() else self._base / q

    @property
    def file(self) -> Path | None:
        """The file this configuration was loaded from or saved to."""
        return self._file

    @property
    def store_dir(self) -> Path:
        return self.path(self.store)

    def analyst_for(self, token: str) -> str | None:
        """The analyst id whose token this is (constant-time comparison), or None."""
        h = hash_token(token)
        found = None
        for analyst, want in self.analysts.items():
            if hmac.compare_digest(h, want):
                found = analyst
        return found

    def is_admin(self, token: str) -> bool:
        return hmac.compare_digest(hash_token(token), self.admin_token_sha256)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> NodeConfig:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
            cfg = cls.model_validate(data)
        except FileNotFoundError:
            raise ConfigError(f"no node configuration {p}") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p} is not valid TOML: {e}") from None
        except ValidationError as e:
            err = e.errors()[0]
            raise ConfigError(f"{p}: {err['msg']} at {'.'.join(str(x) for x in err['loc'])}") from None
        cfg._base, cfg._file = p.resolve().parent, p.resolve()
        return cfg

    def save(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        data = self.model_dump(mode="json", exclude_none=True)
        write_private(p, tomli_w.dumps(data).encode())
        self._base, self._file = p.resolve().parent, p.resolve()
