"""A full mesh of mutual-TLS 1.3 connections between endpoints, as a :class:`Channel`.

Every endpoint listens on its own port; each connects to every endpoint with a lower index
(retrying with exponential backoff until ``connect_timeout``) and accepts the others. Both
sides of a connection present their certificate; each side then checks that the certificate
it received has exactly the fingerprint pinned for that peer (no CA, no host names), and the
two exchange HELLO frames naming themselves and carrying the session id. A receiver thread per
connection reads frames into a queue, so two parties sending large messages to each other at
once never deadlock. ``recv`` waits at most ``timeout`` seconds; an ABORT frame from any peer
wakes every waiting ``recv`` with :class:`~tessera.errors.ProtocolAbort`.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tessera.errors import FrameError, PeerAuthError, ProtocolAbort, TransportError
from tessera.net.channel import Channel, Payload
from tessera.net.framing import (
    DEFAULT_MAX_FRAME,
    ConnectionClosed,
    FrameReader,
    FrameType,
    encode_header,
)
from tessera.net.identity import Identity, fingerprint_of

__all__ = ["Endpoint", "TlsChannel", "connect_mesh"]

_SMALL = 1 << 16


@dataclass(frozen=True)
class Endpoint:
    """A peer's listening address, its certificate (PEM) and the pinned fingerprint of it."""

    name: str
    host: str
    port: int
    fingerprint: str
    certificate: str = ""


def _context(server: bool, identity: Identity, peers: Sequence[Endpoint], certs_pem: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER if server else ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_cert_chain(identity.cert_path, identity.key_path)
    ctx.check_hostname = False
    if server:
        # clients must present one of the pinned certificates: they are the only trust anchors
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(cadata=certs_pem)
        ctx.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    else:
        # the handshake still proves the server holds the key of the certificate it presents;
        # the client then compares that certificate's fingerprint with the pinned one, which
        # lets it name the fingerprint it was shown when they differ
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _Link:
    """One authenticated connection: a sender (with a lock) and a receiver thread."""

    def __init__(self, owner: "TlsChannel", peer: int, sock: ssl.SSLSocket, reader: FrameReader, send_seq: int) -> None:
        self.owner = owner
        self.peer = peer
        self.sock = sock
        self.reader = reader
        self.send_seq = send_seq
        self.lock = threading.Lock()
        self.queue: deque[bytearray] = deque()
        self.closed: str | None = None
        self.thread = threading.Thread(target=self._receive, daemon=True, name=f"tessera-recv-{peer}")

    def send(self, kind: FrameType, payload: Payload) -> None:
        n = payload.nbytes if isinstance(payload, memoryview) else len(payload)
        with self.lock:
            header = encode_header(kind, self.owner.session_id, self.send_seq, n)
            self.send_seq += 1
            if n <= _SMALL:
                self.sock.sendall(header + bytes(payload))
            else:
                self.sock.sendall(header)
                self.sock.sendall(payload)

    def _receive(self) -> None:
        cond = self.owner._cond
        try:
            while True:
                kind, payload = self.reader.read()
                with cond:
                    if kind is FrameType.DATA:
                        self.queue.append(payload)
                    elif kind is FrameType.ABORT:
                        if self.owner._aborted is None:
                            self.owner._aborted = (self.owner.names[self.peer], payload.decode("utf-8", "replace"))
                    elif kind is FrameType.CLOSE:
                        self.closed = "closed the session"
                        cond.notify_all()
                        return
                    else:
                        raise FrameError(f"unexpected {kind.name} frame during the session")
                    cond.notify_all()
        except (ConnectionClosed, OSError) as e:
            reason = "closed the connection" if isinstance(e, ConnectionClosed) else f"connection failed ({type(e).__name__})"
        except FrameError as e:
            reason = f"sent a bad frame: {e}"
        with cond:
            self.closed = reason
            cond.notify_all()


class TlsChannel(Channel):
    """This endpoint's authenticated links to every other endpoint (see :func:`connect_mesh`)."""

    def __init__(self, me: int, names: Sequence[str], session_id: bytes, timeout: float) -> None:
        super().__init__(me, names)
        self.session_id = session_id
        self.timeout = timeout
        self._links: dict[int, _Link] = {}
        self._cond = threading.Condition()
        self._aborted: tuple[str, str] | None = None
        self._closed = False

    def _send_raw(self, peer: int, payload: Payload) -> None:
        link = self._links[peer]
        try:
            link.send(FrameType.DATA, payload)
        except OSError as e:
            with self._cond:
                if self._aborted is not None:
                    raise ProtocolAbort(*self._aborted) from None
            raise TransportError(f"{self.name!r} could not send to {self.names[peer]!r}: {type(e).__name__}") from None

    def _recv_raw(self, peer: int) -> bytearray:
        link = self._links[peer]
        deadline = time.monotonic() + self.timeout
        with self._cond:
            while True:
                if link.queue:
                    return link.queue.popleft()
                if self._aborted is not None:
                    raise ProtocolAbort(*self._aborted)
                if link.closed is not None:
                    raise TransportError(f"{self.names[peer]!r} {link.closed} while {self.name!r} waited for it")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransportError(
                        f"{self.name!r} timed out after {self.timeout:g} s waiting for {self.names[peer]!r}"
                    )
                self._cond.wait(left)

    def _abort_raw(self, reason: str) -> None:
        data = reason.encode("utf-8")[:4096]
        for link in self._links.values():
            try:
                link.sock.settimeout(2.0)
                link.send(FrameType.ABORT, data)
            except OSError:
                pass
        self.close()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for link in self._links.values():
            try:
                link.sock.settimeout(2.0)
                link.send(FrameType.CLOSE, b"")
            except OSError:
                pass
        for link in self._links.values():
            try:
                link.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        for link in self._links.values():
            link.thread.join(timeout=5.0)
            try:
                link.sock.close()
            except OSError:
                pass


def _hello(sock: ssl.SSLSocket, me: str, session_id: bytes, max_frame: int) -> tuple[str, FrameReader]:
    sock.sendall(encode_header(FrameType.HELLO, session_id, 0, len(payload := json.dumps({"name": me}).encode())) + payload)
    reader = FrameReader(sock, session_id, max_frame)
    kind, body = reader.read()
    if kind is not FrameType.HELLO:
        raise FrameError(f"expected HELLO, got {kind.name}")
    try:
        return str(json.loads(body)["name"]), reader
    except (ValueError, KeyError, TypeError):
        raise FrameError("malformed HELLO frame") from None


def _check_pin(sock: ssl.SSLSocket, me: str, peer: Endpoint) -> None:
    der = sock.getpeercert(binary_form=True)
    presented = fingerprint_of(der) if der else "none"
    if presented != peer.fingerprint:
        raise PeerAuthError(
            f"{me!r} refused peer {peer.name!r}: it presented certificate {presented}, "
            f"but the pinned fingerprint is {peer.fingerprint}"
        )


def connect_mesh(
    me: int,
    endpoints: Sequence[Endpoint],
    identity: Identity,
    session_id: bytes,
    *,
    timeout: float = 60.0,
    connect_timeout: float = 30.0,
    max_frame: int = DEFAULT_MAX_FRAME,
) -> TlsChannel:
    """Listen, connect to every peer, authenticate each, and return the channel.

    Raises TransportError (port in use, peer unreachable before ``connect_timeout``),
    PeerAuthError (a certificate that is not the pinned one) or FrameError.
    """
    if len(session_id) != 16:
        raise ValueError("a session id has 16 bytes")
    names = [e.name for e in endpoints]
    own = endpoints[me]
    chan = TlsChannel(me, names, session_id, timeout)
    certs = _peer_certs(endpoints, me)
    server_ctx = _context(True, identity, endpoints, certs)
    client_ctx = _context(False, identity, endpoints, certs)
    deadline = time.monotonic() + connect_timeout
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((own.host, own.port))
    except OSError as e:
        listener.close()
        raise TransportError(f"{own.name!r} cannot listen on {own.host}:{own.port}: {e.strerror or e}") from None
    listener.listen(len(endpoints))
    errors: list[BaseException] = []
    links: dict[int, _Link] = {}
    lock = threading.Lock()
    expected_in = len(endpoints) - 1 - me

    def accept_all() -> None:
        try:
            while True:
                with lock:
                    if sum(1 for p in links if p > me) >= expected_in or errors:
                        return
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransportError(f"{own.name!r}: peers did not connect within {connect_timeout:g} s")
                listener.settimeout(min(left, 0.5))
                try:
                    raw, _ = listener.accept()
                except TimeoutError:
                    continue
                raw.settimeout(max(1.0, deadline - time.monotonic()))
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                try:
                    sock = server_ctx.wrap_socket(raw, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    raw.close()
                    waiting = [names[p] for p in range(me + 1, len(names)) if p not in links]
                    raise PeerAuthError(
                        f"{own.name!r} refused a connection from a peer (one of {waiting}) whose certificate is "
                        f"not among the pinned ones (TLS: {getattr(e, 'reason', None) or e})"
                    ) from None
                claimed, reader = _hello(sock, own.name, session_id, max_frame)
                if claimed not in names or names.index(claimed) <= me:
                    sock.close()
                    raise PeerAuthError(f"{own.name!r} refused a connection claiming to be {claimed!r}")
                peer = names.index(claimed)
                _check_pin(sock, own.name, endpoints[peer])
                sock.settimeout(None)
                with lock:
                    links[peer] = _Link(chan, peer, sock, reader, send_seq=1)
        except BaseException as e:  # noqa: BLE001 - handed to the caller
            with lock:
                errors.append(e)

    acceptor = threading.Thread(target=accept_all, name="tessera-accept", daemon=True)
    acceptor.start()
    try:
        for peer in range(me):
            links_peer = _connect(chan, own.name, identity.fingerprint, endpoints[peer], peer, client_ctx,
                                  session_id, max_frame, deadline, connect_timeout)
            with lock:
                links[peer] = links_peer
        acceptor.join(max(0.0, deadline - time.monotonic()) + 1.0)
        if errors:
            raise errors[0]
        if acceptor.is_alive() or len(links) != len(endpoints) - 1:
            missing = [names[p] for p in range(len(endpoints)) if p != me and p not in links]
            raise TransportError(f"{own.name!r}: no connection from {missing} within {connect_timeout:g} s")
    except BaseException:
        with lock:
            errors.append(TransportError("mesh set-up failed"))
        for link in links.values():
            link.sock.close()
        listener.close()
        raise
    listener.close()
    chan._links = links
    for link in links.values():
        link.thread.start()
    return chan


def _peer_certs(endpoints: Sequence[Endpoint], me: int) -> str:
    """The peers' certificates, each checked against its pinned fingerprint: the only trust
    anchors of the TLS contexts (a certificate outside this set fails the handshake)."""
    pems = []
    for i, ep in enumerate(endpoints):
        if i == me:
            continue
        try:
            der = x509.load_pem_x509_certificate(ep.certificate.encode()).public_bytes(serialization.Encoding.DER)
        except ValueError:
            raise PeerAuthError(f"no readable certificate configured for peer {ep.name!r}") from None
        if fingerprint_of(der) != ep.fingerprint:
            raise PeerAuthError(
                f"the certificate configured for {ep.name!r} has fingerprint {fingerprint_of(der)}, "
                f"but the pinned fingerprint is {ep.fingerprint}"
            )
        pems.append(ep.certificate)
    return "\n".join(pems)


def _connect(
    chan: TlsChannel, me: str, my_fingerprint: str, peer_ep: Endpoint, peer: int, ctx: ssl.SSLContext,
    session_id: bytes, max_frame: int, deadline: float, connect_timeout: float,
) -> _Link:
    delay = 0.05
    while True:
        try:
            raw = socket.create_connection((peer_ep.host, peer_ep.port), timeout=max(0.5, deadline - time.monotonic()))
            break
        except OSError as e:
            if time.monotonic() + delay > deadline:
                raise TransportError(
                    f"{me!r} cannot reach {peer_ep.name!r} at {peer_ep.host}:{peer_ep.port} "
                    f"within {connect_timeout:g} s ({e.strerror or e})"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock = ctx.wrap_socket(raw)
    except (ssl.SSLError, OSError) as e:
        raw.close()
        raise PeerAuthError(
            f"{me!r} could not complete the TLS handshake with {peer_ep.name!r} "
            f"(TLS: {getattr(e, 'reason', None) or e})"
        ) from None
    try:
        _check_pin(sock, me, peer_ep)
    except PeerAuthError:
        sock.close()
        raise
    try:
        claimed, reader = _hello(sock, me, session_id, max_frame)
    except ssl.SSLError as e:
        sock.close()
        raise PeerAuthError(
            f"peer {peer_ep.name!r} refused {me!r}'s certificate {my_fingerprint}: it is not the one pinned "
            f"for {me!r} there (TLS: {e.reason or e})"
        ) from None
    if claimed != peer_ep.name:
        sock.close()
        raise PeerAuthError(f"{me!r} expected {peer_ep.name!r} but the peer says it is {claimed!r}")
    sock.settimeout(None)
    return _Link(chan, peer, sock, reader, send_seq=1)
