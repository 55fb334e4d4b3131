"""The node's parts on their own: job store, signed envelopes, job plans, configuration."""

from __future__ import annotations

import datetime as dt
import socket
import time

import pytest

from tessera.data.synthetic import BANK_SCHEMA
from tessera.errors import PeerAuthError, PlanError
from tessera.governance.contract import AnalysisRule, Analyst, Contract, DatasetSpec, PartySpec
from tessera.governance.job import JobSpec
from tessera.jobs.contract import request_for
from tessera.jobs.planner import plan_job as plan
from tessera.net.identity import Identity
from tessera.node.config import ConfigError, NodeConfig, hash_token
from tessera.node.coordinator import job_id_for, session_id_for
from tessera.node.peers import ReplayGuard, seal, unseal
from tessera.node.states import JobState
from tessera.node.store import JobStore
from tests.node.conftest import free_block

NAMES = ["a", "b", "c", "d"]


@pytest.fixture
def idents(tmp_path):
    return {n: Identity.create(n, tmp_path / "keys") for n in NAMES}


def contract_for(idents, revoked=()):
    now = dt.datetime.now(dt.UTC)
    return Contract(
        contract_id="t", not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=1),
        parties=[PartySpec(name=n, address=f"127.0.0.1:{9000 + i}", fingerprint=idents[n].fingerprint,
                           public_key=idents[n].public_key, role="dealer" if n == "d" else "party")
                 for i, n in enumerate(NAMES)],
        datasets=[DatasetSpec(name=f"tx_{n}", owner=n, schema=BANK_SCHEMA) for n in NAMES[:3]],
        analyses=[AnalysisRule(name="describe", datasets=[f"tx_{n}" for n in NAMES[:3]], columns=["amount"],
                               recipients=["an"])],
        analysts=[Analyst(id="an")], revoked_keys=list(revoked),
    )


def plan_job(contract, spec, coordinator):
    """The typed job a node plans when it decides on ``spec``."""
    return plan(request_for(contract, spec, coordinator, "j1"))


def job(**kw):
    base = dict(analysis="describe", version="1.0", datasets=["tx_a", "tx_b", "tx_c"], columns=["amount"],
                params={"columns": ["amount"]}, protocol="rep3", recipients=["an"], analyst="an")
    return JobSpec(**{**base, **kw})


def test_store_lifecycle(tmp_path):
    s = JobStore(tmp_path / "jobs.db")
    row, created = s.create("j1", {"analyst": "an", "analysis": "x"}, "h", "a", ["a", "b"], idem="an|k")
    assert created and row.state == "submitted"
    again, created = s.create("j2", {"analyst": "an"}, "h", "a", ["a"], idem="an|k")
    assert not created and again.id == "j1"  # same idempotency key: the same job
    assert s.transition("j1", JobState.PENDING, "asked")
    assert not s.transition("j1", JobState.RUNNING)  # only an accepted job starts (the transition table)
    assert not s.transition("j1", JobState.RELEASED)  # only a running job releases
    assert s.transition("j1", JobState.ACCEPTED) and s.transition("j1", JobState.RUNNING)
    assert s.transition("j1", JobState.RELEASED, result={"x": [1, 2]})
    assert not s.transition("j1", JobState.ABORTED)  # a final state never changes
    assert s.get("j1").state == "released" and s.get("j1").result == {"x": [1, 2]}
    assert [e["state"] for e in s.events("j1")] == ["submitted", "pending", "accepted", "running", "released"]
    assert s.get("j1").progress == {"phase": "released", "fraction": 1.0, "detail": "released"}
    assert s.counts() == {"released": 1}
    with pytest.raises(ValueError):
        s.transition("j1", "exploded")


def test_envelopes(idents):
    c = contract_for(idents)
    env = seal(idents["a"], "propose", {"job_id": "x"}, c.hash, to="b")
    guard = ReplayGuard()
    assert unseal(c, env, "propose", guard, me="b") == ("a", {"job_id": "x"})
    with pytest.raises(PeerAuthError, match="replayed"):
        unseal(c, env, "propose", guard, me="b")
    with pytest.raises(PeerAuthError, match="expected a 'start'"):
        unseal(c, env, "start", me="b")
    tampered = {**env, "body": {"job_id": "y"}}
    with pytest.raises(PeerAuthError, match="not signed with its contract key"):
        unseal(c, tampered, "propose", me="b")
    stale = seal(idents["a"], "propose", {}, c.hash, to="b")
    stale = {**stale, "ts": time.time() - 3600}
    with pytest.raises(PeerAuthError):
        unseal(c, stale, "propose", me="b")
    with pytest.raises(PeerAuthError, match="another contract version"):
        unseal(c, seal(idents["a"], "propose", {}, "0" * 64, to="b"), "propose", me="b")
    with pytest.raises(PeerAuthError, match="revoked"):
        unseal(contract_for(idents, revoked=[idents["b"].public_key]), seal(idents["b"], "x", {}, c.hash, to="a"),
               "x", me="a")
    with pytest.raises(PeerAuthError, match="not a signed node message"):
        unseal(c, {"from": "a"}, "propose", me="b")


def test_job_plans(idents):
    c = contract_for(idents)
    p = plan_job(c, job(), "a")
    assert p.roles.endpoints == ["a", "b", "c"] and p.roles.preprocessing.party is None
    assert p.roles.recipients.parties == ["a"] and p.roles.recipients.analysts == ["an"]
    assert p.roles.data_owners == p.roles.compute == ["a", "b", "c"] and p.format_version == 1
    p2 = plan_job(c, job(protocol="semi2k"), "b")
    assert p2.roles.endpoints == ["a", "b", "c", "d"] and p2.roles.recipients.parties == ["b"]
    assert p2.roles.preprocessing.source == "dealer" and p2.roles.preprocessing.party == "d"
    assert type(p2).from_json(p2.to_json()) == p2  # the typed job travels as versioned JSON
    with pytest.raises(PlanError, match="does not declare"):
        plan_job(c, job(columns=["merchant_risk"]), "a")
    with pytest.raises(PlanError, match="exactly three"):
        plan_job(c, job(datasets=["tx_a", "tx_b"]), "a")
    with pytest.raises(PlanError, match="data owners"):
        plan_job(c, job(), "d")
    with pytest.raises(PlanError, match="one dataset per party"):
        plan_job(c, job(datasets=["tx_a", "tx_a", "tx_b"]), "a")
    sid = session_id_for(c.hash, job().hash, "00" * 16)
    assert len(sid) == 32 and sid != session_id_for(c.hash, job().hash, "11" * 16)
    assert sid != session_id_for(c.hash, job(protocol="semi2k").hash, "00" * 16)
    assert job_id_for("an", "k") == job_id_for("an", "k") != job_id_for("other", "k")
    assert job_id_for("an", None) != job_id_for("an", None)


def test_config_files(tmp_path):
    p = tmp_path / "node.toml"
    p.write_text("name = 'a'\napi_port = 1\n")
    with pytest.raises(ConfigError, match="node.toml"):
        NodeConfig.load(p)
    p.write_text("name = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        NodeConfig.load(p)
    cfg = NodeConfig(name="a", api_port=8443, mpc_ports=(9000, 9010), admin_token_sha256=hash_token("tsr_secret_admin"),
                     analysts={"an": hash_token("tsr_secret_analyst")})
    cfg.save(p)
    assert p.stat().st_mode & 0o077 == 0
    loaded = NodeConfig.load(p)
    assert loaded.analyst_for("tsr_secret_analyst") == "an" and loaded.analyst_for("nope") is None
    assert loaded.is_admin("tsr_secret_admin") and not loaded.is_admin("tsr_secret_analyst")
    assert "tsr_secret" not in p.read_text()
    assert loaded.path("store") == tmp_path / "store"
    with pytest.raises(ValueError):
        NodeConfig(name="a", api_port=8443, mpc_ports=(9010, 9000), admin_token_sha256=hash_token("x"))


def test_vertical_psi_mode_follows_the_contract(idents):
    c = contract_for(idents)
    feats = BANK_SCHEMA.select(["amount"])
    label = BANK_SCHEMA.select(["is_fraud"])
    base = c.model_dump(by_alias=True)
    base["datasets"] = [{"name": "f", "owner": "a", "key": "id", "schema": feats.model_dump()},
                        {"name": "l", "owner": "b", "key": "id", "schema": label.model_dump()}]
    base["analyses"] = [{"name": "correlation", "datasets": ["f", "l"], "columns": ["amount", "is_fraud"],
                         "recipients": ["an"]}]
    spec = job(analysis="correlation", datasets=["f", "l"], columns=["amount", "is_fraud"],
               params={"columns": ["amount", "is_fraud"]}, protocol="semi2k", partition="vertical", join_key="id")
    for reveal, mode in (("intersection", "intersection"), ("size", "aligned")):
        contract = Contract.model_validate({**base, "leakage": {"psi_reveal": reveal}})
        p = plan_job(contract, spec, "a")
        assert p.psi.mode == mode and p.psi.join_key == "id" and p.holders == {"amount": ["a"], "is_fraud": ["b"]}
        assert f"PSI ({mode} mode)" in p.plan_text
    with pytest.raises(PlanError, match="allows no PSI mode"):
        plan_job(Contract.model_validate({**base, "leakage": {"psi_reveal": "none"}}), spec, "a")


def test_sql_data_source_is_materialised_for_the_job(tmp_path):
    import pandas as pd

    from tessera.node.config import DatasetSource
    from tessera.node.datasources import data_for_job, rows_of
    from tessera.node.example import build_consortium
    from tessera.node.service import Node

    cons = build_consortium(tmp_path / "c", rows=900, base_port=free_block())
    cfg = NodeConfig.load(cons.nodes["beta"] / "node.toml")
    csv = cons.data["beta"]["tx"]
    cfg.datasets["tx_beta"] = DatasetSource(sql="SELECT * FROM tx WHERE amount >= 50", tables={"tx": str(csv)})
    node = Node(cfg)
    try:
        want = pd.read_csv(csv).query("amount >= 50")
        assert rows_of(node.cfg, "tx_beta") == len(want)
        out = pd.read_parquet(data_for_job(node.cfg, "tx_beta", tmp_path))
        assert len(out) == len(want) and out["amount"].min() >= 50
        # a plain file source is used in place
        assert data_for_job(node.cfg, "trial_beta", tmp_path) == str(cons.data["beta"]["trial"])
        bad = DatasetSource(sql="SELECT 1", tables={"not an identifier": str(csv)})
        cfg.datasets["tx_beta"] = bad
        with pytest.raises(ConfigError, match="not an identifier"):
            rows_of(node.cfg, "tx_beta")
    finally:
        node.stop()


def test_a_source_that_fails_at_start_fails_the_job_without_quoting_data(tmp_path, monkeypatch):
    from tessera.jobs import planner
    from tessera.node.config import DatasetSource
    from tessera.node.example import build_consortium
    from tessera.node.service import Node, NodeError

    cons = build_consortium(tmp_path / "c", rows=900, base_port=free_block())
    cfg = NodeConfig.load(cons.nodes["alpha"] / "node.toml")
    # a query that fails on a value: DuckDB's message would quote it
    cfg.datasets["tx_alpha"] = DatasetSource(sql="SELECT CAST(customer_id AS INTEGER) AS amount FROM tx",
                                             tables={"tx": str(cons.data["alpha"]["tx"])})
    node = Node(cfg)
    jid = "00000000000000a1"  # a job id of the node's format: it names the job's directory
    try:
        spec = job(datasets=["tx_alpha", "tx_beta", "tx_gamma"], recipients=["analyst-1"], analyst="analyst-1")
        node.store.create(jid, spec.model_dump(mode="json"), spec.hash, "alpha", ["alpha", "beta", "gamma"])
        node.coordinator.record_decision(jid, spec, "alpha")  # the one planning of the job at this node
        assert node.store.get(jid).party_job is not None
        node.store.transition(jid, JobState.ACCEPTED)
        port = node.runner.prepare(jid)
        # the prepared port is held (listening) until the party process takes it: nobody else can
        # bind it meanwhile (an outgoing connection's ephemeral port once did, and the job aborted)
        with socket.socket() as other, pytest.raises(OSError):
            other.bind(("127.0.0.1", port))

        def no_second_plan(*_):
            raise AssertionError("a job is planned once per node, when it decides")
        monkeypatch.setattr(planner, "plan_job", no_second_plan)
        with pytest.raises(NodeError) as e:
            node.coordinator.start(jid, "00" * 16, {"alpha": port, "beta": port + 1, "gamma": port + 2},
                                   release_slot=False)
        assert e.value.status == 500 and "could not prepare its data" in str(e.value)
        view = node.view(jid)
        assert view["state"] == "failed" and "ConversionException" in view["reasons"][0]
        customer = str(__import__("pandas").read_csv(cons.data["alpha"]["tx"]).customer_id[0])
        assert customer not in view["reasons"][0]
        assert jid not in node.runner.ports  # the port went back
        with socket.socket() as other:
            other.bind(("127.0.0.1", port))
        assert b'tessera_jobs_planned_total{node="alpha"} 1.0' in node.metrics.render()
    finally:
        node.stop()


def test_policy_judges_the_validated_parameters(tmp_path):
    """#15.1 at a node: the limit holds for a string that the params model would coerce, and for
    the value the analysis really runs with."""
    from tessera.node.decisions import decide
    from tessera.node.example import FRAUD_FEATURES, build_consortium
    from tessera.node.service import Node

    cons = build_consortium(tmp_path / "c", rows=300, base_port=free_block())
    node = Node(NodeConfig.load(cons.nodes["alpha"] / "node.toml"))
    try:
        def spec(iterations):
            return JobSpec(analysis="dp_logistic_regression", version="1.0",
                           datasets=["tx_alpha", "tx_beta", "tx_gamma"], columns=[*FRAUD_FEATURES, "is_fraud"],
                           params={"features": FRAUD_FEATURES, "target": "is_fraud", "iterations": iterations},
                           dp={"epsilon": 0.5, "delta": 1e-6}, protocol="rep3", recipients=["analyst-1"],
                           analyst="analyst-1")
        for bad in ("50", 50, "26"):
            d = decide(node.ctx, spec(bad), "alpha", "j-bad")
            assert d.state.value == "denied", (bad, d)
            assert any("exceeds the maximum of 25 iterations" in r for r in d.reasons), d.reasons
        ok = decide(node.ctx, spec("25"), "alpha", "j-ok")
        assert ok.state.value == "accepted", ok.reasons
        assert ok.job is not None and ok.job.params["iterations"] == 25
    finally:
        node.stop()
