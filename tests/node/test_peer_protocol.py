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


@pytest.fixture(scope="module")
def consortium(tmp_path_factory: pytest.TempPathFactory):
    return build_consortium(tmp_path_factory.mktemp("peer-protocol") / "c", rows=60, base_port=43100)


def _key(cons: Any, name: str) -> Identity:
    return Identity.load(cons.nodes[name] / "keys", name)


def _signed(identity: Identity, **fields: Any) -> dict[str, Any]:
    """An envelope with exactly ``fields``, correctly signed by ``identity`` (a sender that lies)."""
    env = {"from": identity.name, "to": "gamma", "kind": "outcome", "ts": time.time(), "nonce": "n" * 32,
           "contract": "", "body": {"job_id": "j-none", "state": "failed"}, **fields}
    return {**env, "sig": identity.sign(_canonical(env)).hex()}


def test_an_envelope_for_one_node_is_refused_by_another(consortium):
    cfg = NodeConfig.load(consortium.nodes["gamma"] / "node.toml")
    node = Node(cfg)
    try:
        alpha = _key(consortium, "alpha")
        for_beta = seal(alpha, "outcome", {"job_id": "j-none", "state": "failed"}, node.contract.hash, to="beta")
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
        for_gamma = seal(alpha, "outcome", {"job_id": "j-none", "state": "failed"}, node.contract.hash, to="gamma")
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
        env = seal(alpha, "outcome", {"job_id": "j-none", "state": "failed"}, first.contract.hash, to="gamma")
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
