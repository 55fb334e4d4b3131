"""#15 at the node's API, job store and audit log: ids a peer may not choose, bodies that cannot be
stored or shown, bounded bodies and connections, damaged state named, private state files,
results for their recipients only.

Validation is tested in-process (FastAPI's TestClient on a real :class:`Node` of a consortium
built on disk); the bounds on bodies and connections against a real node process over TLS on
127.0.0.1, with a low file-descriptor limit so that a few hundred sockets are "too many".
"""

from __future__ import annotations

import json
import os
import resource
import socket
import sqlite3
import ssl
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from fastapi.testclient import TestClient

from tessera.governance.job import JobSpec
from tessera.net.identity import Identity
from tessera.node.api import create_app
from tessera.node.client import Client
from tessera.node.config import NodeConfig
from tessera.node.coordinator import job_id_for
from tessera.node.example import ANALYST, Consortium, build_consortium
from tessera.node.peers import seal
from tessera.node.service import Node
from tessera.node.setup import init_node, read_profile
from tessera.node.states import JobState
from tessera.node.store import JobIdError, check_job_id
from tests.node.conftest import free_block, start_node

TX = ["tx_alpha", "tx_beta", "tx_gamma"]
DESCRIBE = {"analysis": "describe", "version": "1.0", "datasets": TX, "columns": ["amount"],
            "params": {"columns": ["amount"]}, "protocol": "rep3", "recipients": [ANALYST]}


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return build_consortium(tmp_path_factory.mktemp("hardening"), rows=300, base_port=free_block())


@pytest.fixture
def node(cons: Consortium, tmp_path: Path) -> Iterator[Node]:
    """alpha's node, in this process, on a fresh store of its own."""
    cfg = NodeConfig.load(cons.nodes["alpha"] / "node.toml")
    cfg.store = str(tmp_path / "store")
    n = Node(cfg)
    try:
        yield n
    finally:
        n.stop()


def tokens(cons: Consortium) -> tuple[dict[str, str], dict[str, str]]:
    admin = read_profile(cons.nodes["alpha"] / "admin.toml")["token"]
    analyst = read_profile(cons.analyst_profile)["token"]
    return {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {analyst}"}


def from_beta(cons: Consortium, node: Node, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """A peer message signed by beta, as its node would send it."""
    return seal(Identity.load(cons.nodes["beta"] / "keys", "beta"), kind, body, node.contract.hash, to=node.cfg.name)


# -- #15.2: ids chosen by a peer ---------------------------------------------------------------

def test_job_ids_are_the_nodes_own_format_only(node: Node) -> None:
    for analyst, key in (("analyst-1", None), ("analyst-1", "q3"), ("x", "/etc/passwd")):
        made = job_id_for(analyst, key)  # what this node makes is what it accepts
        assert check_job_id(made) == made
    for bad in ("/tmp/x", "../../x", "abc", "0123456789ABCDEF", "0123456789abcdef/..", "", None, 7):
        with pytest.raises(JobIdError, match="is not a job id"):
            check_job_id(bad)
        with pytest.raises(JobIdError):
            node.store.job_dir(bad)  # type: ignore[arg-type]
        with pytest.raises(JobIdError):
            node.ctx.job_dir(bad)  # type: ignore[arg-type]
    assert node.store.job_dir("0123456789abcdef") == node.ctx.dir / "jobs" / "0123456789abcdef"


def test_a_peer_cannot_name_a_path_as_job_id(cons: Consortium, node: Node, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    api = TestClient(create_app(node))
    spec = JobSpec.model_validate({**DESCRIBE, "analyst": ANALYST}).model_dump(mode="json")
    audited = len(node.audit.entries())
    for job_id in (str(outside), "../../outside", "../outside/0123456789abcdef"):
        env = from_beta(cons, node, "propose", {"job_id": job_id, "spec": spec, "coordinator": "beta"})
        r = api.post("/v1/peer/propose", json=env)
        assert r.status_code == 422, r.text
        assert "is not a job id (16 lowercase hex digits)" in r.json()["detail"]
    for kind, body in (("decision", {"state": "accepted"}), ("prepare", {}),
                       ("start", {"nonce": "00" * 16, "ports": {"alpha": 1, "beta": 2}}),
                       ("outcome", {"state": "aborted"})):
        r = api.post(f"/v1/peer/{kind}", json=from_beta(cons, node, kind, {"job_id": str(outside), **body}))
        assert r.status_code == 422 and "is not a job id" in r.json()["detail"], (kind, r.text)
    # nothing was stored, audited or written anywhere
    assert node.store.jobs() == [] and len(node.audit.entries()) == audited
    assert not outside.exists() and list((node.ctx.dir / "jobs").iterdir()) == []
    admin, _ = tokens(cons)
    r = api.get("/v1/jobs/..%2F..%2Fetc", headers=admin)
    assert r.status_code in (404, 422)
    r = api.get("/v1/jobs/NOT-AN-ID/result", headers=admin)
    assert r.status_code == 422 and "'NOT-AN-ID' is not a job id" in r.json()["detail"]
    assert api.get("/v1/jobs/NOT-AN-ID").status_code == 401  # the token first


# -- #15.5: what cannot be stored and shown again ---------------------------------------------

def test_a_lone_surrogate_or_deep_nesting_is_refused_before_anything_is_stored(cons: Consortium,
                                                                                node: Node) -> None:
    api = TestClient(create_app(node))
    admin, analyst = tokens(cons)
    audited = len(node.audit.entries())
    job = json.dumps(DESCRIBE)
    for field, raw in (("analysis", job.replace('"describe"', '"\\ud800"')),
                       ("idempotency_key", job[:-1] + ', "idempotency_key": "k\\ud800"}'),
                       ("params.columns[0]", job.replace('["amount"]}', '["\\udfff"]}'))):
        r = api.post("/v1/jobs", content=raw, headers={**analyst, "Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"] == (f"the job has a string that is not valid Unicode text at {field} "
                                      f"(a lone surrogate U+{'DFFF' if 'params' in field else 'D800'})")
    deep = {**DESCRIBE, "params": {"columns": ["amount"], "x": json.loads("[" * 400 + "]" * 400)}}
    r = api.post("/v1/jobs", json=deep, headers=analyst)
    assert r.status_code == 422 and "the job is nested more than 32 levels deep" in r.json()["detail"]
    r = api.post("/v1/jobs", content="[" * 100_000 + "]" * 100_000, headers=analyst)
    assert r.status_code == 422 and "nested" in r.json()["detail"]
    assert node.store.jobs() == [] and len(node.audit.entries()) == audited
    for who in (admin, analyst):  # the list still answers, for everybody
        assert api.get("/v1/jobs", headers=who).json() == {"jobs": []}
    restarted = Node(node.cfg)  # and after a restart
    try:
        assert TestClient(create_app(restarted)).get("/v1/jobs", headers=admin).status_code == 200
    finally:
        restarted.stop()
    ok = api.post("/v1/jobs", json={**DESCRIBE, "idempotency_key": "ümlaut ✓"}, headers=analyst)
    assert ok.status_code == 201, ok.text  # real Unicode is fine
    assert api.get(f"/v1/jobs/{ok.json()['id']}", headers=analyst).json()["idempotency_key"] == "ümlaut ✓"
    # a store written before the check (the surrogate stored, as it was) is still shown to everybody
    spec = JobSpec.model_validate({**DESCRIBE, "analyst": ANALYST}).model_dump(mode="json")
    node.store.create("00000000000000d8", {**spec, "analysis": "\ud800"}, "h", "alpha", ["alpha"])
    for who in (admin, analyst):
        r = api.get("/v1/jobs", headers=who)
        assert r.status_code == 200 and "\ud800" in [j["analysis"] for j in r.json()["jobs"]]


# -- #15.6: bodies are read after the token, and bounded ---------------------------------------

def test_bodies_are_read_after_the_token_and_bounded(cons: Consortium, node: Node) -> None:
    api = TestClient(create_app(node))
    _, analyst = tokens(cons)
    # not parsed before the token is checked: a broken body from nobody is 401, not 422
    r = api.post("/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and "API token is required" in r.json()["detail"]
    r = api.post("/v1/jobs", content=b"{not json", headers=analyst)
    assert r.status_code == 400 and r.json()["detail"].startswith("the job is not JSON: Expecting property name")
    limit = node.cfg.max_body_bytes
    assert limit == 1 << 20
    big = json.dumps({**DESCRIBE, "pad": "x" * limit}).encode()
    r = api.post("/v1/jobs", content=big, headers=analyst)  # declared length
    assert r.status_code == 413
    assert r.json()["detail"] == f"the request body exceeds this node's limit of {limit} bytes (max_body_bytes)"

    def chunks() -> Iterator[bytes]:  # no declared length: bounded while it is read
        yield b'{"pad": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}'
    for path, headers in (("/v1/jobs", analyst), ("/v1/peer/start", {})):
        r = api.post(path, content=chunks(), headers=headers)
        assert r.status_code == 413 and "exceeds this node's limit" in r.json()["detail"], path
    assert api.post("/v1/peer/nonsense", content=chunks()).status_code == 404
    paths = api.get("/openapi.json").json()["paths"]  # the bodies read by hand are still described
    assert paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/JobSpec"}  # typed (#16.7), still read by the node itself
    assert paths["/v1/peer/{kind}"]["post"]["requestBody"]["required"] is True

    assert node.store.jobs() == []


# -- #15.11: damaged audit log and store -------------------------------------------------------

def test_a_damaged_audit_entry_is_named(cons: Consortium, node: Node) -> None:
    api = TestClient(create_app(node))
    admin, _ = tokens(cons)
    for i in range(3):
        node.audit.append("job_received", {"job_id": f"{i:016x}", "analysis": "describe"})
    assert api.get("/v1/audit", headers=admin).json()["verified"] is True
    db = sqlite3.connect(node.audit.path)
    with db:
        db.execute("UPDATE audit SET body = '{\"job_id\": \"0000000000000001\", \"analysis\": \"dp\"}' WHERE idx = 2")
    db.close()
    r = api.get("/v1/audit", headers=admin)
    assert r.status_code == 200
    assert r.json()["verified"] is False and r.json()["first_bad"] == 2
    assert r.json()["problems"] == ["entry 2 was altered (its hash does not match its content)"]
    db = sqlite3.connect(node.audit.path)
    with db:
        db.execute("UPDATE audit SET body = '{not json' WHERE idx = 1")
    db.close()
    r = api.get("/v1/audit", headers=admin)
    assert r.status_code == 200 and r.json()["first_bad"] == 1
    assert r.json()["problems"] == ["entry 1 is malformed (unreadable body or fields)"]
    h = api.get("/health")
    assert h.status_code == 503 and h.json()["status"] == "degraded"
    assert h.json()["problems"] == ["the audit log: entry 1 is malformed (unreadable body or fields)"]


def test_a_damaged_store_page_is_reported_not_a_500(cons: Consortium, node: Node) -> None:
    api = TestClient(create_app(node), raise_server_exceptions=False)
    assert api.get("/health").json()["status"] == "ok"
    spec = JobSpec.model_validate({**DESCRIBE, "analyst": ANALYST})
    for i in range(60):  # a few pages of rows
        node.store.create(f"{i:016x}", {**spec.model_dump(mode="json"), "pad": "p" * 500}, spec.hash, "alpha",
                          ["alpha"])
    db = sqlite3.connect(node.store.path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with open(node.store.path, "r+b") as f:  # garbage over the pages after the schema
        f.seek(page)
        f.write(b"\xa5" * page * 3)
    env = from_beta(cons, node, "propose", {"job_id": "00000000000000ff", "coordinator": "beta",
                                            "spec": spec.model_dump(mode="json")})
    r = api.post("/v1/peer/propose", json=env)
    assert r.status_code == 503, r.text
    assert r.json()["detail"].startswith("the node's state cannot be read or written (")
    assert "its owner must repair it (see /health)" in r.json()["detail"]
    h = api.get("/health")
    assert h.status_code == 503 and h.json()["status"] == "degraded"
    assert len(h.json()["problems"]) == 1 and h.json()["problems"][0].startswith("the job store jobs.db is damaged: ")


# -- #15.15: private state, results for recipients only ----------------------------------------

def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_state_files_are_the_owners_only(cons: Consortium, tmp_path: Path) -> None:
    old = os.umask(0o022)  # what a node would otherwise get
    try:
        cfg = NodeConfig.load(cons.nodes["alpha"] / "node.toml")
        cfg.store = str(tmp_path / "store")
        tmp_path.joinpath("store").mkdir(mode=0o755)
        Node(cfg).stop()
        store = tmp_path / "store"
        (store / "jobs.db").chmod(0o644)  # a store from before: tightened at the next start
        Node(cfg).stop()
        assert mode(store) == 0o700 and mode(store / "jobs") == 0o700
        files = [p for p in store.iterdir() if p.is_file()]
        assert {p.name for p in files} >= {"jobs.db", "ledger.db", "audit.db"}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        d = tmp_path / "fresh"
        init_node(d, "zeta", api_port=1234, mpc_ports=(2000, 2010))
        assert mode(d) == 0o700 and mode(d / "keys") == 0o700 and mode(d / "keys" / "zeta.key") == 0o600
    finally:
        os.umask(old)


def test_results_are_for_their_recipients_only(cons: Consortium, node: Node) -> None:
    api = TestClient(create_app(node))
    admin, analyst = tokens(cons)

    def released(job_id: str, recipients: list[str]) -> None:
        spec = JobSpec.model_validate({**DESCRIBE, "analyst": ANALYST, "recipients": recipients})
        node.store.create(job_id, spec.model_dump(mode="json"), spec.hash, "alpha", ["alpha", "beta", "gamma"])
        for s in (JobState.ACCEPTED, JobState.RUNNING):
            node.store.transition(job_id, s)
        node.store.transition(job_id, JobState.RELEASED, result={"mean": 41.5}, revealed=["mean -> analyst-1"])

    released("00000000000000a1", [ANALYST])
    r = api.get("/v1/jobs/00000000000000a1/result", headers=admin)
    assert r.status_code == 403
    assert r.json()["detail"] == "node alpha (its owner) is not a recipient of job 00000000000000a1"
    view = api.get("/v1/jobs/00000000000000a1", headers=admin).json()  # status and metadata: yes
    assert view["state"] == "released" and view["has_result"] is True and "41.5" not in json.dumps(view)
    assert api.get("/v1/jobs/00000000000000a1/result", headers=analyst).json()["outputs"] == {"mean": 41.5}
    released("00000000000000a2", ["alpha"])
    assert api.get("/v1/jobs/00000000000000a2/result", headers=admin).json()["outputs"] == {"mean": 41.5}
    r = api.get("/v1/jobs/00000000000000a2/result", headers=analyst)
    assert r.status_code == 403 and r.json()["detail"] == "'analyst-1' is not a recipient of job 00000000000000a2"


# -- a real node process: bounded bodies and connections (#15.6, #15.7), private files (#15.15) --

FDS = 256  # the node's file-descriptor limit here: a few hundred sockets are too many


@pytest.fixture(scope="module")
def served(cons: Consortium) -> Iterator[tuple[psutil.Process, Client, Path]]:
    d = cons.nodes["alpha"]
    cfg = NodeConfig.load(d / "node.toml")
    cfg.keep_alive, cfg.body_timeout = 2.0, 1.0
    cfg.save(d / "node.toml")

    def low_fd_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (FDS, FDS))

    proc = start_node(d, preexec_fn=low_fd_limit, log_mode="wb")
    admin = Client.from_profile(d / "admin.toml")
    try:
        yield psutil.Process(proc.pid), admin, d
    finally:
        proc.terminate()
        proc.wait(30)


def tls(port: int) -> ssl.SSLSocket:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    return ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))


def read_reply(s: ssl.SSLSocket) -> bytes:
    """One HTTP reply (head and a body of its Content-Length), or what came before the node closed."""
    got = b""
    while b"\r\n\r\n" not in got or len(got.split(b"\r\n\r\n", 1)[1]) < int(
            next((h.split(b":")[1] for h in got.split(b"\r\n") if h.lower().startswith(b"content-length:")), b"0")):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def test_a_served_nodes_files_are_private(served: tuple[psutil.Process, Client, Path]) -> None:
    proc, _, d = served
    umask = next(line for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if line.startswith("Umask"))
    assert umask.split()[1] == "0077"  # so are its party processes' files (result.json, logs)
    store = d / "store"
    assert mode(store) == 0o700
    assert all(mode(p) == 0o600 for p in store.iterdir() if p.is_file()), {p.name: oct(mode(p)) for p in store.iterdir()}


def test_a_declared_huge_body_is_refused_unread(served: tuple[psutil.Process, Client, Path]) -> None:
    """8 clients each declaring 100 MB to /v1/peer/start: each is answered 413 once the head and
    the start of the body are in (the node does not wait for the rest), and the node's memory
    does not grow with them. (Little is sent after the head: data the node never reads would
    make its close a reset, which can overtake the answer.)"""
    proc, admin, _ = served
    port = int(admin.http.port)
    before = proc.memory_info().rss
    answers: list[bytes] = []

    def one() -> None:
        s = tls(port)
        try:
            s.sendall(b"POST /v1/peer/start HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000000\r\n\r\n")
            s.sendall(b"{" + b" " * 32768)
            answers.append(read_reply(s))
        finally:
            s.close()
    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(answers) == 8
    for a in answers:
        assert a.startswith(b"HTTP/1.1 413 ")
        assert b"the request body exceeds this node's limit of 1048576 bytes (max_body_bytes)" in a
    assert proc.memory_info().rss - before < 50 * 2**20
    assert admin.health()["status"] == "ok"


def test_a_body_that_drips_is_cut_off(served: tuple[psutil.Process, Client, Path]) -> None:
    _, admin, _ = served
    s = tls(int(admin.http.port))
    try:
        s.sendall(b"POST /v1/peer/propose HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 100\r\n\r\n{\"from\": ")
        reply = read_reply(s)  # nothing more is sent: the node answers when body_timeout passes
    finally:
        s.close()
    assert reply.startswith(b"HTTP/1.1 408 ")
    assert b"the propose message did not arrive within 1 s (body_timeout)" in reply


def api_connections(proc: psutil.Process, port: int) -> list[Any]:
    """The node's accepted connections on its API port (not the listener)."""
    return [c for c in proc.net_connections("tcp") if c.laddr.port == port and c.raddr]


def test_idle_connections_do_not_take_the_node_down(served: tuple[psutil.Process, Client, Path]) -> None:
    proc, admin, d = served
    port = int(admin.http.port)
    log_before = (d / "stdout.log").stat().st_size  # the node's stderr
    # connections that finished TLS and then say nothing: the oldest idle ones make way
    held = [tls(port) for _ in range(300)]
    assert Client.from_profile(d / "admin.toml").health()["status"] == "ok"
    limit = FDS - 64  # the node's file descriptors less those it keeps for its other work
    assert len(api_connections(proc, port)) <= limit
    # connections that never even start TLS: closed after the handshake deadline
    raw = []
    for _ in range(400):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        raw.append(s)
    time.sleep(1.0)
    assert admin.health()["status"] == "ok"
    assert len(api_connections(proc, port)) <= limit
    for s in [*held, *raw]:
        s.close()
    assert admin.health()["status"] == "ok"
    grown = (d / "stdout.log").read_bytes()[log_before:].decode()
    assert len(grown.splitlines()) <= 10, grown[-2000:]
    assert "Traceback" not in grown
