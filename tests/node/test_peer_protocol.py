"""The signed peer protocol between nodes: envelopes name their recipient, nonces are remembered
across a restart of the node, and an envelope's time must be a finite number (#15.12)."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest

from tessera.errors import PeerAuthError
from tessera.net.identity import Identity
from tessera.node.config import NodeConfig
from tessera.node.context import NodeError
from tessera.node.example import build_consortium
from tessera.node.peers import MAX_SKEW, ReplayGuard, _canonical, seal, unseal
from tessera.node.replay import SqliteReplayGuard
from tessera.node.service import Node
from tests.node.conftest import free_block


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory):
    return build_consortium(tmp_path_factory.mktemp("peer-protocol") / "c", rows=60, base_port=free_block())


def _key(cons: Any, name: str) -> Identity:
    return Identity.load(cons.nodes[name] / "keys", name)


def _signed(identity: Identity, **fields: Any) -> dict[str, Any]:
    """An envelope with exactly ``fields``, correctly signed by ``identity`` (a sender that lies)."""
    env = {"from": identity.name, "to": "gamma", "kind": "outcome", "ts": time.time(), "nonce": "n" * 32,
           "contract": "", "body": {"job_id": "0123456789abcdef", "state": "failed"}, **fields}
    return {**env, "sig": identity.sign(_canonical(env)).hex()}


def test_an_envelope_for_one_node_is_refused_by_another(consortium):
    cfg = NodeConfig.load(consortium.nodes["gamma"] / "node.toml")
    node = Node(cfg)
    try:
        alpha = _key(consortium, "alpha")
        for_beta = seal(alpha, "outcome", {"job_id": "0123456789abcdef", "state": "failed"}, node.contract.hash, to="beta")
        with pytest.raises(NodeError) as e:
            node.receive("outcome", for_beta)
        assert e.value.status == 403
        assert "the message from 'alpha' is addressed to 'beta', not to 'gamma'" in str(e.value)
        # the recipient is signed: rewriting it breaks the signature
        with pytest.raises(NodeError) as e:
            node.receive("outcome", {**for_beta, "to": "gamma"})
        assert e.value.status == 403 and "not signed with its contract key" in str(e.value)
        # an envelope that names no recipient at all is not a node message
        unaddressed = {k: v for k, v in for_beta.items() if k != "to"}
        with pytest.raises(NodeError) as e:
            node.receive("outcome", unaddressed)
        assert e.value.status == 403 and "not a signed node message" in str(e.value)
        # the same message addressed to gamma gets through the envelope checks (then: no such job)
        for_gamma = seal(alpha, "outcome", {"job_id": "0123456789abcdef", "state": "failed"}, node.contract.hash, to="gamma")
        with pytest.raises(NodeError) as e:
            node.receive("outcome", for_gamma)
        assert e.value.status == 404
    finally:
        node.stop()


def test_a_message_replayed_after_the_node_restarted_is_refused(consortium):
    cfg = NodeConfig.load(consortium.nodes["gamma"] / "node.toml")
    alpha = _key(consortium, "alpha")
    first = Node(cfg)
    try:
        env = seal(alpha, "outcome", {"job_id": "0123456789abcdef", "state": "failed"}, first.contract.hash, to="gamma")
        with pytest.raises(NodeError) as e:
            first.receive("outcome", env)
        assert e.value.status == 404  # accepted as a message, about a job gamma does not know
    finally:
        first.stop()
    restarted = Node(cfg)  # the same state directory
    try:
        with pytest.raises(NodeError) as e:
            restarted.receive("outcome", env)
        assert e.value.status == 403 and "replayed message from 'alpha'" in str(e.value)
    finally:
        restarted.stop()
    assert (cfg.store_dir / "replay.db").is_file()


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf, "now", True, None])
def test_an_envelope_whose_time_is_not_a_finite_number_is_refused(consortium, ts):
    cfg = NodeConfig.load(consortium.nodes["gamma"] / "node.toml")
    node = Node(cfg)
    try:
        env = _signed(_key(consortium, "alpha"), ts=ts, contract=node.contract.hash)
        with pytest.raises(NodeError) as e:
            node.receive("outcome", env)
        assert e.value.status == 403
        assert "the message from 'alpha' has no valid time (ts must be a finite number of seconds)" in str(e.value)
    finally:
        node.stop()


def test_unseal_checks_the_recipient_and_the_time_before_the_nonce(consortium):
    alpha = _key(consortium, "alpha")
    contract = Node(NodeConfig.load(consortium.nodes["gamma"] / "node.toml"))
    try:
        c = contract.contract
        guard = ReplayGuard()
        env = seal(alpha, "propose", {"job_id": "x"}, c.hash, to="beta")
        with pytest.raises(PeerAuthError, match="addressed to 'beta', not to 'gamma'"):
            unseal(c, env, "propose", guard, me="gamma")
        # a refused envelope does not use up its nonce: the right recipient still accepts it once
        assert unseal(c, env, "propose", guard, me="beta") == ("alpha", {"job_id": "x"})
        with pytest.raises(PeerAuthError, match="replayed"):
            unseal(c, env, "propose", guard, me="beta")
        nan = _signed(alpha, ts=math.nan, to="beta", kind="propose", contract=c.hash)
        with pytest.raises(PeerAuthError, match="no valid time"):
            unseal(c, nan, "propose", guard, me="beta")
    finally:
        contract.stop()


def test_the_nonce_table_keeps_a_nonce_while_its_envelope_can_be_fresh_and_prunes_it_after(tmp_path):
    guard = SqliteReplayGuard(tmp_path / "replay.db")
    now = time.time()
    assert guard.fresh("old", now - 3 * MAX_SKEW)  # long stale: kept only until now + MAX_SKEW
    assert guard.fresh("new", now)
    assert not guard.fresh("new", now)
    guard.close()
    again = SqliteReplayGuard(tmp_path / "replay.db")
    assert not again.fresh("new", now)  # remembered across a new connection (a restart)
    # once its envelope could no longer pass the freshness check, a nonce is pruned
    again._db.execute("UPDATE seen_nonces SET expires = ? WHERE nonce = 'old'", (now - 1,))
    assert again.fresh("another", now)
    assert len(again) == 2
    again.close()


# -- port reservations (#15.8) -----------------------------------------------------------------


def _two_free_ports() -> tuple[int, int]:
    import socket

    for lo in range(47300, 47900, 7):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", lo))
                b.bind(("127.0.0.1", lo + 1))
            return lo, lo + 1
        except OSError:
            continue
    raise RuntimeError("no two free consecutive ports")


def _accepted_job(node: Node, job_id: str) -> None:
    from tessera.governance.job import JobSpec
    from tessera.node.states import JobState

    spec = JobSpec(analysis="describe", version="1.0", datasets=["tx_alpha", "tx_beta", "tx_gamma"],
                   columns=["amount"], params={"columns": ["amount"]}, protocol="rep3",
                   recipients=["analyst-1"], analyst="analyst-1")
    node.store.create(job_id, spec.model_dump(mode="json"), spec.hash, "alpha", ["alpha", "beta", "gamma"])
    node.coordinator.record_decision(job_id, spec, "alpha")
    node.store.transition(job_id, JobState.ACCEPTED)


def _from_alpha(cons: Any, node: Node, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = node.receive(kind, seal(_key(cons, "alpha"), kind, body, node.contract.hash, to="gamma"))
    return unseal(node.contract, reply, kind + ".reply", me="alpha")[1]


def test_prepared_ports_without_a_start_expire_and_a_late_start_is_refused(consortium):
    import socket

    cfg = NodeConfig.load(consortium.nodes["gamma"] / "node.toml")
    cfg.mpc_ports = _two_free_ports()
    cfg.prepare_lease = 0.5
    cfg.sweep_interval = 0.1
    node = Node(cfg)
    try:
        for j in ("1eace00000000001", "1eace00000000002", "1eace00000000003"):
            _accepted_job(node, j)
        # a coordinator that prepares and never starts takes the whole (two-port) range ...
        p1 = _from_alpha(consortium, node, "prepare", {"job_id": "1eace00000000001"})["port"]
        p2 = _from_alpha(consortium, node, "prepare", {"job_id": "1eace00000000002"})["port"]
        assert {p1, p2} == set(cfg.mpc_ports)
        with pytest.raises(NodeError) as e:
            _from_alpha(consortium, node, "prepare", {"job_id": "1eace00000000003"})
        assert e.value.status == 503 and "no free MPC port" in str(e.value)
        # ... but only until the leases end: the periodic sweep frees both ports
        node.recover()  # starts the sweep
        deadline = time.monotonic() + 20
        while node.runner.ports:
            assert time.monotonic() < deadline, node.runner.ports
            time.sleep(0.05)
        for port in (p1, p2):  # closed, not just forgotten: the port can be bound again
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
        # the range is usable again
        p3 = _from_alpha(consortium, node, "prepare", {"job_id": "1eace00000000003"})["port"]
        assert p3 in cfg.mpc_ports
        # a start after its reservation expired is refused, saying why; nothing runs
        ports = {"alpha": 1, "beta": 2, "gamma": p1}
        with pytest.raises(NodeError) as e:
            _from_alpha(consortium, node, "start", {"job_id": "1eace00000000001", "nonce": "ab" * 16, "ports": ports})
        assert e.value.status == 409
        assert ("the MPC port gamma reserved for job 1eace00000000001 was freed: no start came within prepare_lease "
                "(0.5 s) of prepare; prepare the job again") in str(e.value)
        assert node.runner.procs == {} and node.store.get("1eace00000000001").state.value == "accepted"
        # a prepare again makes a fresh lease
        assert _from_alpha(consortium, node, "prepare", {"job_id": "1eace00000000001"})["port"] in cfg.mpc_ports
        assert "1eace00000000001" not in node.runner.lapsed
    finally:
        node.stop()
