"""Strangers at an endpoint's MPC listener during set-up: connections that idle, drip bytes,
speak another session, send garbage or present a certificate that is not pinned. None of them
ends or stalls the set-up; none is told anything (not the session id, not a reason) beyond a
generic refusal; the real peers connect meanwhile and the session runs (#15.4)."""

import json
import os
import socket
import ssl
import threading
import time

from tessera.net.framing import HEADER_SIZE, FrameType, decode_header, encode_header
from tessera.net.identity import Identity
from tessera.net.pinning import client_context
from tessera.net.tls import connect_mesh
from tests.net.helpers import HOST, close_all, identities, kill_all, peer_config, report, run_all, spawn

NAMES = ["a", "b", "c"]
GENERIC = {"error": "PeerAuthError", "reason": "not admitted"}


def _connect(port: int, timeout: float = 20.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection((HOST, port), timeout=timeout)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _hello(sid: bytes, name: str, cert: bytes) -> bytes:
    body = json.dumps({"name": name, "certificate": cert.hex()}).encode()
    return encode_header(FrameType.HELLO, sid, 0, len(body)) + body


def _read_all(s: socket.socket, timeout: float = 30.0) -> bytes:
    """Everything the listener sends until it closes the connection."""
    s.settimeout(timeout)
    got = b""
    try:
        while chunk := s.recv(65536):
            got += chunk
    except OSError:
        pass
    return got


def _frames(data: bytes) -> list[tuple[FrameType, bytes, bytes]]:
    out, pos = [], 0
    while pos + HEADER_SIZE <= len(data):
        h = decode_header(data[pos:pos + HEADER_SIZE], session_id=None, expected_seq=0, max_frame=1 << 20)
        out.append((h.kind, h.session_id, data[pos + HEADER_SIZE:pos + HEADER_SIZE + h.length]))
        pos += HEADER_SIZE + h.length
    return out


class Strangers:
    """Connections to ``port`` that are not peers, each in a thread recording what it received."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.received: dict[str, bytes] = {}
        self.threads: list[threading.Thread] = []

    def run(self, name: str, fn) -> None:
        s = _connect(self.port)

        def go() -> None:
            try:
                self.received[name] = fn(s)
            finally:
                s.close()

        t = threading.Thread(target=go, daemon=True)
        t.start()
        self.threads.append(t)

    def join(self) -> dict[str, bytes]:
        for t in self.threads:
            t.join(60)
            assert not t.is_alive(), "a stranger was never dropped"
        return self.received


def idle(s: socket.socket) -> bytes:
    return _read_all(s)


def slow_drip(s: socket.socket) -> bytes:
    """A header sent one byte at a time, each well within any per-read timeout."""
    header = encode_header(FrameType.HELLO, os.urandom(16), 0, 10)
    try:
        for byte in header:
            s.sendall(bytes([byte]))
            time.sleep(0.2)
    except OSError:  # the listener dropped it: what we want
        pass
    return _read_all(s)


def reset(s: socket.socket) -> bytes:
    """Half a header, then a TCP reset."""
    import struct

    s.sendall(encode_header(FrameType.HELLO, os.urandom(16), 0, 10)[:20])
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    return b""


def garbage(s: socket.socket) -> bytes:
    s.sendall(b"\x16\x03\x01" + os.urandom(200))  # a TLS record, say; not a Tessera frame
    return _read_all(s)


def wrong_session(cert: bytes):
    def go(s: socket.socket) -> bytes:
        s.sendall(_hello(b"W" * 16, "b", cert))  # a real peer's name and (public) certificate
        return _read_all(s)
    return go


def test_a_mesh_of_processes_completes_while_strangers_idle_drip_speak_another_session_and_send_garbage(
        tmp_path):
    ids, eps = identities(tmp_path, NAMES)
    sid = os.urandom(16)
    sizes = [1, 1000, 100_000]
    kw = dict(sizes=sizes, connect_timeout=20, handshake_timeout=1.0)
    procs = [spawn(peer_config(0, eps, tmp_path, sid, "exchange", **kw))]
    try:
        strangers = Strangers(eps[0].port)
        strangers.run("idle", idle)
        strangers.run("slow drip", slow_drip)
        strangers.run("garbage", garbage)
        strangers.run("reset", reset)
        strangers.run("wrong session", wrong_session(ids["b"].cert_der))
        time.sleep(0.5)  # the refusals are in before the real peers start
        procs += [spawn(peer_config(i, eps, tmp_path, sid, "exchange", **kw)) for i in (1, 2)]
        reports = [report(p, 90) for p in procs]
        received = strangers.join()
    finally:
        kill_all(procs)
    assert all(r["ok"] for r in reports), reports
    assert [r["checked_bytes"] for r in reports] == [2 * sum(sizes)] * 3
    for name, data in received.items():  # dropped, and told nothing about the session
        assert sid not in data and sid.hex().encode() not in data, name
    assert received["idle"] == b"" and received["slow drip"] == b""
    for name in ("garbage", "wrong session"):  # at most the one generic refusal
        frames = _frames(received[name])
        assert len(frames) <= 1, (name, frames)
        for kind, frame_sid, payload in frames:
            assert kind is FrameType.ABORT and json.loads(payload) == GENERIC
            assert frame_sid != sid
    assert [(k, s_) for k, s_, _ in _frames(received["wrong session"])] == [(FrameType.ABORT, b"W" * 16)]


def test_a_stranger_with_the_session_id_but_not_the_pinned_key_is_refused_and_the_session_runs(tmp_path):
    """Even a stranger who knows the session id and presents another certificate, or the real
    peer's public certificate without its key, is dropped without ending the set-up."""
    ids, eps = identities(tmp_path / "keys", ["a", "b"])
    impostor = Identity.create("b", tmp_path / "impostor")
    sid = os.urandom(16)
    result: dict[str, object] = {}

    def listener() -> None:
        try:
            result["a"] = connect_mesh(0, eps, ids["a"], sid, connect_timeout=20, handshake_timeout=2.0)
        except BaseException as e:
            result["error"] = e

    t = threading.Thread(target=listener, daemon=True)
    t.start()
    with _connect(eps[0].port) as s:  # another certificate, announced in the clear
        s.sendall(_hello(sid, "b", impostor.cert_der))
        wrong_cert = _read_all(s)
    with _connect(eps[0].port) as s:  # the real public certificate; then TLS with another key
        s.sendall(_hello(sid, "b", ids["b"].cert_der))
        s.settimeout(10)
        answer = s.recv(HEADER_SIZE + 1000)
        ctx = client_context(impostor)
        try:
            with ctx.wrap_socket(s, server_side=False) as tls:
                tls.settimeout(10)
                after_tls = tls.recv(1000)
        except (ssl.SSLError, OSError):
            after_tls = b""
    assert "error" not in result, result  # the listener is still waiting for the real 'b'
    b = connect_mesh(1, eps, ids["b"], sid, connect_timeout=20)
    t.join(30)
    assert "error" not in result, result
    chans = {0: result["a"], 1: b}
    try:
        b.send(0, b"hello")
        assert bytes(chans[0].recv(1)) == b"hello"
    finally:
        close_all(chans)
    assert [(k, json.loads(p)) for k, _, p in _frames(wrong_cert)] == [(FrameType.ABORT, GENERIC)]
    assert impostor.fingerprint.encode() not in wrong_cert and ids["b"].fingerprint.encode() not in wrong_cert
    assert _frames(answer)[0][0] is FrameType.HELLO  # the introduction passed; the key proof did not
    assert after_tls == b""


def test_more_strangers_than_the_listener_sets_up_at_once_do_not_lock_the_real_peer_out(tmp_path):
    """Connections beyond the listener's limit are closed unanswered; the real peer dials again."""
    from tessera.net.tls import MAX_PENDING

    ids, eps = identities(tmp_path, ["a", "b"])
    sid = os.urandom(16)
    result: dict[str, object] = {}
    t = threading.Thread(target=lambda: result.update(
        a=connect_mesh(0, eps, ids["a"], sid, connect_timeout=20, handshake_timeout=2.0)), daemon=True)
    t.start()
    idlers = [_connect(eps[0].port) for _ in range(MAX_PENDING + 4)]
    try:
        time.sleep(0.3)
        chans: dict[int, object] = {}
        run_all([lambda: chans.update({1: connect_mesh(1, eps, ids["b"], sid, connect_timeout=20)})])
        t.join(30)
        chans[0] = result["a"]
        chans[1].send(0, b"through")
        assert bytes(chans[0].recv(1)) == b"through"
        close_all(chans)
    finally:
        for s in idlers:
            s.close()
