"""#17: an input-only owner's node settles a spent charge of an aborted job on the compute nodes'
signed abort statements, in-process (real :class:`Node` objects of an outsourced consortium built
on disk; the peer answers are given). Every statement valid: refunded; one missing, forged, for
another job, malformed or unreachable: spent. Audited, naming each party's statement. A compute
node signs only for the job's input-only owners, and only once the job has ended there unmarked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tessera.errors import TransportError
from tessera.governance.job import JobSpec
from tessera.jobs.outcome import BarrierRecord, IdentityKey
from tessera.net.identity import Identity
from tessera.node.config import NodeConfig
from tessera.node.context import NodeError
from tessera.node.example import ANALYST, COMPUTE, Consortium, build_hospitals, hospital_names
from tessera.node.peers import seal
from tessera.node.service import Node
from tessera.node.states import JobState
from tests.node.conftest import free_block

HOSPITALS = hospital_names(2)
DP = {"analysis": "dp_describe", "version": "1.0", "datasets": [f"trial_{h}" for h in HOSPITALS],
      "columns": ["outcome"], "protocol": "rep3", "recipients": [ANALYST], "params": {"columns": ["outcome"]},
      "dp": {"epsilon": 0.5}, "analyst": ANALYST}


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return build_hospitals(tmp_path_factory.mktemp("statements"), hospitals=len(HOSPITALS), base_port=free_block(60))


def node_of(cons: Consortium, name: str, store: Path) -> Node:
    cfg = NodeConfig.load(cons.nodes[name] / "node.toml")
    cfg.store = str(store)
    return Node(cfg)


@pytest.fixture
def hospital(cons: Consortium, tmp_path: Path) -> Iterator[Node]:
    n = node_of(cons, "hospital_01", tmp_path / "h1")
    try:
        yield n
    finally:
        n.stop()


def planned(node: Node, job_id: str, *states: JobState) -> str:
    """A job coordinated by c1, decided (planned) at ``node`` and moved through ``states``."""
    s = JobSpec.model_validate(DP)
    node.store.create(job_id, s.model_dump(mode="json"), s.hash, "c1", ["c1", node.cfg.name])
    node.coordinator.record_decision(job_id, s, "c1")
    for st in states:
        assert node.store.transition(job_id, st), (job_id, st)
    return job_id


def spent(node: Node, job_id: str) -> str:
    """An aborted job at ``node`` whose charge had left (committed)."""
    planned(node, job_id, JobState.ACCEPTED, JobState.RUNNING, JobState.ABORTED)
    node.ledger.reserve(job_id, "trial_hospital_01", 0.5)
    node.ledger.mark_output_started(job_id)
    node.ledger.commit(job_id)
    return job_id


def keys(cons: Consortium) -> dict[str, IdentityKey]:
    return {c: IdentityKey(Identity.load(cons.nodes[c] / "keys", c)) for c in COMPUTE}


def answering(node: Node, monkeypatch: pytest.MonkeyPatch,
              answer: Callable[[str, str], dict[str, Any]]) -> None:
    def send(party: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        assert kind == "statement"
        return answer(party, body["job_id"])
    monkeypatch.setattr(node.coordinator, "send", send)


def settlement(node: Node, job_id: str) -> tuple[str, dict[str, Any]]:
    [entry] = [e for e in node.audit.entries() if e.body.get("job_id") == job_id
               and e.body.get("by") == "abort_statements"]
    return entry.kind, entry.body


def test_every_valid_statement_refunds_the_charge(cons: Consortium, hospital: Node,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = spent(hospital, "00000000000000a1")
    k = keys(cons)
    answering(hospital, monkeypatch, lambda c, j: {"state": "aborted", "statement": k[c].sign(j, c).model_dump()})
    assert hospital.coordinator.collect_statements(job_id) == "released"
    assert hospital.ledger.state(job_id) == [("trial_hospital_01", "released")]
    assert hospital.ledger.remaining("trial_hospital_01")[0] == pytest.approx(3.0)
    assert settlement(hospital, job_id) == ("budget_released", {
        "job_id": job_id, "dataset": "trial_hospital_01", "by": "abort_statements",
        "statements": {c: "valid" for c in COMPUTE}})


@pytest.mark.parametrize("case,expected", [
    ("missing", "missing"), ("forged", "invalid"), ("another job", "invalid"), ("garbage", "invalid"),
    ("unreachable", "unreachable"), ("still running", "missing")])
def test_one_statement_short_leaves_the_charge_spent(cons: Consortium, hospital: Node,
                                                     monkeypatch: pytest.MonkeyPatch, case: str, expected: str) -> None:
    job_id = spent(hospital, "00000000000000b2")
    k = keys(cons)

    def answer(c: str, j: str) -> dict[str, Any]:
        good = {"state": "aborted", "statement": k[c].sign(j, c).model_dump()}
        if c != "c2":
            return good
        if case == "missing":
            return {"state": "aborted", "statement": None}
        if case == "forged":  # c2's statement signed with c1's key
            return {"state": "aborted", "statement": k["c1"].sign(j, "c2").model_dump()}
        if case == "another job":
            return {"state": "aborted", "statement": k["c2"].sign("00000000000000ff", "c2").model_dump()}
        if case == "garbage":
            return {"state": "aborted", "statement": {"job_id": j, "party": "c2", "signature": "zz"}}
        if case == "still running":
            return {"state": "running", "statement": None}
        raise TransportError("cannot reach https://127.0.0.1:1: Connection refused")

    answering(hospital, monkeypatch, answer)
    assert hospital.coordinator.collect_statements(job_id, attempts=2, delay=0.0) == "committed"
    assert hospital.ledger.state(job_id) == [("trial_hospital_01", "committed")]
    assert hospital.ledger.remaining("trial_hospital_01")[0] == pytest.approx(2.5)
    assert settlement(hospital, job_id) == ("budget_committed", {
        "job_id": job_id, "dataset": "trial_hospital_01", "by": "abort_statements",
        "statements": {"c1": "valid", "c2": expected, "c3": "valid"}})


def test_nothing_spent_asks_no_one(hospital: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    job_id = planned(hospital, "00000000000000c3", JobState.ACCEPTED, JobState.RUNNING, JobState.ABORTED)
    answering(hospital, monkeypatch, lambda c, j: pytest.fail("asked for a statement"))  # type: ignore[no-any-return]
    assert hospital.coordinator.collect_statements(job_id) is None


def test_a_compute_node_signs_for_the_input_only_owners_once_the_job_ended_unmarked(cons: Consortium,
                                                                                    tmp_path: Path) -> None:
    c1 = node_of(cons, "c1", tmp_path / "c1")
    try:
        job_id = planned(c1, "00000000000000d4", JobState.ACCEPTED, JobState.RUNNING)
        record = BarrierRecord(c1.coordinator.runner.barrier_path(job_id))
        record.path.parent.mkdir(parents=True, exist_ok=True)
        record.start()

        def ask(sender: str) -> dict[str, Any]:
            env = seal(Identity.load(cons.nodes[sender] / "keys", sender), "statement", {"job_id": job_id},
                       c1.contract.hash, to="c1")
            reply = c1.coordinator.receive("statement", env)
            assert reply["from"] == "c1" and reply["kind"] == "statement.reply"
            return dict(reply["body"])

        assert ask("hospital_01") == {"state": "running", "statement": None}  # not ended: nothing yet
        with pytest.raises(NodeError, match="'c2' is not a data owner of job 00000000000000d4 that only inputs"):
            ask("c2")
        assert c1.store.transition(job_id, JobState.ABORTED)
        answer = ask("hospital_02")
        assert answer["state"] == "aborted"
        assert answer["statement"] == keys(cons)["c1"].sign(job_id, "c1").model_dump()
        record.mark()  # had it marked "output started": no statement
        assert ask("hospital_01") == {"state": "aborted", "statement": None}
    finally:
        c1.stop()


def test_node_init_takes_the_contract_role(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from tessera.cli.main import app

    cli = CliRunner()
    r = cli.invoke(app, ["node", "init", str(tmp_path / "h"), "--name", "h", "--role", "owner", "--api-port", "18999",
                         "--mpc-ports", "19000-19003"])
    assert r.exit_code == 0, r.output
    assert NodeConfig.load(tmp_path / "h" / "node.toml").role == "owner"
    assert 'role = "owner"' in (tmp_path / "h" / "party.toml").read_text()
    r = cli.invoke(app, ["node", "init", str(tmp_path / "x"), "--name", "x", "--role", "boss", "--api-port", "18999",
                         "--mpc-ports", "19000-19003"])
    assert r.exit_code == 2 and "--role is one of party, owner, compute, both, not 'boss'" in r.output
    assert not (tmp_path / "x" / "node.toml").exists()
