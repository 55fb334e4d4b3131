"""The TLS mesh between separate OS processes (``_peer.py``, configured by JSON on argv)."""

import os
import select
import signal
import time

import pytest

from tessera.net.identity import Identity
from tessera.net.tls import Endpoint
from tests.net.helpers import HOST, identities, kill_all, peer_config, report, spawn

NAMES = ["a", "b", "c"]


def wait_ready(proc, timeout):
    """Block until the process printed ``ready`` (it joined the mesh and exchanged once)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.1)[0]:
            line = proc.stdout.readline()
            if line.strip() == "ready":
                return
            assert line, f"endpoint process exited before it was ready: {proc.stderr.read()[-2000:]}"
    raise AssertionError("endpoint process not ready in time")


@pytest.fixture
def procs():
    started = []
    yield started
    kill_all(started)  # whatever happens, no endpoint process outlives its test


def test_three_processes_exchange_payloads_of_several_sizes_both_ways_at_once(tmp_path, procs):
    ids, eps = identities(tmp_path, NAMES)
    sid = os.urandom(16)
    sizes = [0, 1, 1000, 100_000, 10**7]  # the last: 10^7 bytes to and from every peer at once
    procs += [spawn(peer_config(i, eps, tmp_path, sid, "exchange", sizes=sizes)) for i in range(3)]
    reports = [report(p, 60) for p in procs]
    assert all(r["ok"] for r in reports), reports
    assert [r["checked_bytes"] for r in reports] == [2 * sum(sizes)] * 3
    assert [p.returncode for p in procs] == [0, 0, 0]


def test_a_process_with_a_certificate_that_is_not_pinned_is_refused_and_both_sides_say_so(tmp_path, procs):
    ids, eps = identities(tmp_path / "keys", ["a", "b"])
    impostor = Identity.create("b", tmp_path / "impostor")
    own_view = [eps[0], Endpoint("b", HOST, eps[1].port, impostor.fingerprint)]
    sid = os.urandom(16)
    procs.append(spawn(peer_config(0, eps, tmp_path / "keys", sid, "exchange", sizes=[10], connect_timeout=3)))
    procs.append(spawn(peer_config(1, own_view, tmp_path / "impostor", sid, "exchange", sizes=[10],
                                   connect_timeout=3)))
    a, b = (report(p, 60) for p in procs)
    assert a["error"] == b["error"] == "PeerAuthError", (a, b)
    # the listener waited for the real 'b' and names the refused connection with both fingerprints
    assert a["message"].startswith("'a': no connection from ['b'] within 3 s")
    assert "'b' presented certificate" in a["message"]
    assert impostor.fingerprint in a["message"] and ids["b"].fingerprint in a["message"]
    # the impostor was told nothing but that it was refused
    assert "refused 'b' during set-up without saying why" in b["message"] and impostor.fingerprint in b["message"]
    assert ids["b"].fingerprint not in b["message"]


def test_a_process_killed_mid_protocol_stops_the_others_within_the_timeout(tmp_path, procs):
    ids, eps = identities(tmp_path, NAMES)
    sid = os.urandom(16)
    wait_for = {0: 1, 1: 0, 2: 1}  # 'a' and 'c' wait for 'b', which gets killed
    procs += [spawn(peer_config(i, eps, tmp_path, sid, "wait", wait_for=wait_for[i], timeout=30)) for i in range(3)]
    for p in procs:
        wait_ready(p, 60)
    time.sleep(0.2)
    start = time.monotonic()
    os.kill(procs[1].pid, signal.SIGKILL)
    survivors = [report(procs[i], 30) for i in (0, 2)]
    assert time.monotonic() - start < 10  # well within the 30 s receive timeout
    for name, r in zip("ac", survivors):
        assert r["error"] == "TransportError", r
        assert f"'b' closed the connection while '{name}' waited for a message from it" in r["message"]
    assert procs[1].wait(10) == -signal.SIGKILL
    assert [p.poll() is not None for p in procs] == [True] * 3  # nobody is left running


def test_an_abort_reaches_every_process_with_who_and_why(tmp_path, procs):
    ids, eps = identities(tmp_path, NAMES)
    sid = os.urandom(16)
    procs.append(spawn(peer_config(0, eps, tmp_path, sid, "abort", reason="bank-a: input outside bounds")))
    procs += [spawn(peer_config(i, eps, tmp_path, sid, "wait", wait_for=3 - i, timeout=30)) for i in (1, 2)]
    reports = [report(p, 60) for p in procs]
    assert reports[0] == {"ok": True, "aborted": True}
    for r in reports[1:]:
        assert (r["error"], r["party"], r["reason"]) == ("ProtocolAbort", "a", "bank-a: input outside bounds"), r


def test_a_process_whose_key_file_is_missing_names_it(tmp_path, procs):
    ids, eps = identities(tmp_path, ["a", "b"])
    (tmp_path / "b.key").unlink()
    procs.append(spawn(peer_config(1, eps, tmp_path, os.urandom(16), "exchange", sizes=[1], connect_timeout=1)))
    r = report(procs[0], 60)
    assert r["error"] == "IdentityError" and str(tmp_path / "b.key") in r["message"]
