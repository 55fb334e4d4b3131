"""What the parts of a node share: its configuration, contract, identity, store, ledger, audit
log, metrics, task pool and stop flag (built once by :class:`tessera.node.service.Node`)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tessera.errors import TesseraError
from tessera.governance.audit import AuditLog
from tessera.governance.contract import Contract, PartySpec
from tessera.governance.ledger import SqliteLedger
from tessera.net.identity import Identity
from tessera.node.config import NodeConfig
from tessera.node.logs import log
from tessera.node.metrics import NodeMetrics
from tessera.node.store import JobStore

__all__ = ["NodeContext", "NodeError"]


class NodeError(TesseraError):
    """A request the node refuses; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class NodeContext:
    cfg: NodeConfig
    contract: Contract
    me: PartySpec
    identity: Identity
    dir: Path
    store: JobStore
    ledger_path: Path
    ledger: SqliteLedger
    audit: AuditLog
    metrics: NodeMetrics
    tasks: ThreadPoolExecutor
    logger: logging.Logger
    own_datasets: list[str]
    stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.cfg.name

    def log(self, level: int, msg: str, **fields: Any) -> None:
        log(self.logger, level, msg, node=self.cfg.name, **fields)

    def job_dir(self, job_id: str) -> Path:
        """Job ``job_id``'s directory in the store (refused for anything but a job id)."""
        return self.store.job_dir(job_id)
