"""A full mesh of mutual-TLS 1.3 connections between endpoints, as a :class:`Channel`.

Every endpoint listens on its own port; each dials every endpoint with a lower index (retrying
with exponential backoff until ``connect_timeout``) and accepts the others. How one
connection is authenticated (certificates pinned by fingerprint, no CA, no host names) is in
:mod:`tessera.net.handshake`; how frames travel afterwards, in :mod:`tessera.net.link`.

``recv`` waits at most ``timeout`` seconds; an ABORT frame from any peer wakes every waiting
``recv`` with :class:`~tessera.errors.ProtocolAbort` (also one waiting for a peer that closed
just before: see ``_ABORT_GRACE``); a closed or broken connection is a
:class:`~tessera.errors.TransportError` naming the peer.
"""

from __future__ import annotations

import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tessera.errors import FrameError, IdentityError, ProtocolAbort, SessionError, TransportError
from tessera.net.channel import Channel, Payload
from tessera.net.framing import DEFAULT_MAX_FRAME, SESSION_ID_SIZE, FrameType
from tessera.net.handshake import Established, NotAPeer, Peer, SetupStopped, admit, dial
from tessera.net.identity import Identity, fingerprint_of
from tessera.net.link import Link, Mailbox, wait_until
from tessera.net.pinning import client_context

__all__ = ["Endpoint", "TlsChannel", "connect_mesh"]

_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_REASON = 4096  # bytes of an abort reason sent to peers
_LINGER = 5.0  # at most this long, closing waits for sent data to be acknowledged
#: When the peer a ``recv`` waits for closes the session (a clean CLOSE, not a failed connection)
#: while other peers are still connected, wait this long for an ABORT from them before reporting
#: the closed peer: a party that was aborted closes its links, and its CLOSE can overtake the
#: aborting party's own ABORT, whose reason is the root cause every party should report. (A
#: connection that fails, e.g. a killed process, is reported at once.)
_ABORT_GRACE = 1.0

# authenticates one incoming connection: (socket, "host:port", names still expected -> pins)
_AdmitFn = Callable[[socket.socket, str, Mapping[str, str]], Established]


def _receive_buffer(n: int) -> memoryview:
    # Payloads are received straight into uninitialised numpy memory (huge pages where the
    # system allows): bytearray(n) would first zero every page, which costs almost as much
    # as decrypting into it. Always a memoryview, so no caller comes to rely on bytearray.
    return np.empty(n, dtype=np.uint8).data


@dataclass(frozen=True)
class Endpoint:
    """Where an endpoint listens, and the fingerprint pinned for its certificate.

    ``certificate`` (PEM) is optional: peers present their certificates themselves and are
    checked against ``fingerprint``. If given, it must match the fingerprint.
    """

    name: str
    host: str
    port: int
    fingerprint: str
    certificate: str = ""


class TlsChannel(Channel):
    """This endpoint's authenticated links to every other endpoint (made by :func:`connect_mesh`)."""

    def __init__(
        self,
        me: int,
        names: Sequence[str],
        session_id: bytes,
        links: Mapping[int, Link],
        mailbox: Mailbox,
        *,
        timeout: float,
        max_frame: int,
    ) -> None:
        super().__init__(me, names)
        self.session_id = session_id
        self.timeout = timeout
        self.max_frame = max_frame
        self._links = dict(links)
        self._mailbox = mailbox
        self._close_lock = threading.Lock()

    def _send_raw(self, peer: int, payload: Payload) -> None:
        n = payload.nbytes if isinstance(payload, memoryview) else len(payload)
        if n > self.max_frame:
            raise FrameError(
                f"a message of {n} bytes from {self.name!r} to {self.names[peer]!r} exceeds the frame limit "
                f"of {self.max_frame} bytes; split it"
            )
        if self._mailbox.aborted is not None:  # the session is over: stop at once
            raise ProtocolAbort(*self._mailbox.aborted)
        if self._mailbox.closed:
            raise TransportError(f"the channel of {self.name!r} is closed; cannot send to {self.names[peer]!r}")
        link = self._links[peer]
        try:
            link.send(FrameType.DATA, payload)
        except OSError as e:
            with self._mailbox.cond:
                if self._mailbox.aborted is not None:
                    raise ProtocolAbort(*self._mailbox.aborted) from None
                ended = link.ended
            why = f"{link.peer!r} {ended[1]}" if ended else f"{type(e).__name__}: {e}"
            raise TransportError(f"{self.name!r} could not send to {link.peer!r}: {why}") from None

    def _recv_raw(self, peer: int) -> bytearray | memoryview:
        link = self._links[peer]
        box = self._mailbox
        deadline = time.monotonic() + self.timeout
        grace: float | None = None
        with box.cond:
            while True:
                if link.queue:
                    return link.queue.popleft()
                if box.aborted is not None:
                    raise ProtocolAbort(*box.aborted)
                if box.closed:
                    raise TransportError(f"the channel of {self.name!r} is closed; cannot receive from {link.peer!r}")
                if link.ended is not None:
                    now = time.monotonic()
                    grace = min(now + _ABORT_GRACE, deadline) if grace is None else grace
                    others_open = any(other.ended is None for other in self._links.values())
                    if link.closed_by_peer and now < grace and others_open:
                        box.cond.wait(grace - now)  # an ABORT from another peer may still be on its way
                        continue
                    cls, why = link.ended
                    raise cls(f"{link.peer!r} {why} while {self.name!r} waited for a message from it")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TransportError(
                        f"{self.name!r} timed out after {self.timeout:g} s waiting for a message from {link.peer!r}"
                    )
                box.cond.wait(left)

    def _abort_raw(self, reason: str) -> None:
        self._shut(reason.encode("utf-8")[:_MAX_REASON])

    def close(self) -> None:
        """Send CLOSE to every peer and release the connections and threads. Idempotent."""
        self._shut(None)

    def _shut(self, abort: bytes | None) -> None:
        with self._close_lock:
            with self._mailbox.cond:
                if self._mailbox.closed:
                    return
                self._mailbox.closed = True
                self._mailbox.cond.notify_all()
            links = list(self._links.values())
            linger = min(_LINGER, self.timeout)
            deadline = time.monotonic() + linger
            # goodbyes in parallel: one peer that stopped reading must not delay the others
            byes = [threading.Thread(target=link.say_goodbye, args=(abort, linger), daemon=True) for link in links]
            for t in byes:
                t.start()
            for t in byes:
                t.join(max(0.0, deadline - time.monotonic()))
            # closing while sent data is unacknowledged could reset the connection and lose that
            # data; a peer that already ended its side needs nothing more
            wait_until(lambda: all(link.ended is not None or link.unacknowledged() == 0 for link in links), deadline)
            for link in links:
                link.terminate(join_timeout=2.0)
            for t in byes:
                t.join(2.0)


def _check_config(me: int, endpoints: Sequence[Endpoint], identity: Identity, session_id: bytes) -> None:
    if len(session_id) != SESSION_ID_SIZE:
        raise SessionError(f"a session id has {SESSION_ID_SIZE} bytes, got {len(session_id)}")
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise SessionError(f"endpoint names must be distinct: {names}")
    if not 0 <= me < len(endpoints):
        raise SessionError(f"endpoint index {me} is not among {len(endpoints)} endpoints")
    for e in endpoints:
        if not _FINGERPRINT.fullmatch(e.fingerprint):
            raise SessionError(f"the fingerprint pinned for {e.name!r} is not of the form sha256:<64 hex digits>")
        if not 0 < e.port < 65536:
            raise SessionError(f"endpoint {e.name!r} has no valid port ({e.port})")
        if e.certificate:
            try:
                got = fingerprint_of(ssl.PEM_cert_to_DER_cert(e.certificate))
            except ValueError:
                raise SessionError(f"the certificate given for {e.name!r} is not a PEM certificate") from None
            if got != e.fingerprint:
                raise SessionError(
                    f"the certificate given for {e.name!r} has fingerprint {got}, not the pinned {e.fingerprint}"
                )
    own = endpoints[me]
    if identity.fingerprint != own.fingerprint:
        raise IdentityError(
            f"the identity loaded for {own.name!r} ({identity.cert_path}) has fingerprint {identity.fingerprint}, "
            f"but {own.fingerprint} is pinned for {own.name!r}: its peers would refuse it"
        )


def _listen(own: Endpoint, backlog: int) -> socket.socket:
    try:
        return socket.create_server((own.host, own.port), backlog=backlog)
    except OSError as e:
        raise TransportError(
            f"{own.name!r} cannot listen on {own.host}:{own.port}: {e.strerror or e} "
            "(is another process using this port?)"
        ) from None


class _Acceptor:
    """Accepts and authenticates the connections of the endpoints with higher indices."""

    def __init__(self, me: int, endpoints: Sequence[Endpoint], admit_one: _AdmitFn, listener: socket.socket,
                 deadline: float, stop: threading.Event) -> None:
        self.thread = threading.Thread(target=self._run, name="tessera-accept", daemon=True)
        self.expected = {e.name: e.fingerprint for e in endpoints[me + 1 :]}
        self.done: dict[str, Established] = {}
        self.error: BaseException | None = None
        self.ignored: list[str] = []
        self._admit = admit_one
        self._listener = listener
        self._deadline = deadline
        self._stop = stop

    def _run(self) -> None:
        while len(self.done) < len(self.expected) and not self._stop.is_set():
            left = self._deadline - time.monotonic()
            if left <= 0:
                return
            self._listener.settimeout(min(left, 0.1))
            try:
                raw, addr = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as e:
                self.error = TransportError(f"accepting connections failed: {e}")
                break
            waiting = {n: fp for n, fp in self.expected.items() if n not in self.done}
            try:
                est = self._admit(raw, f"{addr[0]}:{addr[1]}", waiting)
            except NotAPeer as e:
                self.ignored.append(str(e))
                continue
            except BaseException as e:
                self.error = e
                break
            self.done[est.peer] = est
        if self.error is not None:
            self._stop.set()


def connect_mesh(
    me: int,
    endpoints: Sequence[Endpoint],
    identity: Identity,
    session_id: bytes,
    *,
    timeout: float = 60.0,
    connect_timeout: float = 30.0,
    max_frame: int = DEFAULT_MAX_FRAME,
    listener: socket.socket | None = None,
) -> TlsChannel:
    """Join the mesh as endpoint ``me``: listen, connect to every peer, authenticate each.

    ``listener``: a socket already bound (and listening) on this endpoint's port, e.g. one a
    launcher bound and handed down, so that no other process can take the port in between;
    without one, the port is bound here.

    ``timeout`` bounds every ``recv``; ``connect_timeout`` the whole set-up; ``max_frame`` the
    size of one message either way. Raises :class:`TransportError` (port in use, a peer not
    reachable before ``connect_timeout``), :class:`PeerAuthError` (a certificate that is not
    the pinned one, on either side), :class:`FrameError` (another session, malformed frames),
    :class:`IdentityError` (unusable key or certificate files) or :class:`SessionError` (a
    malformed endpoint list).
    """
    _check_config(me, endpoints, identity, session_id)
    own = endpoints[me]
    names = [e.name for e in endpoints]
    client_ctx = client_context(identity)
    deadline = time.monotonic() + connect_timeout
    stop = threading.Event()
    if listener is None:
        listener = _listen(own, backlog=len(endpoints))
    else:
        listener.listen(len(endpoints))

    def admit_one(raw: socket.socket, address: str, waiting: Mapping[str, str]) -> Established:
        return admit(own.name, identity, raw, address, waiting, session_id, max_frame=max_frame,
                     timeout=timeout, deadline=deadline, alloc=_receive_buffer)

    acceptor = _Acceptor(me, endpoints, admit_one, listener, deadline, stop)
    acceptor.thread.start()
    dialled: dict[str, Established] = {}
    try:
        for e in endpoints[:me]:
            dialled[e.name] = dial(
                own.name, identity, client_ctx, Peer(e.name, e.host, e.port, e.fingerprint), session_id,
                max_frame=max_frame, timeout=timeout, deadline=deadline, connect_timeout=connect_timeout,
                stop=stop, alloc=_receive_buffer,
            )
        acceptor.thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        if acceptor.error is not None:
            raise acceptor.error
        missing = [n for n in acceptor.expected if n not in acceptor.done]
        if missing:
            ignored = f"; ignored {acceptor.ignored}" if acceptor.ignored else ""
            raise TransportError(
                f"{own.name!r}: no connection from {missing} within {connect_timeout:g} s "
                f"(they connect to {own.host}:{own.port}){ignored}"
            )
    except BaseException as e:
        stop.set()
        acceptor.thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        listener.close()
        for est in [*dialled.values(), *acceptor.done.values()]:
            est.sock.close()
        if isinstance(e, SetupStopped) and acceptor.error is not None:
            raise acceptor.error from None
        raise
    listener.close()
    mailbox = Mailbox()
    links = {names.index(n): Link(n, est.sock, est.reader, session_id, mailbox)
             for n, est in [*dialled.items(), *acceptor.done.items()]}
    channel = TlsChannel(me, names, session_id, links, mailbox, timeout=timeout, max_frame=max_frame)
    for link in links.values():
        link.start()
    return channel
