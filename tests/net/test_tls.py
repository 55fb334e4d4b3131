"""The TLS mesh: data both ways at once, pinning, aborts, timeouts and set-up errors."""

import os
import socket
import threading

import numpy as np
import pytest

from tessera.errors import PeerAuthError, ProtocolAbort, TransportError
from tessera.net.identity import Identity
from tessera.net.tls import Endpoint, connect_mesh
from tessera.runtime.cluster import free_ports


def make(tmp_path, names, evil=None):
    ids = {n: Identity.create(n, tmp_path / "keys") for n in names}
    ports = free_ports(len(names))
    eps = [Endpoint(n, "127.0.0.1", p, ids[n].fingerprint, ids[n].cert_path.read_text()) for n, p in zip(names, ports)]
    if evil:
        ids[evil] = Identity.create(evil, tmp_path / "evil")  # same name, a different key
    return ids, eps


def mesh(ids, eps, sid=None, **kw):
    sid = sid or os.urandom(16)
    out, errs = {}, {}

    def go(i):
        try:
            out[i] = connect_mesh(i, eps, ids[eps[i].name], sid, **kw)
        except Exception as e:  # noqa: BLE001
            errs[eps[i].name] = e

    ts = [threading.Thread(target=go, args=(i,)) for i in range(len(eps))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out, errs


def test_three_parties_exchange_large_payloads_both_ways_at_once(tmp_path):
    ids, eps = make(tmp_path, ["a", "b", "c"])
    chans, errs = mesh(ids, eps, timeout=20, connect_timeout=10)
    assert not errs
    payloads = {i: np.random.default_rng(i).integers(0, 2**63, 10**7 // 8, dtype=np.uint64) for i in range(3)}
    got = {}

    def run(i):
        ch = chans[i]
        for j in range(3):
            if j != i:
                ch.send(j, payloads[i].data)
                ch.send(j, b"small")
        got[i] = {j: (ch.recv(j), ch.recv(j)) for j in range(3) if j != i}

    ts = [threading.Thread(target=run, args=(i,)) for i in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for i in range(3):
        for j, (big, small) in got[i].items():
            assert np.array_equal(np.frombuffer(big, np.uint64), payloads[j]) and bytes(small) == b"small"
        assert chans[i].stats.bytes_sent[(i + 1) % 3] == payloads[i].nbytes + 5
    for c in chans.values():
        c.close()


def test_a_certificate_that_is_not_pinned_is_refused_on_both_sides(tmp_path):
    ids, eps = make(tmp_path, ["a", "b"], evil="b")
    _, errs = mesh(ids, eps, connect_timeout=5)
    assert set(errs) == {"a", "b"}
    assert all(isinstance(e, PeerAuthError) for e in errs.values())
    assert "'b'" in str(errs["b"]) and ids["b"].fingerprint in str(errs["b"])  # b: a refused my certificate
    assert "'a'" in str(errs["a"]) and "not among the pinned" in str(errs["a"]) and "['b']" in str(errs["a"])


def test_server_presenting_a_wrong_certificate_is_named_with_both_fingerprints(tmp_path):
    ids, eps = make(tmp_path, ["a", "b"], evil="a")
    _, errs = mesh(ids, eps, connect_timeout=5)
    msg = str(errs["b"])
    assert isinstance(errs["b"], PeerAuthError)
    assert "refused peer 'a'" in msg and ids["a"].fingerprint in msg and eps[0].fingerprint in msg


def test_abort_reaches_every_peer_with_who_and_why(tmp_path):
    ids, eps = make(tmp_path, ["a", "b", "c"])
    chans, _ = mesh(ids, eps, timeout=20)
    seen = {}

    def wait(i):
        try:
            chans[i].recv(0)
        except ProtocolAbort as e:
            seen[i] = e

    ts = [threading.Thread(target=wait, args=(i,)) for i in (1, 2)]
    for t in ts:
        t.start()
    chans[0].abort("input outside bounds")
    for t in ts:
        t.join(10)
    assert set(seen) == {1, 2}
    assert all(e.party == "a" and e.reason == "input outside bounds" for e in seen.values())
    for c in chans.values():
        c.close()


def test_receive_timeout_and_closed_peer(tmp_path):
    ids, eps = make(tmp_path, ["a", "b"])
    chans, _ = mesh(ids, eps, timeout=0.5)
    with pytest.raises(TransportError, match="timed out after 0.5 s waiting for 'b'"):
        chans[0].recv(1)
    chans[1].close()
    with pytest.raises(TransportError, match="'b' closed"):
        chans[0].recv(1)
    chans[0].close()


def test_port_in_use_and_unreachable_peer(tmp_path):
    ids, eps = make(tmp_path, ["a", "b"])
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", eps[1].port))
    blocker.listen()
    try:
        with pytest.raises(TransportError, match="cannot listen"):
            connect_mesh(1, eps, ids["b"], os.urandom(16), connect_timeout=1)
    finally:
        blocker.close()
    with pytest.raises(TransportError, match="cannot reach 'a'"):
        connect_mesh(1, eps, ids["b"], os.urandom(16), connect_timeout=1)


def test_wrong_session_is_refused(tmp_path):
    ids, eps = make(tmp_path, ["a", "b"])
    errs = {}

    def go(i, sid):
        try:
            connect_mesh(i, eps, ids[eps[i].name], sid, connect_timeout=3).close()
        except Exception as e:  # noqa: BLE001
            errs[i] = e

    ts = [threading.Thread(target=go, args=(0, b"A" * 16)), threading.Thread(target=go, args=(1, b"B" * 16))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert any("another session" in str(e) for e in errs.values())
