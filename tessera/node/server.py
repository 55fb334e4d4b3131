"""Run a node: recover the store, serve the API over HTTPS (uvicorn), shut down gracefully.

SIGTERM or SIGINT: stop taking jobs, end running party processes (their peers abort and record
it), settle budgets, then stop the HTTP server.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import FrameType

import uvicorn

from tessera.node.api import create_app
from tessera.node.apicert import api_paths
from tessera.node.config import NodeConfig
from tessera.node.logs import log, setup_logging
from tessera.node.service import Node

__all__ = ["serve"]


class _Server(uvicorn.Server):
    node: Node

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Abort the node's jobs at once (in a thread: this runs in the signal handler), so that
        # clients still connected see them aborted while the API drains.
        threading.Thread(target=self.node.stop, name="tessera-stop", daemon=True).start()
        super().handle_exit(sig, frame)
        # a requested shutdown is a clean exit (exit code 0), not death by the signal
        self._captured_signals.clear()


def serve(config_path: str | Path) -> None:
    """Run the node configured at ``config_path`` until it is told to stop."""
    cfg = NodeConfig.load(config_path)
    cfg.store_dir.mkdir(parents=True, exist_ok=True)
    logger = setup_logging(cfg.name, cfg.store_dir / "node.log")
    node = Node(cfg, logger)
    node.recover()
    key, cert = api_paths(cfg.path(cfg.identity_dir), cfg.name)
    server = _Server(uvicorn.Config(create_app(node), host=cfg.api_host, port=cfg.api_port,
                                    ssl_keyfile=str(key), ssl_certfile=str(cert), log_config=None,
                                    access_log=False, timeout_graceful_shutdown=3, lifespan="off"))
    server.node = node
    log(logger, logging.INFO, f"node listening on https://{cfg.api_host}:{cfg.api_port}", node=cfg.name)
    try:
        server.run()
    finally:
        node.stop()
        log(logger, logging.INFO, "node stopped", node=cfg.name)
