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
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tessera.errors import FrameError, IdentityError, ProtocolAbort, SessionError, TransportError
from tessera.net.channel import Channel, Payload
from tessera.net.framing import DEFAULT_MAX_FRAME, SESSION_ID_SIZE, FrameType
from tessera.net.handshake import Clock, Established, NotAPeer, Peer, SetupStopped, admit, dial
from tessera.net.identity import Identity, fingerprint_of
from tessera.net.link import Link, Mailbox, wait_until
from tessera.net.pinning import client_context

__all__ = ["Endpoint", "TlsChannel", "connect_mesh", "HANDSHAKE_TIMEOUT", "MAX_PENDING"]

_FINGERPRINT = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_REASON = 4096  # bytes of an abort reason sent to peers
_LINGER = 5.0  # at most this long, closing waits for sent data to be acknowledged
#: When the peer a ``recv`` waits for closes the session (a clean CLOSE, not a failed connection)
#: while other peers are still connected, wait this long for an ABORT from them before reporting
#: the closed peer: a party that was aborted closes its links, and its CLOSE can overtake the
#: aborting party's own ABORT, whose reason is the root cause every party should report. (A
#: connection that fails, e.g. a killed process, is reported at once.)
_ABORT_GRACE = 1.0

# authenticates one incoming connection: (socket, "host:port", names still expected -> pins, its clock)
_AdmitFn = Callable[[socket.socket, str, Mapping[str, str], Clock], Established]


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


#: how long one incoming connection may take to authenticate (the default of ``handshake_timeout``)
HANDSHAKE_TIMEOUT = 5.0
#: at most this many incoming connections are authenticated at once; more are closed at once
#: (a real peer whose connection is closed unanswered dials again)
MAX_PENDING = 16
_KEEP_REFUSALS = 8  # refused connections named in the report when a peer never arrives


class _Acceptor:
    """Accepts the connections of the endpoints with higher indices, each authenticated in a
    thread of its own under its own deadline (``handshake_timeout``, and never past the set-up
    deadline). A connection refused before it authenticated is closed and remembered for the
    report, and the acceptor goes on waiting: no stranger can end or stall the set-up."""

    def __init__(self, me: int, endpoints: Sequence[Endpoint], admit_one: _AdmitFn, listener: socket.socket,
                 deadline: float, stop: threading.Event, handshake_timeout: float) -> None:
        self.thread = threading.Thread(target=self._run, name="tessera-accept", daemon=True)
        self.expected = {e.name: e.fingerprint for e in endpoints[me + 1 :]}
        self.done: dict[str, Established] = {}
        self.error: BaseException | None = None
        #: the last few refused connections (newest last) and how many there were
        self.refused: deque[NotAPeer] = deque(maxlen=_KEEP_REFUSALS)
        self.refused_count = 0
        self._admit = admit_one
        self._listener = listener
        self._deadline = deadline
        self._stop = stop
        self._handshake_timeout = handshake_timeout
        self._lock = threading.Lock()
        self._pending: dict[int, tuple[Clock, threading.Thread]] = {}
        self._next = 0

    def _complete(self) -> bool:
        with self._lock:
            return len(self.done) == len(self.expected)

    def _run(self) -> None:
        try:
            while not self._complete() and not self._stop.is_set():
                now = time.monotonic()
                if now >= self._deadline:
                    return
                self._expire(now)
                self._listener.settimeout(min(self._deadline - now, 0.05))
                try:
                    raw, addr = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError as e:
                    self._fail(TransportError(f"accepting connections failed: {e}"))
                    return
                self._start(raw, f"{addr[0]}:{addr[1]}", now)
        finally:
            self._end_pending()

    def _start(self, raw: socket.socket, address: str, now: float) -> None:
        with self._lock:
            busy = len(self._pending) >= MAX_PENDING
            if not busy:
                waiting = {n: fp for n, fp in self.expected.items() if n not in self.done}
                clock = Clock(min(now + self._handshake_timeout, self._deadline))
                key, self._next = self._next, self._next + 1
                t = threading.Thread(target=self._handshake, args=(key, raw, address, waiting, clock),
                                     name="tessera-admit", daemon=True)
                self._pending[key] = (clock, t)
        if busy:
            raw.close()
            self._note(NotAPeer(f"a connection from {address} was closed: {MAX_PENDING} others were being set up"))
        else:
            t.start()

    def _handshake(self, key: int, raw: socket.socket, address: str, waiting: Mapping[str, str],
                   clock: Clock) -> None:
        try:
            est = self._admit(raw, address, waiting, clock)
        except NotAPeer as e:
            self._note(e)
            return
        except BaseException as e:
            self._fail(e)
            return
        finally:
            with self._lock:
                self._pending.pop(key, None)
        with self._lock:
            duplicate = est.peer in self.done or self._stop.is_set()
            if not duplicate:
                self.done[est.peer] = est
        if duplicate:
            est.sock.close()

    def _note(self, refusal: NotAPeer) -> None:
        with self._lock:
            self.refused.append(refusal)
            self.refused_count += 1

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            if self.error is None:
                self.error = error
        self._stop.set()

    def _expire(self, now: float) -> None:
        with self._lock:
            late = [clock for clock, _ in self._pending.values() if clock.deadline <= now]
        for clock in late:
            clock.expire()

    def _end_pending(self) -> None:
        """Stop every set-up still under way (strangers, once the peers are all here)."""
        with self._lock:
            pending = list(self._pending.values())
        for clock, _ in pending:
            clock.expire()
        for _, t in pending:
            t.join(2.0)

    def missing_error(self, own: Endpoint, connect_timeout: float) -> TransportError | None:
        """The error for the expected peers that never authenticated (None if none is missing).

        Names the refused connections; if one of them introduced itself as a missing peer, the
        error is of the kind its refusal was for (e.g. :class:`PeerAuthError` for a certificate
        that is not the pinned one).
        """
        with self._lock:
            missing = [n for n in self.expected if n not in self.done]
            refused, count = list(self.refused), self.refused_count
        if not missing:
            return None
        kind: type[TransportError] = TransportError
        for r in refused:
            if r.claimed in missing:
                kind = r.kind
        why = ""
        if count:
            shown = "; ".join(str(r) for r in refused)
            more = f" (the last {len(refused)} shown)" if count > len(refused) else ""
            why = f"; it refused {count} connection{'s' if count > 1 else ''}{more}: {shown}"
        return kind(
            f"{own.name!r}: no connection from {missing} within {connect_timeout:g} s "
            f"(they connect to {own.host}:{own.port}){why}"
        )


def _dial_all(me: str, peers: Sequence[Endpoint], dialled: dict[str, Established],
              dial_one: Callable[[Endpoint], Established], stop: threading.Event, deadline: float) -> None:
    """Dial every peer at once, each in its own thread (set-up pays the slowest handshake, not
    their sum: on a WAN link a handshake costs a few round trips); fills ``dialled``.

    The first failure stops the other dials (``stop``) and is raised, not the
    :class:`SetupStopped` it caused in the others.
    """
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(e: Endpoint) -> None:
        try:
            est = dial_one(e)
        except BaseException as err:  # handed to the caller's thread below
            with lock:
                errors.append(err)
            stop.set()
            return
        with lock:
            dialled[e.name] = est

    threads = [threading.Thread(target=run, args=(e,), name=f"tessera-dial-{e.name}", daemon=True) for e in peers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()) + 5.0)
    if errors:
        raise next((e for e in errors if not isinstance(e, SetupStopped)), errors[0])
    if len(dialled) < len(peers):
        stop.set()
        missing = [e.name for e in peers if e.name not in dialled]
        raise TransportError(f"{me!r}: dialling {missing} did not end by the set-up deadline")


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
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
) -> TlsChannel:
    """Join the mesh as endpoint ``me``: listen, connect to every peer, authenticate each.

    ``listener``: a socket already bound (and listening) on this endpoint's port, e.g. one a
    launcher bound and handed down, so that no other process can take the port in between;
    without one, the port is bound here.

    ``timeout`` bounds every ``recv``; ``connect_timeout`` the whole set-up; ``handshake_timeout``
    the set-up of one incoming connection; ``max_frame`` the size of one message either way.
    Incoming connections are authenticated concurrently; one that is refused before it
    authenticated (garbage, silence, another session, a name or certificate not expected) is
    told nothing but a generic refusal, and the endpoint keeps waiting for its peers until
    ``connect_timeout``. Raises :class:`TransportError` (port in use, a peer not reachable or
    not arriving before ``connect_timeout``, naming the connections refused meanwhile),
    :class:`PeerAuthError` (a certificate that is not the pinned one, on either side),
    :class:`FrameError` (malformed frames of an authenticated peer, or a peer that arrived only
    in another session), :class:`IdentityError` (unusable key or certificate files) or
    :class:`SessionError` (a malformed endpoint list).
    """
    if not handshake_timeout > 0:
        raise SessionError(f"handshake_timeout must be positive, got {handshake_timeout}")
    _check_config(me, endpoints, identity, session_id)
    own = endpoints[me]
    names = [e.name for e in endpoints]
    client_ctx = client_context(identity)
    deadline = time.monotonic() + connect_timeout
    stop = threading.Event()
    backlog = len(endpoints) + MAX_PENDING  # strangers waiting to be accepted must not crowd the peers out
    if listener is None:
        listener = _listen(own, backlog=backlog)
    else:
        listener.listen(backlog)

    def admit_one(raw: socket.socket, address: str, waiting: Mapping[str, str], clock: Clock) -> Established:
        return admit(own.name, identity, raw, address, waiting, session_id, max_frame=max_frame,
                     timeout=timeout, clock=clock, alloc=_receive_buffer)

    acceptor = _Acceptor(me, endpoints, admit_one, listener, deadline, stop, handshake_timeout)
    acceptor.thread.start()
    dialled: dict[str, Established] = {}
    try:
        _dial_all(own.name, endpoints[:me], dialled, lambda e: dial(
            own.name, identity, client_ctx, Peer(e.name, e.host, e.port, e.fingerprint), session_id,
            max_frame=max_frame, timeout=timeout, deadline=deadline, connect_timeout=connect_timeout,
            stop=stop, alloc=_receive_buffer,
        ), stop, deadline)
        acceptor.thread.join(max(0.0, deadline - time.monotonic()) + 1.0)
        if acceptor.error is not None:
            raise acceptor.error
        missing = acceptor.missing_error(own, connect_timeout)
        if missing is not None:
            raise missing
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
