"""A job's lifecycle across real node processes (#15): the contract's row bounds at the checked
load, a store that stops taking writes mid-job, and one recorded outcome per job everywhere."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time

import pandas as pd
import pytest

from tessera.governance.audit import AuditLog, verify_entries
from tessera.jobs.budget import CRASH_AT_BARRIER_ENV
from tessera.net.identity import Identity
from tests.node.conftest import ORGS, make_cluster
from tests.node.test_e2e import DESCRIBE, LOGREG

pytestmark = pytest.mark.slow

FINAL = ("released", "aborted", "failed", "denied")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = make_cluster(tmp_path_factory.mktemp("lifecycle"), rows=3000)
    try:
        yield c
    finally:
        c.stop_all()


def wait_final(client, job_id: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = client.status(job_id)
        if view["state"] in FINAL:
            return view
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end: {client.status(job_id)['state']}")


def test_a_dataset_below_the_contracts_min_rows_is_refused_with_its_count(cluster):
    """#15.10: the contract says min_rows = 100 for tx_*; gamma's file has 12 rows."""
    path = cluster.cons.data["gamma"]["tx"]
    backup = path.with_suffix(".full")
    shutil.copy(path, backup)
    try:
        pd.read_csv(path).head(12).to_csv(path, index=False)
        analyst = cluster.analyst()
        job = analyst.submit(DESCRIBE)
        wait_final(analyst, job["id"])
        gamma = wait_final(cluster.admin("gamma"), job["id"])
        assert gamma["state"] == "failed"
        assert gamma["reasons"] == ["gamma: DataError: dataset 'tx_gamma' has 12 rows, the contract requires at "
                                    "least 100"]
        for o in ORGS:
            assert wait_final(cluster.admin(o), job["id"])["state"] in ("failed", "aborted")
        with pytest.raises(Exception):
            analyst.result(job["id"])
    finally:
        shutil.move(backup, path)
    assert cluster.analyst().wait(cluster.analyst().submit(DESCRIBE)["id"], timeout=120)["state"] == "released"


def _chattr(flag: str, path) -> None:
    subprocess.run(["chattr", flag, str(path)], check=True, capture_output=True)


def test_a_store_that_stops_taking_writes_mid_job_records_the_outcome_once_it_can(cluster):
    """#15.9: alpha's jobs.db becomes read-only (immutable, which binds root too) while its job
    runs; the watcher keeps the outcome, /health says what is wrong, and once the store is
    writable again the job ends released."""
    db = cluster.nodes["alpha"].dir / "store" / "jobs.db"
    try:
        _chattr("+i", db)
        _chattr("-i", db)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("chattr +i is not available here")
    analyst, alpha = cluster.analyst(), cluster.admin("alpha")
    job = analyst.submit(LOGREG)
    deadline = time.monotonic() + 60
    while alpha.status(job["id"])["state"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _chattr("+i", db)
    try:
        deadline = time.monotonic() + 120
        while not (health := alpha.health())["problems"]:
            assert time.monotonic() < deadline, "the node never said its store refuses writes"
            time.sleep(0.2)
        assert health["status"] == "degraded"
        assert health["problems"] == [f"the node's store cannot be written (OperationalError: attempt to write a "
                                      f"readonly database); the outcome of job {job['id']} will be recorded as soon "
                                      "as it can be"]
        assert alpha.status(job["id"])["state"] == "running"  # reads still work; the outcome waits
        time.sleep(1.5)  # several retries fail meanwhile; the watcher lives on
        log = (cluster.nodes["alpha"].dir / "store" / "node.log").read_text()
        assert log.count("the node's store cannot be written") == 1  # said once, not at every retry
    finally:
        _chattr("-i", db)
    final = wait_final(alpha, job["id"], timeout=60)
    assert final["state"] == "released", final
    assert len(analyst.result(job["id"])["outputs"]["coefficients"]) == 5
    assert alpha.health()["status"] == "ok" and alpha.health()["problems"] == []


DP_DESCRIBE = {"analysis": "dp_describe", "version": "1.0", "datasets": [f"tx_{o}" for o in ORGS],
               "columns": ["amount"], "params": {"columns": ["amount"]}, "dp": {"epsilon": 0.5},
               "protocol": "rep3", "recipients": ["analyst-1"]}


def budgets(cluster) -> dict[str, float]:
    return {o: {b["dataset"]: b for b in cluster.admin(o).budget()}[f"tx_{o}"]["epsilon_left"] for o in ORGS}


def restart_with_hook(cluster, monkeypatch, node: str, hook: str) -> None:
    cluster.kill(node, signal.SIGTERM)
    monkeypatch.setenv(CRASH_AT_BARRIER_ENV, hook)
    try:
        cluster.start(node)
    finally:
        monkeypatch.delenv(CRASH_AT_BARRIER_ENV)


@pytest.mark.parametrize("victim", ["gamma", "alpha"])
def test_a_node_killed_during_the_reveal_converges_on_one_outcome(cluster, monkeypatch, victim):
    """#15.13: ``victim``'s node is killed once every output is revealed, before its party reports
    (a peer; then the coordinator, which the analyst talks to). The others record released; the
    victim, restarted, had the job running, recovers it as aborted and then asks the other parties:
    released everywhere, and the budget is spent at every owner."""
    before = budgets(cluster)
    restart_with_hook(cluster, monkeypatch, victim, f"{victim}:output:node")
    others = [o for o in ORGS if o != victim]
    job_id = cluster.analyst().submit(DP_DESCRIBE)["id"]
    cluster.nodes[victim].proc.wait(120)  # killed by its own party process, after the outputs
    for o in others:
        assert wait_final(cluster.admin(o), job_id)["state"] == "released"
    cluster.start(victim)
    deadline = time.monotonic() + 60
    while (view := cluster.admin(victim).status(job_id))["state"] != "released":
        assert time.monotonic() < deadline, view
        time.sleep(0.2)
    assert any(r.startswith("reconciled: released by the parties' outcomes") and "had recorded aborted" in r
               for r in view["reasons"]), view["reasons"]
    for o in ORGS:
        assert cluster.admin(o).status(job_id)["state"] == "released"
    after = budgets(cluster)
    assert after == {o: pytest.approx(before[o] - 0.5) for o in ORGS}  # spent at every owner
    log = AuditLog(cluster.nodes[victim].dir / "store" / "audit.db", Identity.load(cluster.nodes[victim].dir / "keys",
                                                                                    victim))
    deadline = time.monotonic() + 10
    while not any(e.kind == "outcome_reconciled" and e.body["job_id"] == job_id for e in log.entries()):
        assert time.monotonic() < deadline, [line for line in (cluster.nodes[victim].dir / "store" / "node.log")
                                             .read_text().splitlines() if "reconcil" in line or "rror" in line]
        time.sleep(0.2)
    assert verify_entries(log.entries(), cluster.cons.contract.party(victim).public_key).ok
    assert cluster.analyst().wait(cluster.analyst().submit(DESCRIBE)["id"], timeout=120)["state"] == "released"
