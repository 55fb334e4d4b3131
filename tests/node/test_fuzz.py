"""A bounded fuzz run of a node's API from its own OpenAPI schema (#15, "tests that must exist").

Every operation the node's ``/openapi.json`` lists is called with generated requests, with each
kind of credential (the owner's admin token, the analyst's token, none, a wrong one): path
parameters (the ids of jobs the node holds, well-formed ids it does not, arbitrary text), query
parameters (numbers huge, negative, NaN and infinite, text), and bodies of any shape (arbitrary
JSON, strings with odd Unicode — lone surrogates, NUL, bidi controls —, huge integers, deep
nesting, a valid job with one field replaced, bytes that are not UTF-8 or not JSON). Peer routes
also get envelopes signed by a real party of the contract (beta) with generated bodies, so the
handlers behind the signature check are reached too. The node is alpha of a consortium built on
disk whose store holds jobs in several states (its peers are not running).

The rule checked: no answer is a server error (5xx; the node's 503 for a damaged or unwritable
state must not happen in a healthy node), every error answer names the problem (a non-empty
``detail``), no traceback leaks, and afterwards the node is healthy and its audit log verifies.
The bulk runs in-process (FastAPI's TestClient on the real app and a real :class:`Node`); a
smaller run goes to the same node served as its own process over TLS on 127.0.0.1. Case counts
are printed.
"""

from __future__ import annotations

import http.client
import json
import math
import ssl
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.governance.audit import verify_entries
from tessera.governance.job import JobSpec
from tessera.net.identity import Identity
from tessera.node.api import create_app
from tessera.node.client import Client
from tessera.node.config import NodeConfig
from tessera.node.example import ANALYST, ORGS, Consortium, build_consortium
from tessera.node.peers import PEER_KINDS, seal
from tessera.node.service import Node
from tessera.node.setup import read_profile
from tessera.node.states import JobState, Vote
from tessera.node.store import Verdict
from tests.node.conftest import free_block, start_node

TX = [f"tx_{o}" for o in ORGS]
DESCRIBE = {"analysis": "describe", "version": "1.0", "datasets": TX, "columns": ["amount"],
            "params": {"columns": ["amount"]}, "protocol": "rep3", "recipients": [ANALYST]}
DP_DESCRIBE = {"analysis": "dp_describe", "version": "1.0", "datasets": TX, "columns": ["amount"],
               "params": {"columns": ["amount"]}, "dp": {"epsilon": 0.5}, "protocol": "rep3",
               "recipients": [ANALYST]}

#: the fixed job ids of the seeded store (16 hex digits, the node's own form)
SEEDED = {"released": "00000000000000a1", "failed": "00000000000000a2", "awaiting": "00000000000000a3",
          "beta_accepted": "00000000000000b1", "beta_running": "00000000000000b2", "beta_released": "00000000000000b3",
          "beta_pending": "00000000000000b4"}

TESTCLIENT_CASES = 300
TLS_CASES = 50
PEER_CASES = 200


# -- the node and its seeded store -----------------------------------------------------------

def seed_store(node: Node) -> None:
    """Jobs in the states a fuzzer should meet: coordinated by alpha (released with a result,
    failed, awaiting its owner's approval) and by beta (accepted, running, released)."""
    spec = JobSpec.model_validate({**DESCRIBE, "analyst": ANALYST})
    dp = JobSpec.model_validate({**DP_DESCRIBE, "analyst": ANALYST})
    store = node.store
    S = JobState

    def make(job_id: str, s: JobSpec, coordinator: str, path: list[JobState], **fields: Any) -> None:
        store.create(job_id, s.model_dump(mode="json"), s.hash, coordinator, list(ORGS))
        for i, state in enumerate(path):
            store.transition(job_id, state, f"seeded {state}", **(fields if i == len(path) - 1 else {}))

    make(SEEDED["released"], spec, "alpha", [S.ACCEPTED, S.RUNNING, S.RELEASED],
         result={"mean": [1.5], "count": 300}, revealed=["mean", "count"])
    make(SEEDED["failed"], dp, "alpha", [S.ACCEPTED, S.RUNNING, S.FAILED], reasons=["gamma: DataError: seeded"])
    make(SEEDED["awaiting"], spec, "alpha", [S.AWAITING_APPROVAL])
    store.set_decision(SEEDED["awaiting"], "alpha", Verdict(Vote.AWAITING_APPROVAL, []))
    make(SEEDED["beta_accepted"], spec, "beta", [S.ACCEPTED])
    make(SEEDED["beta_running"], dp, "beta", [S.ACCEPTED, S.RUNNING])
    make(SEEDED["beta_released"], spec, "beta", [S.ACCEPTED, S.RUNNING, S.RELEASED])
    make(SEEDED["beta_pending"], spec, "beta", [S.PENDING])  # for *cancel* (it ends cancelled)


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return build_consortium(tmp_path_factory.mktemp("fuzz"), rows=300, base_port=free_block())


@dataclass
class Creds:
    headers: dict[str, dict[str, str]]  # credential kind -> Authorization header
    beta: Identity
    contract_hash: str


def credentials(cons: Consortium, contract_hash: str) -> Creds:
    admin = read_profile(cons.nodes["alpha"] / "admin.toml")["token"]
    analyst = read_profile(cons.analyst_profile)["token"]
    return Creds({"admin": {"Authorization": f"Bearer {admin}"}, "analyst": {"Authorization": f"Bearer {analyst}"},
                  "none": {}, "wrong": {"Authorization": f"Bearer {analyst[:-4]}abcd"}},
                 Identity.load(cons.nodes["beta"] / "keys", "beta"), contract_hash)


@pytest.fixture(scope="module")
def node(cons: Consortium, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Node]:
    cfg = NodeConfig.load(cons.nodes["alpha"] / "node.toml")
    cfg.store = str(tmp_path_factory.mktemp("fuzz-store") / "store")
    n = Node(cfg)
    seed_store(n)
    try:
        yield n
    finally:
        n.stop()


# -- the generator ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # with {name} placeholders
    path_params: tuple[str, ...]
    query: tuple[tuple[str, dict[str, Any]], ...]  # name, schema
    body: bool


def operations(schema: dict[str, Any]) -> list[Operation]:
    """Every (method, path) of the schema with its path and query parameters and whether it takes a body."""
    out = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            params = op.get("parameters", [])
            out.append(Operation(method.upper(), path, tuple(p["name"] for p in params if p["in"] == "path"),
                                 tuple((p["name"], p.get("schema", {})) for p in params if p["in"] == "query"),
                                 "requestBody" in op))
    return out


@dataclass(frozen=True)
class Case:
    method: str
    url: str  # path and query string
    cred: str
    body: bytes | None
    label: str


ODD = ["\ud800", "\udfff", "a\udc80b", "\x00", "\u202e\u2066evil", "\ufeff", "\uffff", "\U0010ffff", "𝔘𝔫𝔦",
       "e\u0301\u0301\u0301", "🏳️‍🌈", "\r\n", "' OR 1=1 --", "../../etc/passwd", "%00", "${jndi:x}", "\\u0000",
       "x" * 5000, ""]
text = st.one_of(st.text(max_size=40), st.sampled_from(ODD), st.text(max_size=8).map(lambda s: s + "\ud800"))
numbers = st.one_of(st.integers(), st.sampled_from([2**63, -(2**63) - 1, 10**40, -(10**400), 2**64 + 1]),
                    st.floats(allow_nan=False, allow_infinity=False), st.sampled_from([1e308, -1e308, 5e-324, -0.0]))
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                           st.dictionaries(text, inner, max_size=4)), max_leaves=12)


def nested(depth: int) -> bytes:
    """JSON nested ``depth`` levels deep (objects and lists in turn), written out directly."""
    opens = "".join('{"a":' if i % 2 == 0 else "[" for i in range(depth))
    closes = "".join("}" if i % 2 == 0 else "]" for i in reversed(range(depth)))
    return (opens + "1" + closes).encode()


deep = st.integers(1, 2000).map(nested)


@st.composite
def mutated_job(draw: st.DrawFn) -> dict[str, Any]:
    """A valid job with fields replaced by arbitrary values, removed or added."""
    job: dict[str, Any] = dict(draw(st.sampled_from([DESCRIBE, DP_DESCRIBE])))
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["replace", "drop", "add", "param"]))
        if action == "replace":
            job[draw(st.sampled_from(sorted(job)))] = draw(json_values)
        elif action == "drop" and job:
            job.pop(draw(st.sampled_from(sorted(job))))
        elif action == "add":
            job[draw(st.sampled_from(["analyst", "idempotency_key", "title", "dp", "partition", "join_key",
                                      "psi_mode", "extremes"]) | text)] = draw(json_values)
        else:  # a parameter of the analysis: a wrong type, a huge number, odd text
            params = dict(job.get("params") or {}) if isinstance(job.get("params"), dict) else {}
            params[draw(st.sampled_from(["columns", "iterations", "bins", "extremes", "features"]) | text)] = \
                draw(json_values)
            job["params"] = params
    return job


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode()


def raw_bodies() -> st.SearchStrategy[bytes]:
    """Bytes a JSON parser must refuse cleanly (or accept: NaN, Infinity, huge numbers)."""
    return st.one_of(
        st.binary(max_size=64),
        st.sampled_from([b"", b"{", b"[" * 100_000, b"NaN", b'{"a": Infinity}', b"1" * 5000, b'"\xff\xfe"',
                         b'{"analysis": "\xed\xa0\x80"}', b"\xef\xbb\xbf{}", b"null", b'{"a":1,"a":2}']),
        text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    )


#: per kind of peer message: a seeded job it is about, and well-formed values of its other fields
PEER_JOBS = {"propose": ["00000000000000c1", SEEDED["beta_released"]], "decision": [SEEDED["awaiting"]],
             "prepare": [SEEDED["beta_accepted"], SEEDED["beta_running"]], "start": [SEEDED["beta_accepted"]],
             "outcome": [SEEDED["beta_running"], SEEDED["released"], SEEDED["beta_accepted"]],
             "query": [SEEDED["failed"], SEEDED["beta_running"]],
             "cancel": [SEEDED["beta_pending"], SEEDED["beta_released"], SEEDED["awaiting"]],
             "statement": [SEEDED["failed"], SEEDED["beta_running"], SEEDED["released"]]}


@st.composite
def peer_body(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """The body of a peer message of ``kind`` about a job the node holds: well-formed, then up to
    three of its fields replaced by arbitrary values, removed, or added (so that the handlers
    behind the signature check meet every kind of wrong field one or two at a time)."""
    well_formed: dict[str, st.SearchStrategy[Any]] = {
        "propose": st.fixed_dictionaries({"spec": st.one_of(st.just({**DESCRIBE, "analyst": ANALYST}),
                                                            mutated_job().map(lambda j: {**j, "analyst": ANALYST})),
                                          "coordinator": st.just("beta")}),
        "decision": st.fixed_dictionaries({"state": st.sampled_from(["accepted", "denied"]),
                                           "reasons": st.lists(text, max_size=2)}),
        "prepare": st.just({}),
        "start": st.fixed_dictionaries({"nonce": st.just("00" * 16),
                                        "ports": st.fixed_dictionaries({o: st.integers(1, 65535) for o in ORGS})}),
        "outcome": st.fixed_dictionaries({"state": st.sampled_from(["aborted", "failed", "released"]),
                                          "reasons": st.lists(text, max_size=2), "final": st.booleans()}),
        "query": st.just({}),
        "cancel": st.fixed_dictionaries({"reason": text}),
        "statement": st.just({}),
    }
    body: dict[str, Any] = {"job_id": draw(st.sampled_from(PEER_JOBS[kind])), **draw(well_formed[kind])}
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["replace", "replace", "drop", "add", "inner"]))
        if action == "replace" and body:
            body[draw(st.sampled_from(sorted(body)))] = draw(st.one_of(json_values, st.from_regex(r"\A[0-9a-f]{16}\Z")))
        elif action == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif action == "add":
            body[draw(text)] = draw(json_values)
        elif isinstance(body.get("ports"), dict):  # one party's port: a wrong type or out of range
            body["ports"] = {**body["ports"], draw(st.sampled_from([*ORGS, "x"])): draw(json_values)}
    return body


@st.composite
def envelope(draw: st.DrawFn, kind: str, creds: Creds) -> dict[str, Any]:
    """A peer envelope signed by beta (valid, or with one field then replaced: no longer valid)."""
    body, to = draw(peer_body(kind)), draw(st.sampled_from(["alpha"] * 5 + ["beta"]))
    try:
        env = seal(creds.beta, kind, body, creds.contract_hash, to=to)
    except UnicodeEncodeError:  # a lone surrogate cannot be signed: put it in after signing
        env = {**seal(creds.beta, kind, {}, creds.contract_hash, to=to), "body": body}
    if draw(st.integers(0, 5)) == 0:  # then one field of the envelope replaced: refused (403)
        env[draw(st.sampled_from(sorted(env)))] = draw(json_values)
    return env


def query_value(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    typed: st.SearchStrategy[Any]
    if schema.get("type") == "number":
        typed = st.one_of(st.floats(-10.0, 1.0), st.sampled_from(["nan", "inf", "-inf", "1e400", "-1e400", "0x10"]),
                          st.integers(-(10**30), 1))
    else:
        typed = st.one_of(st.sampled_from([s.value for s in JobState]), text)
    return st.one_of(typed, text).map(str)


def bounded_wait(params: dict[str, str]) -> dict[str, str]:
    """The long-poll holds a request up to ``timeout`` seconds (at most 300) by design: the
    fuzzer's numeric timeouts stay at most 0.1 s (text the node must refuse is sent as is)."""
    t = params.get("timeout")
    if t is not None:
        try:
            f = float(t)
        except ValueError:
            return params
        if not math.isnan(f) and f > 0.1:
            params["timeout"] = "0.1"
    return params


@st.composite
def cases(draw: st.DrawFn, ops: list[Operation], creds: Creds) -> Case:
    op = draw(st.sampled_from([o for o in ops for _ in range(4 if o.body else 1)]))  # bodies: more to vary
    cred = draw(st.sampled_from(sorted(creds.headers)))
    path = op.path
    for name in op.path_params:
        if name == "job_id":
            value = draw(st.one_of(st.sampled_from(sorted(SEEDED.values())), st.from_regex(r"\A[0-9a-f]{16}\Z"),
                                   text))
        elif name == "kind":
            value = draw(st.one_of(st.sampled_from(PEER_KINDS), text))
        else:
            value = draw(text)
        path = path.replace("{" + name + "}", quote(value.encode("utf-8", "surrogatepass"), safe=""))
    params = {name: draw(query_value(schema)) for name, schema in op.query if draw(st.booleans())}
    if op.path.endswith("/wait"):
        params = bounded_wait(params)
    url = path + (("?" + urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in params.items()}))
                  if params else "")
    body: bytes | None = None
    label = f"{op.method} {op.path}"
    if op.body:
        kinds = ["json", "deep", "raw", "none"]
        if op.path == "/v1/jobs":
            kinds += ["job", "job", "job"]
        if op.path.startswith("/v1/peer/"):
            kinds += ["signed", "signed", "signed", "signed"]
        how = draw(st.sampled_from(kinds))
        label += f" [{how}]"
        if how == "json":
            body = dumps(draw(json_values))
        elif how == "deep":
            body = draw(deep)
        elif how == "raw":
            body = draw(raw_bodies())
        elif how == "job":
            body = dumps(draw(mutated_job()))
        elif how == "signed":
            kind = path.rsplit("/", 1)[1]
            body = dumps(draw(envelope(kind if kind in PEER_KINDS else "propose", creds)))
    return Case(op.method, url, cred, body, label)


# -- the rule --------------------------------------------------------------------------------

@dataclass
class Tally:
    cases: int = 0
    statuses: Counter[int] | None = None
    ops: Counter[str] | None = None

    def __post_init__(self) -> None:
        self.statuses, self.ops = Counter(), Counter()

    def add(self, case: Case, status: int) -> None:
        assert self.statuses is not None and self.ops is not None
        self.cases += 1
        self.statuses[status] += 1
        self.ops[case.label] += 1


def check_answer(case: Case, status: int, content_type: str, body: bytes) -> None:
    where = f"{case.label} {case.url[:200]!r} as {case.cred}"
    assert status < 500, f"server error {status} for {where}: {body[:500]!r}"
    assert b"Traceback" not in body, where
    if status >= 400 and "json" in content_type:
        detail = json.loads(body).get("detail")
        assert detail, f"an error without a detail for {where}: {body[:300]!r}"


#: how a run sends one request: (method, url, body, headers) -> (status, content type, body)
Send = Callable[[str, str, bytes | None, dict[str, str]], tuple[int, str, bytes]]


def send_case(case: Case, creds: Creds, send: Send, tally: Tally) -> None:
    """Send one drawn case with its credential, check the answer and count it."""
    headers = dict(creds.headers[case.cred])
    if case.body is not None:
        headers["Content-Type"] = "application/json"
    status, content_type, body = send(case.method, case.url, case.body, headers)
    check_answer(case, status, content_type, body)
    tally.add(case, status)


def fuzz_settings(n: int) -> Callable[[Any], Any]:
    return settings(max_examples=n, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much])


def node_still_sound(cons: Consortium, node_dir: Path, store: Path, health: dict[str, Any]) -> None:
    from tessera.governance.audit import AuditLog

    assert health["status"] == "ok" and health["problems"] == [], health
    log = AuditLog(store / "audit.db", Identity.load(node_dir / "keys", "alpha"))
    assert verify_entries(log.entries(), cons.contract.party("alpha").public_key).ok


def report(capsys: pytest.CaptureFixture[str], what: str, tally: Tally) -> None:
    with capsys.disabled():
        print(f"\n[fuzz] {what}: {tally.cases} cases, 0 server errors; by status {dict(sorted(tally.statuses.items()))}"
              f"; by operation {dict(sorted(tally.ops.items()))}")


# -- the runs --------------------------------------------------------------------------------

def test_fuzz_the_api_in_process(cons: Consortium, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    api = TestClient(create_app(node), raise_server_exceptions=False)
    schema = api.get("/openapi.json").json()
    ops = operations(schema)
    assert {f"{o.method} {o.path}" for o in ops} >= {"POST /v1/jobs", "GET /v1/jobs/{job_id}/wait",
                                                     "POST /v1/peer/{kind}", "POST /v1/jobs/{job_id}/reject"}
    creds = credentials(cons, node.contract.hash)
    tally = Tally()

    def send(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, bytes]:
        r = api.request(method, url, content=body, headers=headers)
        return r.status_code, r.headers.get("content-type", ""), r.content

    def fuzz(among: list[Operation], n: int) -> None:
        @fuzz_settings(n)
        @given(case=cases(among, creds))
        def run(case: Case) -> None:
            send_case(case, creds, send, tally)

        run()

    fuzz(ops, TESTCLIENT_CASES)
    called = {label.split(" [")[0] for label in tally.ops}
    for op in ops:  # hypothesis does not draw uniformly: an operation it left out gets a few cases of its own
        if f"{op.method} {op.path}" not in called:
            fuzz([op], 5)
    report(capsys, "in-process (TestClient)", tally)
    assert tally.cases >= TESTCLIENT_CASES
    assert len({label.split(" [")[0] for label in tally.ops}) == len(ops)  # every operation was called
    assert tally.statuses[200] + tally.statuses[201] > 0 and tally.statuses[401] > 0 and tally.statuses[422] > 0
    admin = creds.headers["admin"]
    assert api.get("/v1/jobs", headers=admin).status_code == 200
    node_still_sound(cons, cons.nodes["alpha"], node.ctx.dir, api.get("/health").json())


def test_fuzz_signed_peer_messages(cons: Consortium, node: Node, capsys: pytest.CaptureFixture[str]) -> None:
    """The peer routes with envelopes a real party (beta) signed: the handlers behind the
    signature check get bodies with fields of every wrong shape (a signed message from a party
    is input like any other: refused naming the field, never a 500)."""
    api = TestClient(create_app(node), raise_server_exceptions=False)
    creds = credentials(cons, node.contract.hash)
    tally = Tally()

    @fuzz_settings(PEER_CASES)
    @given(kind=st.sampled_from(PEER_KINDS), data=st.data())
    def run(kind: str, data: st.DataObject) -> None:
        case = Case("POST", f"/v1/peer/{kind}", "none", dumps(data.draw(envelope(kind, creds))),
                    f"POST /v1/peer/{kind} [signed]")
        r = api.request("POST", case.url, content=case.body, headers={"Content-Type": "application/json"})
        check_answer(case, r.status_code, r.headers.get("content-type", ""), r.content)
        tally.add(case, r.status_code)

    run()
    report(capsys, "signed peer messages (TestClient)", tally)
    assert tally.cases >= PEER_CASES and len(tally.ops) == len(PEER_KINDS)
    assert tally.statuses[200] > 0 and tally.statuses[422] > 0 and tally.statuses[403] > 0
    node_still_sound(cons, cons.nodes["alpha"], node.ctx.dir, api.get("/health").json())


@pytest.fixture(scope="module")
def served(cons: Consortium, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """alpha's node as its own process (TLS on 127.0.0.1) on a seeded store of its own."""
    d = cons.nodes["alpha"]
    cfg = NodeConfig.load(d / "node.toml")
    store = tmp_path_factory.mktemp("fuzz-served") / "store"
    cfg.store = str(store)
    seeding = Node(cfg)
    seed_store(seeding)
    seeding.stop()
    cfg.save(d / "node.toml")
    proc = start_node(d, log_mode="wb")
    admin = Client.from_profile(d / "admin.toml")
    try:
        yield int(admin.http.port), store
    finally:
        proc.terminate()
        proc.wait(30)


def test_fuzz_the_served_node_over_tls(cons: Consortium, served: tuple[int, Path],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    port, store = served
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE  # our own node on loopback

    def request(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, str, bytes]:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=ctx)
        try:
            conn.request(method, url, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, r.getheader("content-type", ""), r.read()
        finally:
            conn.close()

    status, _, raw = request("GET", "/openapi.json", None, {})
    assert status == 200
    ops = operations(json.loads(raw))
    contract_hash = json.loads(request("GET", "/health", None, {})[2])["contract"]
    creds = credentials(cons, contract_hash)
    tally = Tally()

    @fuzz_settings(TLS_CASES)
    @given(case=cases(ops, creds))
    def run(case: Case) -> None:
        send_case(case, creds, request, tally)

    run()
    report(capsys, "served over TLS", tally)
    assert tally.cases >= TLS_CASES
    health = json.loads(request("GET", "/health", None, {})[2])
    node_still_sound(cons, cons.nodes["alpha"], store, health)
    log = (cons.nodes["alpha"] / "stdout.log").read_text()
    assert "Traceback" not in log, log[-3000:]


def test_signed_peer_fields_of_the_wrong_type_are_refused_naming_them(cons: Consortium, tmp_path: Path,
                                                                      request: pytest.FixtureRequest) -> None:
    """Found by the fuzz run above: a party's signed *start* with a port that is not a number,
    or an *outcome* / *decision* whose reasons are not a list of strings, was a 500 (``int()`` and
    iteration on whatever came). Now 422 naming the field, and nothing is recorded."""
    cfg = NodeConfig.load(cons.nodes["alpha"] / "node.toml")
    cfg.store = str(tmp_path / "store")
    node = Node(cfg)
    request.addfinalizer(node.stop)
    seed_store(node)
    api = TestClient(create_app(node), raise_server_exceptions=False)
    beta = Identity.load(cons.nodes["beta"] / "keys", "beta")

    def send(kind: str, body: dict[str, Any]) -> tuple[int, str]:
        r = api.post(f"/v1/peer/{kind}", json=seal(beta, kind, body, node.contract.hash, to="alpha"))
        return r.status_code, r.json().get("detail", "")

    ports = "the ports of a start message are TCP port numbers (1-65535)"
    for bad in ([1], "x", None, True, 0, 70000, 1.5):
        assert send("start", {"job_id": SEEDED["beta_accepted"], "nonce": "00" * 16,
                              "ports": {"alpha": bad, "beta": 2, "gamma": 3}}) == (422, ports), bad
    assert node.store.get(SEEDED["beta_accepted"]).state is JobState.ACCEPTED  # type: ignore[union-attr]
    reasons = "the reasons of a message are a list of strings"
    for bad in (5, None, "abc", [1], {"a": "b"}):
        assert send("outcome", {"job_id": SEEDED["beta_running"], "state": "aborted", "reasons": bad}) == \
            (422, reasons), bad
        assert send("decision", {"job_id": SEEDED["awaiting"], "state": "accepted", "reasons": bad}) == \
            (422, reasons), bad
    job = node.store.get(SEEDED["beta_running"])
    assert job is not None and job.state is JobState.RUNNING and job.outcomes == {}
    assert "beta" not in node.store.get(SEEDED["awaiting"]).decisions  # type: ignore[union-attr]
