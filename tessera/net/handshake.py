"""Setting up one connection of the mesh: introduction, TLS 1.3 handshake, pin check, HELLO.

On a new TCP connection (the endpoint with the higher index dials the lower one):

1. *Introduction*, in the clear. The dialer sends a HELLO frame with its name and its
   certificate (both public). The listener checks the session id, that the name belongs to a
   peer that dials it, and that the certificate's fingerprint is the one pinned for that name.
   If all is well it answers HELLO with its own name. Nothing here is trusted yet: the
   introduction only tells the listener which pinned certificate to demand.
2. *TLS 1.3 handshake*. The listener requires exactly the announced (pinned) certificate, so
   the dialer proves it holds that key. The dialer accepts any certificate, then compares it
   with the pin before it sends anything else; on a mismatch it sends ABORT with the reason
   (inside TLS) and stops.
3. *HELLO* inside TLS, each way: the name, and the session id in the frame header, now
   authenticated. Frame sequence numbers start again at 0 on the TLS stream.

Until the dialer is authenticated (the end of step 2) the listener tells it nothing: whatever
fails (garbage, another session, a name or certificate that is not expected, a failed TLS
handshake, silence past the connection's own deadline) is a :class:`NotAPeer` — the
connection gets one generic refusal frame (echoing only the session id it sent itself) and
is closed, the reason stays with the listener, and the listener keeps waiting for its real
peers. Everything is bounded by a :class:`Clock`: the per-connection deadline of a listener
(which also wakes a read that a slow sender keeps alive byte by byte), or the set-up deadline
of a dialer; afterwards the socket is blocking.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import NoReturn

from tessera.errors import FrameError, PeerAuthError, TransportError
from tessera.net.framing import Frame, FrameReader, FrameType
from tessera.net.identity import Identity, fingerprint_of
from tessera.net.link import TlsStream, send_frame
from tessera.net.pinning import pin_mismatch, presented_fingerprint, server_context

__all__ = [
    "Peer", "Established", "NotAPeer", "SetupStopped", "Clock", "dial", "admit", "tune", "connect_with_backoff",
    "REFUSED",
]

_INTRO_MAX = 1 << 14  # an introduction is a name and one certificate


@dataclass(frozen=True)
class Peer:
    """Who is at the other end: name, address and pinned certificate fingerprint."""

    name: str
    host: str
    port: int
    fingerprint: str


@dataclass
class Established:
    """An authenticated connection after the HELLO exchange."""

    peer: str
    sock: ssl.SSLSocket
    reader: FrameReader


class NotAPeer(TransportError):
    """An incoming connection that was refused before it authenticated as an expected peer.

    The listener ignores it (and keeps waiting for its peers); the message is for the
    listener's own report only. ``claimed`` is the name the connection introduced itself with
    (None if it did not get that far); ``kind`` the error its refusal would be for a peer.
    """

    def __init__(self, message: str, claimed: str | None = None, kind: type[TransportError] = TransportError) -> None:
        super().__init__(message)
        self.claimed = claimed
        self.kind = kind


class SetupStopped(TransportError):
    """Dialling stopped because the mesh set-up already failed for another reason."""


Alloc = Callable[[int], bytearray | memoryview]

#: the reason a listener gives every connection it refuses before authentication (no more)
REFUSED = "not admitted"


class Clock:
    """The deadline of one connection's set-up, and the socket it currently runs on.

    :meth:`expire` (called by whoever watches the deadline) shuts the socket down, which wakes
    any read or handshake blocked on it: a per-call socket timeout alone would let a peer that
    sends one byte now and then stretch the set-up without end.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.expired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def left(self) -> float:
        """Seconds until the deadline (at least a twentieth of one, so a call can still fail cleanly)."""
        return max(0.05, self.deadline - time.monotonic())

    def follow(self, sock: socket.socket) -> None:
        """From now on the set-up runs on ``sock`` (e.g. the TLS socket that took the plain one over)."""
        with self._lock:
            self._sock = sock
            expired = self.expired
        if expired:
            self._shut(sock)

    def expire(self) -> None:
        """The deadline passed: wake and end whatever the set-up is blocked on. Idempotent."""
        with self._lock:
            self.expired = True
            sock = self._sock
        if sock is not None:
            self._shut(sock)

    @staticmethod
    def _shut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError, ValueError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def tune(sock: socket.socket, timeout: float) -> None:
    """No Nagle delay; and (Linux) give up on a connection whose sent data stays
    unacknowledged for ``timeout`` seconds, so a send to a frozen peer cannot block forever."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if hasattr(socket, "TCP_USER_TIMEOUT"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(max(timeout, 10.0) * 1000))


_MAX_REFUSAL = 1000  # characters of a peer's (unauthenticated) refusal reason worth showing
_REFUSAL_KINDS: dict[str, type[TransportError]] = {
    "PeerAuthError": PeerAuthError,
    "FrameError": FrameError,
    "TransportError": TransportError,
}


def _refusal(cls: type[TransportError], reason: str) -> bytes:
    """The ABORT payload that tells a peer during set-up why it is refused."""
    return json.dumps({"error": cls.__name__, "reason": reason}).encode()


def _raise_refusal(me: str, peer: str, payload: bytes | bytearray | memoryview) -> NoReturn:
    """Raise the error a peer's set-up ABORT frame describes (the reason is the peer's word)."""
    try:
        body = json.loads(bytes(payload))
        cls = _REFUSAL_KINDS.get(str(body["error"]), TransportError)
        reason = str(body["reason"])
    except (ValueError, KeyError, TypeError):
        cls, reason = TransportError, bytes(payload).decode("utf-8", "replace")
    raise cls(f"{peer!r} refused {me!r}: {reason[:_MAX_REFUSAL]}")


def _hello(name: str, certificate: bytes | None = None) -> bytes:
    body: dict[str, str] = {"name": name}
    if certificate is not None:
        body["certificate"] = certificate.hex()
    return json.dumps(body).encode()


def _parse_hello(payload: bytes | bytearray | memoryview, source: str) -> dict[str, str]:
    try:
        body = json.loads(bytes(payload))
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            raise ValueError
        return body
    except ValueError:
        raise FrameError(f"{source} sent a malformed HELLO frame") from None


def _refuse(
    sock: socket.socket, me: str, who: str, cls: type[TransportError], reason: str, session_id: bytes
) -> NoReturn:
    """Tell the peer why it is refused (best effort), then raise the same reason here."""
    with contextlib.suppress(OSError, ValueError):
        send_frame(sock, FrameType.ABORT, session_id, 0, _refusal(cls, reason))
    raise cls(f"{me!r} refused {who}: {reason}")


def _expect_hello(me: str, peer: str, frame: Frame | None) -> str:
    """The name in a peer's HELLO; the peer's refusal if it sent ABORT instead."""
    if frame is None:
        raise TransportError(f"{peer!r} closed the connection with {me!r} during set-up")
    if frame.kind is FrameType.ABORT:
        _raise_refusal(me, peer, frame.payload)
    if frame.kind is not FrameType.HELLO:
        raise FrameError(f"{peer!r} sent {frame.kind.name} where HELLO was expected")
    return _parse_hello(frame.payload, repr(peer))["name"]


def _tls_failure(e: BaseException) -> str:
    return str(getattr(e, "reason", None) or getattr(e, "strerror", None) or type(e).__name__)


# -- dialling side ---------------------------------------------------------------------------------


def connect_with_backoff(
    me: str, peer: Peer, deadline: float, connect_timeout: float, stop: threading.Event
) -> socket.socket:
    """A TCP connection to ``peer``, retried with exponential backoff while it starts."""
    delay = 0.02
    while True:
        if stop.is_set():
            raise SetupStopped(f"{me!r} stopped connecting to {peer.name!r}: the set-up failed elsewhere")
        try:
            wait = max(0.05, min(deadline - time.monotonic(), 5.0))
            return socket.create_connection((peer.host, peer.port), timeout=wait)
        except OSError as e:
            if time.monotonic() + delay >= deadline:
                raise TransportError(
                    f"{me!r} cannot reach {peer.name!r} at {peer.host}:{peer.port} within {connect_timeout:g} s "
                    f"({e.strerror or type(e).__name__}); is it running and listening there?"
                ) from None
        stop.wait(delay)
        delay = min(2 * delay, 0.5)


def dial(
    me: str,
    identity: Identity,
    ctx: ssl.SSLContext,
    peer: Peer,
    session_id: bytes,
    *,
    max_frame: int,
    timeout: float,
    deadline: float,
    connect_timeout: float,
    stop: threading.Event,
    alloc: Alloc,
) -> Established:
    """Connect to ``peer`` (retrying until ``deadline``), authenticate both ways, exchange HELLO.

    A listener that closes the connection before answering the introduction (it is busy with
    other connections, or its per-connection deadline passed) is dialled again.
    """
    delay = 0.05
    failure: BaseException | None
    while True:
        raw = connect_with_backoff(me, peer, deadline, connect_timeout, stop)
        try:
            tune(raw, timeout)
            raw.settimeout(max(0.05, deadline - time.monotonic()))
            send_frame(raw, FrameType.HELLO, session_id, 0, _hello(me, identity.cert_der))
            answer = FrameReader(raw, session_id, _INTRO_MAX, source=repr(peer.name)).read()
        except (ConnectionError, FrameError) as e:
            answer, failure = None, e
        except BaseException as e:
            raw.close()
            raise _dial_failure(me, peer.name, e) from None
        else:
            failure = None
        if answer is not None:
            break
        raw.close()
        if time.monotonic() + delay >= deadline:
            why = f" ({_tls_failure(failure)})" if failure is not None else ""
            raise TransportError(
                f"{peer.name!r} at {peer.host}:{peer.port} closed every connection from {me!r} before answering "
                f"within {connect_timeout:g} s{why}"
            )
        stop.wait(delay)
        delay = min(2 * delay, 0.5)
    try:
        if answer.kind is FrameType.ABORT and _is_generic(answer.payload):
            raise PeerAuthError(
                f"{peer.name!r} at {peer.host}:{peer.port} refused {me!r} during set-up without saying why (a "
                f"listener tells an unauthenticated connection nothing): check that {peer.name!r} pins certificate "
                f"{identity.fingerprint} for {me!r} and runs the same session; its own report names the reason"
            )
        claimed = _expect_hello(me, peer.name, answer)
        if claimed != peer.name:
            raise PeerAuthError(
                f"{me!r} dialled {peer.name!r} at {peer.host}:{peer.port}, but {claimed!r} answered"
            )
        try:
            sock = ctx.wrap_socket(raw, server_side=False)
        except ssl.SSLError as e:
            raise PeerAuthError(
                f"TLS handshake of {me!r} with {peer.name!r} failed ({_tls_failure(e)}); "
                f"{me!r} presented certificate {identity.fingerprint}"
            ) from None
        raw = sock
        reason = pin_mismatch(peer.name, peer.fingerprint, presented_fingerprint(sock))
        if reason:
            _refuse(sock, me, f"peer {peer.name!r}", PeerAuthError, reason, session_id)
        send_frame(sock, FrameType.HELLO, session_id, 0, _hello(me))
        reader = FrameReader(TlsStream(sock), session_id, max_frame, source=repr(peer.name), alloc=alloc)
        claimed = _expect_hello(me, peer.name, reader.read())
        if claimed != peer.name:
            raise PeerAuthError(f"{me!r} refused peer {peer.name!r}: it calls itself {claimed!r}")
        sock.settimeout(None)
        return Established(peer.name, sock, reader)
    except BaseException as e:
        raw.close()
        raise _dial_failure(me, peer.name, e) from None


def _dial_failure(me: str, peer: str, e: BaseException) -> BaseException:
    """What a failed dial raises once its socket is closed: a socket error as a
    :class:`TransportError` naming the link, anything else as it is."""
    if isinstance(e, OSError):
        return TransportError(f"set-up of the connection from {me!r} to {peer!r} failed ({_tls_failure(e)})")
    return e


# -- listening side --------------------------------------------------------------------------------


def admit(
    me: str,
    identity: Identity,
    raw: socket.socket,
    address: str,
    dialers: Mapping[str, str],
    session_id: bytes,
    *,
    max_frame: int,
    timeout: float,
    clock: Clock,
    alloc: Alloc,
) -> Established:
    """Authenticate an incoming connection from one of ``dialers`` (name -> pinned fingerprint).

    Raises :class:`NotAPeer` for a connection refused before it authenticated (the caller
    ignores it; the connection was told nothing but :data:`REFUSED`), and an error for an
    authenticated peer that then fails the set-up. ``clock`` bounds the whole set-up.
    """
    clock.follow(raw)
    try:
        return _admit(me, identity, raw, address, dialers, session_id, max_frame, timeout, clock, alloc)
    except BaseException as e:
        raw.close()  # a no-op once TLS took the connection over (and closed it itself)
        if clock.expired and not isinstance(e, NotAPeer):
            raise NotAPeer(f"a connection from {address} did not finish its set-up in time ({e})") from None
        raise


def _is_generic(payload: bytes | bytearray | memoryview) -> bool:
    try:
        body = json.loads(bytes(payload))
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("reason") == REFUSED


def _turn_away(sock: socket.socket, sid: bytes, why: str, claimed: str | None = None,
               kind: type[TransportError] = TransportError) -> NoReturn:
    """Refuse an unauthenticated connection: a generic ABORT (best effort) and nothing else."""
    with contextlib.suppress(OSError, ValueError):
        send_frame(sock, FrameType.ABORT, sid, 0, _refusal(PeerAuthError, REFUSED))
    raise NotAPeer(why, claimed, kind)


def _admit(
    me: str,
    identity: Identity,
    raw: socket.socket,
    address: str,
    dialers: Mapping[str, str],
    session_id: bytes,
    max_frame: int,
    timeout: float,
    clock: Clock,
    alloc: Alloc,
) -> Established:
    source = f"a connection from {address}"
    try:
        tune(raw, timeout)
        raw.settimeout(clock.left())
        intro = FrameReader(raw, None, _INTRO_MAX, source=source).read()
    except (FrameError, OSError) as e:
        raise NotAPeer(f"{source} is not a Tessera endpoint ({e})") from None
    if intro is None:
        raise NotAPeer(f"{source} closed before introducing itself")
    sid = intro.session_id
    if intro.kind is not FrameType.HELLO:
        _turn_away(raw, sid, f"{source} sent {intro.kind.name} where HELLO was expected", kind=FrameError)
    try:
        body = _parse_hello(intro.payload, source)
        name, der = body["name"], bytes.fromhex(body.get("certificate", ""))
    except (FrameError, ValueError, TypeError):
        _turn_away(raw, sid, f"{source} sent a malformed introduction", kind=FrameError)
    who = f"{name[:64]!r} (connecting from {address})"
    if sid != session_id:
        _turn_away(raw, sid, f"{who} is in another session", name, FrameError)
    if name not in dialers:
        _turn_away(raw, sid, f"{who} is not one of the endpoints still expected to connect to {me!r} "
                   f"({sorted(dialers)})", name, PeerAuthError)
    reason = pin_mismatch(name, dialers[name], fingerprint_of(der) if der else "no certificate")
    if reason:
        _turn_away(raw, sid, f"{who}: {reason}", name, PeerAuthError)
    try:
        raw.settimeout(clock.left())
        send_frame(raw, FrameType.HELLO, session_id, 0, _hello(me))
        sock = server_context(identity, der).wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
    except OSError as e:
        raise NotAPeer(f"{who} went away during set-up ({_tls_failure(e)})", name) from None
    clock.follow(sock)
    try:
        try:
            sock.settimeout(clock.left())
            sock.do_handshake()
        except ssl.SSLError as e:
            raise NotAPeer(
                f"{who} did not prove in the TLS handshake that it holds the key of its pinned certificate "
                f"{dialers[name]} ({_tls_failure(e)})", name, PeerAuthError
            ) from None
        except OSError as e:
            raise NotAPeer(f"the TLS handshake of {who} with {me!r} failed ({_tls_failure(e)})", name) from None
        reason = pin_mismatch(name, dialers[name], presented_fingerprint(sock))
        if reason:
            _turn_away(sock, session_id, f"{who}: {reason}", name, PeerAuthError)
        # authenticated: from here on a failure is the peer's, and ends the set-up
        sock.settimeout(clock.left())
        send_frame(sock, FrameType.HELLO, session_id, 0, _hello(me))
        reader = FrameReader(TlsStream(sock), session_id, max_frame, source=repr(name), alloc=alloc)
        claimed = _expect_hello(me, name, reader.read())
        if claimed != name:
            raise PeerAuthError(f"{me!r} refused peer {name!r}: it calls itself {claimed!r} after authenticating")
        sock.settimeout(None)
        return Established(name, sock, reader)
    except BaseException as e:
        sock.close()
        if isinstance(e, OSError):
            raise TransportError(
                f"set-up of the connection from {name!r} to {me!r} failed ({_tls_failure(e)})"
            ) from None
        raise
