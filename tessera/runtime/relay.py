"""A userspace WAN emulator on 127.0.0.1: TCP forwarding with a one-way delay and a bandwidth cap.

This kernel has no ``netem``, so benchmarks that ask "what does this cost between organisations?"
run the parties' links through a :class:`Relay` instead. The relay listens on one port per route
and forwards every accepted connection to the route's target, both directions, byte for byte and
in order. Each direction is a FIFO of chunks stamped with their arrival time: a chunk leaves no
earlier than ``arrival + delay`` (so a request/response pays the round trip ``2 * delay``) and
only when a token bucket of ``bandwidth`` bytes per second (burst :attr:`LinkShape.burst`) holds
enough tokens for it; chunks larger than the burst leave in burst-sized pieces.

:func:`run_mesh <tessera.runtime.cluster.run_mesh>` (and ``run_cluster``, ``run_local``) take a
relay and give every endpoint the relay's port for each peer while it keeps listening on its own.
The relay sees only TLS records; it authenticates nothing and needs no keys.
"""

from __future__ import annotations

import contextlib
import queue
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType

from tessera.errors import SessionError

__all__ = ["LinkShape", "Relay", "Departure", "parse_duration", "parse_rate"]

_CHUNK = 1 << 16
_UNITS_S = {"s": 1.0, "ms": 1e-3, "us": 1e-6}
_UNITS_RATE = {"bit": 1 / 8, "kbit": 1e3 / 8, "mbit": 1e6 / 8, "gbit": 1e9 / 8,
               "b": 1.0, "kb": 1e3, "mb": 1e6, "gb": 1e9}


def parse_duration(text: str) -> float:
    """Seconds from ``"20ms"``, ``"0.5s"``, ``"150us"`` (a bare number is milliseconds)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|ms|us)?\s*", text.lower())
    if m is None:
        raise SessionError(f"cannot read the duration {text!r}; write e.g. 20ms, 0.5s or 150us")
    return float(m.group(1)) * _UNITS_S[m.group(2) or "ms"]


def parse_rate(text: str) -> float:
    """Bytes per second from ``"1gbit"``, ``"100mbit"``, ``"10MB"`` (bits unless ``B``/``KB``...)."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kmg]?bit|[kmg]?b)\s*", text.lower())
    if m is None or float(m.group(1)) <= 0:
        raise SessionError(f"cannot read the bandwidth {text!r}; write e.g. 1gbit, 100mbit or 10MB (bytes)")
    return float(m.group(1)) * _UNITS_RATE[m.group(2)]


@dataclass(frozen=True)
class LinkShape:
    """One direction of every relayed link: ``delay`` seconds one way, ``bandwidth`` bytes/s
    (``None``: uncapped); ``burst`` is the token bucket's size in bytes."""

    delay: float = 0.0
    bandwidth: float | None = None
    burst: int = 0

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise SessionError(f"a link's delay cannot be negative, got {self.delay}")
        if self.bandwidth is not None and self.bandwidth <= 0:
            raise SessionError(f"a link's bandwidth must be positive, got {self.bandwidth}")
        if self.bandwidth is not None and self.burst <= 0:
            # one millisecond of traffic, at least one chunk: fine-grained without busy sleeping
            object.__setattr__(self, "burst", max(_CHUNK, int(self.bandwidth * 1e-3)))

    @classmethod
    def of(cls, rtt: str | None = None, bandwidth: str | None = None) -> LinkShape:
        """From command-line text: a round-trip time (each way pays half) and a bandwidth."""
        return cls(delay=parse_duration(rtt) / 2 if rtt else 0.0,
                   bandwidth=parse_rate(bandwidth) if bandwidth else None)

    def describe(self) -> str:
        bw = "uncapped" if self.bandwidth is None else f"{self.bandwidth * 8 / 1e6:g} Mbit/s"
        return f"RTT {2 * self.delay * 1e3:g} ms, {bw}"


@dataclass(frozen=True)
class Departure:
    """One chunk as the relay forwarded it: when it arrived, when it was let go (the moment its
    tokens were taken), and its size."""

    arrived: float
    departed: float
    size: int


@dataclass
class _Direction:
    """One direction of one relayed connection: a FIFO, a token bucket, and what it forwarded."""

    src: socket.socket
    dst: socket.socket
    shape: LinkShape
    record: bool
    fifo: queue.SimpleQueue[tuple[float, bytes] | None] = field(default_factory=queue.SimpleQueue)
    log: list[Departure] = field(default_factory=list)
    forwarded: int = 0

    def read(self) -> None:
        try:
            while chunk := self.src.recv(_CHUNK):
                self.fifo.put((time.monotonic(), chunk))
        except OSError:
            pass
        self.fifo.put(None)

    def write(self, done: threading.Event) -> None:
        shape, tokens, last = self.shape, float(self.shape.burst), time.monotonic()
        try:
            while (item := self.fifo.get()) is not None:
                arrived, chunk = item
                due = arrived + shape.delay
                while (now := time.monotonic()) < due:
                    time.sleep(due - now)
                view = memoryview(chunk)
                while view:
                    piece = view[: shape.burst] if shape.bandwidth is not None else view
                    if shape.bandwidth is not None:
                        while True:
                            now = time.monotonic()
                            tokens = min(float(shape.burst), tokens + (now - last) * shape.bandwidth)
                            last = now
                            if tokens >= len(piece):
                                break
                            time.sleep((len(piece) - tokens) / shape.bandwidth)
                        tokens -= len(piece)
                    if self.record:
                        self.log.append(Departure(arrived, now, len(piece)))
                    self.dst.sendall(piece)
                    self.forwarded += len(piece)
                    view = view[len(piece):]
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        finally:
            done.set()


class Relay:
    """Forwards TCP connections on 127.0.0.1 through links of one :class:`LinkShape`.

    ``record=True`` keeps every chunk's :class:`Departure` (for tests); :attr:`forwarded` counts
    the bytes each route carried, both directions. Use as a context manager, or :meth:`close`.
    """

    def __init__(self, shape: LinkShape, *, host: str = "127.0.0.1", record: bool = False) -> None:
        self.shape, self.host, self.record = shape, host, record
        self._lock = threading.Lock()
        self._listeners: list[socket.socket] = []
        self._sockets: list[socket.socket] = []
        self._directions: dict[int, list[_Direction]] = {}
        self._closed = False

    def route(self, target: tuple[str, int]) -> int:
        """Start forwarding a new port of the relay to ``target``; returns that port."""
        listener = socket.create_server((self.host, 0), backlog=16)
        port = int(listener.getsockname()[1])
        with self._lock:
            self._listeners.append(listener)
            self._directions[port] = []
        threading.Thread(target=self._accept, args=(listener, port, target), daemon=True,
                         name=f"tessera-relay-{port}").start()
        return port

    def _accept(self, listener: socket.socket, port: int, target: tuple[str, int]) -> None:
        while True:
            try:
                inbound, _ = listener.accept()
            except OSError:
                return
            try:
                outbound = socket.create_connection(target, timeout=10)
                outbound.settimeout(None)
            except OSError:
                inbound.close()
                continue
            for s in (inbound, outbound):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            ways = [_Direction(inbound, outbound, self.shape, self.record),
                    _Direction(outbound, inbound, self.shape, self.record)]
            with self._lock:
                if self._closed:
                    inbound.close()
                    outbound.close()
                    return
                self._sockets += [inbound, outbound]
                self._directions[port] += ways
            dones = [threading.Event(), threading.Event()]
            for way, done in zip(ways, dones):
                threading.Thread(target=way.read, daemon=True).start()
                threading.Thread(target=way.write, args=(done,), daemon=True).start()
            threading.Thread(target=self._close_when_done, args=(dones, inbound, outbound), daemon=True).start()

    @staticmethod
    def _close_when_done(dones: list[threading.Event], *socks: socket.socket) -> None:
        for d in dones:
            d.wait()
        for s in socks:
            s.close()

    def departures(self, port: int) -> list[list[Departure]]:
        """Per direction of every connection accepted on ``port`` (client to target first), the
        chunks it forwarded (only with ``record=True``)."""
        with self._lock:
            return [list(d.log) for d in self._directions.get(port, [])]

    @property
    def forwarded(self) -> dict[int, int]:
        """Bytes forwarded so far per route port (both directions, every connection)."""
        with self._lock:
            return {p: sum(d.forwarded for d in ds) for p, ds in self._directions.items()}

    def close(self) -> None:
        """Stop accepting and cut every relayed connection. Idempotent."""
        with self._lock:
            self._closed = True
            socks, self._sockets = self._sockets, []
            listeners, self._listeners = self._listeners, []
        for s in [*listeners, *socks]:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)  # wakes the threads blocked on it
            s.close()

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, t: type[BaseException] | None, v: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
