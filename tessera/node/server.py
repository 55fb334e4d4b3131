"""Run a node: recover the store, serve the API over HTTPS (uvicorn), shut down gracefully.

SIGTERM or SIGINT: stop taking jobs, end running party processes (their peers abort and record
it), settle budgets, then stop the HTTP server.

Connections are bounded, so that idle or slow clients cannot take the node's file descriptors:
a TLS handshake (and a TLS goodbye) must finish within ``keep_alive`` seconds, a connection must send its first
(and each next) request within ``keep_alive`` seconds, at most ``max_connections`` are open (the
next one closes the oldest idle connection; one beyond that many *busy* connections is closed)
and ``backlog`` wait in the kernel. The event loop's and uvicorn's repeated errors (an
``accept()`` failing for every attempt) are logged once a minute with a count.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import resource
import socket
import threading
from collections import OrderedDict
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from tessera.node.api import create_app
from tessera.node.apicert import api_paths
from tessera.node.config import NodeConfig
from tessera.node.logs import log, setup_logging
from tessera.node.service import Node, private_dir

__all__ = ["serve", "connection_limit", "guarded_protocol"]

#: file descriptors kept for everything but API connections (state files, peers, party processes)
FD_RESERVE = 64


def connection_limit(wanted: int) -> int:
    """How many API connections the node keeps open: ``wanted``, within this process's file
    descriptor limit (raised to its hard limit first) less :data:`FD_RESERVE`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return max(8, min(wanted, soft - FD_RESERVE))


def guarded_protocol(limit: int) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol with the node's bounds: a first-request deadline, and at most
    ``limit`` open connections (the oldest idle one is closed for a new one)."""
    open_: OrderedDict[Guarded, None] = OrderedDict()

    class Guarded(H11Protocol):
        _first: asyncio.TimerHandle | None = None

        @property
        def idle(self) -> bool:
            """No request in progress (before the first, or between two)."""
            return self.cycle is None or self.cycle.response_complete

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(open_) >= limit:
                for old in [c for c in open_ if c.idle][: len(open_) - limit + 1]:
                    old.transport.abort()  # at once: no TLS goodbye awaited from an idle client
                    open_.pop(old, None)
            if len(open_) >= limit:  # every open connection is busy: this one waits for none
                transport.abort()
                return
            open_[self] = None
            self._first = self.loop.call_later(self.timeout_keep_alive, self._no_request)

        def _no_request(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._first is not None:
                self._first.cancel()
            open_.pop(self, None)
            super().connection_lost(exc)

    return Guarded


class _Server(uvicorn.Server):
    node: Node
    handshake_timeout: float

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn has no settings for the TLS handshake and shutdown deadlines (asyncio's defaults
        # are 60 and 30 s): give them to the one create_server call of uvicorn's startup
        loop: Any = asyncio.get_running_loop()
        loop.create_server = functools.partial(type(loop).create_server, loop,
                                               ssl_handshake_timeout=self.handshake_timeout,
                                               ssl_shutdown_timeout=self.handshake_timeout)
        try:
            await super().startup(sockets)
        finally:
            del loop.create_server

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Abort the node's jobs at once (in a thread: this runs in the signal handler), so that
        # clients still connected see them aborted while the API drains.
        threading.Thread(target=self.node.stop, name="tessera-stop", daemon=True).start()
        super().handle_exit(sig, frame)
        # a requested shutdown is a clean exit (exit code 0), not death by the signal
        self._captured_signals.clear()


def serve(config_path: str | Path) -> None:
    """Run the node configured at ``config_path`` until it is told to stop."""
    os.umask(0o077)  # every file the node and its party processes create is the owner's only
    cfg = NodeConfig.load(config_path)
    private_dir(cfg.store_dir)
    logger = setup_logging(cfg.name, cfg.store_dir / "node.log")
    node = Node(cfg, logger)
    node.recover()
    key, cert = api_paths(cfg.path(cfg.identity_dir), cfg.name)
    limit = connection_limit(cfg.max_connections)
    server = _Server(uvicorn.Config(create_app(node), host=cfg.api_host, port=cfg.api_port,
                                    ssl_keyfile=str(key), ssl_certfile=str(cert), log_config=None,
                                    access_log=False, timeout_graceful_shutdown=3, lifespan="off",
                                    loop="asyncio", http=guarded_protocol(limit), backlog=cfg.backlog,
                                    # uvicorn's count includes connections being closed
                                    limit_concurrency=limit + FD_RESERVE // 2, timeout_keep_alive=int(max(1, cfg.keep_alive))))
    server.node = node
    server.handshake_timeout = cfg.keep_alive
    log(logger, logging.INFO, f"node listening on https://{cfg.api_host}:{cfg.api_port} "
        f"(at most {limit} connections)", node=cfg.name)
    try:
        server.run()
    finally:
        node.stop()
        log(logger, logging.INFO, "node stopped", node=cfg.name)
