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
import logging
import os
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable
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
from tessera.runtime import forkserver

__all__ = ["serve", "connection_limit", "guarded_protocol", "Connections", "Acceptor"]

_log = logging.getLogger("uvicorn.error")  # its repeats are held back (tessera.node.logs.RepeatFilter)

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


class Connections:
    """The API's open connections and those still in their TLS handshake (each with the time
    it was accepted), kept to at most ``limit`` together."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open: dict[Any, float] = {}
        self.pending: dict[asyncio.Task[None], float] = {}

    def make_room(self) -> bool:
        """Room for one more: at the limit, close the oldest of the connections still in their
        handshake or idle (no request in progress); False if there is still none (every one busy)."""
        excess = len(self.pending) + len(self.open) + 1 - self.limit
        if excess > 0:
            idle = [(t, c) for c, t in self.open.items() if c.idle] + list((t, h) for h, t in self.pending.items())
            for _, c in sorted(idle, key=lambda x: x[0])[:excess]:
                if isinstance(c, asyncio.Task):
                    c.cancel()  # the handshake's transport is aborted
                    self.pending.pop(c, None)
                else:
                    c.transport.abort()  # at once: no TLS goodbye awaited from an idle client
                    self.open.pop(c, None)
        return len(self.pending) + len(self.open) < self.limit


def guarded_protocol(conns: Connections) -> type[H11Protocol]:
    """uvicorn's HTTP/1.1 protocol, registered in ``conns`` while open, and closed if it sends
    no complete request head within ``timeout_keep_alive`` seconds of its handshake."""

    class Guarded(H11Protocol):
        _first: asyncio.TimerHandle | None = None

        @property
        def idle(self) -> bool:
            """No request in progress (before the first, or between two)."""
            return self.cycle is None or self.cycle.response_complete

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            conns.open[self] = time.monotonic()
            self._first = self.loop.call_later(self.timeout_keep_alive, self._no_request)

        def _no_request(self) -> None:
            if self.cycle is None and not self.transport.is_closing():
                self.transport.abort()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._first is not None:
                self._first.cancel()
            conns.open.pop(self, None)
            super().connection_lost(exc)

    return Guarded


class Acceptor:
    """Accepts the API's connections itself (uvicorn's listener has no bound and no handshake
    deadline): a connection gets a place in :class:`Connections` or is closed at once, then has
    ``handshake_timeout`` seconds for TLS. An ``accept()`` that fails (no file descriptor left)
    is logged, rate-limited, and retried shortly."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext | None, factory: Callable[[], asyncio.Protocol],
                 conns: Connections, handshake_timeout: float) -> None:
        self.sock, self.ctx, self.factory, self.conns = sock, ctx, factory, conns
        self.handshake_timeout = handshake_timeout
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sock.setblocking(False)
        self._loop = asyncio.get_running_loop().create_task(self._accept())

    def close(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
        self.sock.close()

    async def _accept(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(self.sock)
            except OSError as e:
                _log.error(f"accepting an API connection failed: {e}")
                await asyncio.sleep(0.5)
                continue
            room = self.conns.make_room()
            await asyncio.sleep(0)  # let the connections closed for room go before the next accept
            if not room:
                conn.close()
                continue
            task = loop.create_task(self._handshake(conn))
            self.conns.pending[task] = time.monotonic()
            task.add_done_callback(lambda t: self.conns.pending.pop(t, None))

    async def _handshake(self, conn: socket.socket) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self.factory, conn, ssl=self.ctx,
                ssl_handshake_timeout=self.handshake_timeout if self.ctx else None,
                ssl_shutdown_timeout=self.handshake_timeout if self.ctx else None)
        except OSError:  # a handshake that failed or timed out (ssl.SSLError, TimeoutError)
            conn.close()


class _Server(uvicorn.Server):
    node: Node
    conns: Connections
    handshake_timeout: float
    acceptor: Acceptor | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await self.lifespan.startup()
        cfg = self.config
        loop = asyncio.get_running_loop()

        def factory() -> asyncio.Protocol:
            return cfg.http_protocol_class(config=cfg, server_state=self.server_state,  # type: ignore[call-arg]
                                           app_state=self.lifespan.state, _loop=loop)

        host = cfg.host or "127.0.0.1"
        sock = socket.create_server((host, cfg.port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                    backlog=cfg.backlog)
        self.acceptor = Acceptor(sock, cfg.ssl, factory, self.conns, self.handshake_timeout)
        self.acceptor.start()
        self.servers = []
        self.started = True

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.acceptor is not None:
            self.acceptor.close()
        await super().shutdown(sockets)

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
    forkserver.warm()  # the first job's party process starts with Tessera already imported
    cfg = NodeConfig.load(config_path)
    private_dir(cfg.store_dir)
    logger = setup_logging(cfg.name, cfg.store_dir / "node.log")
    node = Node(cfg, logger)
    node.recover()
    key, cert = api_paths(cfg.path(cfg.identity_dir), cfg.name)
    conns = Connections(connection_limit(cfg.max_connections))
    server = _Server(uvicorn.Config(create_app(node), host=cfg.api_host, port=cfg.api_port,
                                    ssl_keyfile=str(key), ssl_certfile=str(cert), log_config=None,
                                    access_log=False, timeout_graceful_shutdown=3, lifespan="off",
                                    http=guarded_protocol(conns), backlog=cfg.backlog,
                                    # uvicorn's count includes connections being closed
                                    limit_concurrency=conns.limit + FD_RESERVE // 2, timeout_keep_alive=int(max(1, cfg.keep_alive))))
    server.node, server.conns, server.handshake_timeout = node, conns, cfg.keep_alive
    log(logger, logging.INFO, f"node listening on https://{cfg.api_host}:{cfg.api_port} "
        f"(at most {conns.limit} connections)", node=cfg.name)
    try:
        server.run()
    finally:
        node.stop()
        log(logger, logging.INFO, "node stopped", node=cfg.name)
