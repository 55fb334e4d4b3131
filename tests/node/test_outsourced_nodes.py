"""#17 through nodes: hospitals whose contract role is ``owner`` (they only input) and three compute
nodes (role ``compute``, rep3), each its own OS process. A meta-analysis reaches the analyst with
the hospital nodes stopped once their shares are sent (and matches statsmodels); an aborted DP job
gives the hospitals their budget back only on every compute node's signed abort statement.

The compute parties are held or killed at the output barrier with the test-only hook
(:data:`tessera.jobs.budget.CRASH_AT_BARRIER_ENV`) in their node's environment."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from statsmodels.stats.meta_analysis import combine_effects

from tessera.governance.audit import Entry, read_db
from tessera.governance.ledger import SqliteLedger
from tessera.jobs.budget import CRASH_AT_BARRIER_ENV
from tessera.node.example import ANALYST, COMPUTE, build_hospitals, hospital_names
from tessera.node.peers import HTTPError
from tessera.node.store import JobStore
from tests.node.conftest import Cluster, free_block, launch_node, wait_healthy

pytestmark = pytest.mark.slow

HOSPITALS = hospital_names(3)
TRIALS = [f"trial_{h}" for h in HOSPITALS]
META = {"analysis": "meta_analysis", "version": "1.0", "datasets": TRIALS, "columns": ["outcome", "treatment"],
        "protocol": "rep3", "recipients": [ANALYST], "params": {"outcome": "outcome", "treatment": "treatment"}}
DP = {"analysis": "dp_describe", "version": "1.0", "datasets": TRIALS, "columns": ["outcome"], "protocol": "rep3",
      "recipients": [ANALYST], "params": {"columns": ["outcome"]}, "dp": {"epsilon": 0.5}}


def reference(frames: list[pd.DataFrame]) -> Any:
    effs, variances = [], []
    for df in frames:
        t, y = df.treatment.astype(bool), df.outcome
        effs.append(y[t].mean() - y[~t].mean())
        variances.append(y[t].var() / t.sum() + y[~t].var() / (~t).sum())
    return combine_effects(np.array(effs), np.array(variances), method_re="dl")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("hospitals")
    cl = Cluster(build_hospitals(root, hospitals=len(HOSPITALS), base_port=free_block(10 * (len(HOSPITALS) + 3))))
    # c1 holds every job at the output barrier until the gate file exists (the first test opens it)
    cl.start_all(env={"c1": {CRASH_AT_BARRIER_ENV: f"c1:before:wait={root / 'gate'}"}})
    try:
        yield cl
    finally:
        cl.stop_all()


def state_at(cluster: Cluster, node: str, job_id: str) -> str:
    """The job's state at ``node`` ("unknown" before the coordinator's proposal reached it)."""
    try:
        return str(cluster.admin(node).status(job_id)["state"])
    except HTTPError as e:
        if e.status == 404:
            return "unknown"
        raise


def until(what: str, ok: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def audit(cluster: Cluster, node: str) -> list[Entry]:
    entries = read_db(cluster.nodes[node].dir / "store" / "audit.db")
    assert isinstance(entries, list), entries
    return entries


def restart(cluster: Cluster, node: str, env: dict[str, str] | None = None) -> None:
    cluster.kill(node, signal.SIGTERM)
    cluster.start(node, wait=60, env=env)


def test_a_meta_analysis_reaches_the_analyst_with_the_hospitals_offline(cluster: Cluster) -> None:
    analyst = cluster.analyst()
    job_id = analyst.submit(META)["id"]
    # every hospital's part ends once its shares are sent ...
    until("the hospitals' shares", lambda: all(state_at(cluster, h, job_id) == "contributed" for h in HOSPITALS))
    for h in HOSPITALS:
        cluster.kill(h, signal.SIGTERM)  # ... and its node goes offline
    assert state_at(cluster, "c1", job_id) == "running"  # held at the output barrier: no result yet
    (cluster.cons.root / "gate").touch()
    done = analyst.wait(job_id, timeout=120)
    assert done["state"] == "released", done["reasons"]
    assert all(state_at(cluster, c, job_id) == "released" for c in COMPUTE)
    out = analyst.result(job_id)["outputs"]
    ref = reference([pd.read_csv(cluster.cons.data[h]["trial"]) for h in HOSPITALS])
    assert out["studies"] == len(HOSPITALS)
    assert out["random_effect"] == pytest.approx(ref.mean_effect_re, abs=1e-3)
    assert out["random_se"] == pytest.approx(ref.sd_eff_w_re, abs=1e-3)
    assert out["fixed_effect"] == pytest.approx(ref.mean_effect_fe, abs=1e-3)
    assert out["tau2"] == pytest.approx(ref.tau2, rel=1e-3, abs=1e-3)
    for h in HOSPITALS:  # recorded final at the hospital before it stopped; it saw no result
        job = JobStore(cluster.nodes[h].dir / "store" / "jobs.db").get(job_id)
        assert job is not None and job.state.value == "contributed" and job.result is None
        assert job.reasons == [f"{h}: its shares were sent to c1, c2, c3; the result is theirs"]
        ends = [e.body for e in audit(cluster, h) if e.kind == "session_end"]
        assert ends == [{"job_id": job_id, "state": "contributed", "shares_to": list(COMPUTE)}]
    procs = {h: launch_node(cluster.nodes[h].dir) for h in HOSPITALS}  # online again, for the next tests
    for h, proc in procs.items():
        cluster.nodes[h].proc = proc
        wait_healthy(cluster.nodes[h].dir, proc)


def test_a_vertical_regression_of_two_hospitals_that_only_input_matches_statsmodels(cluster: Cluster) -> None:
    """hospital_01's lab values and hospital_02's follow-ups: the two owners run their PSI between
    themselves, send their columns of the common patients to c1-c3 and leave."""
    analyst = cluster.analyst()
    lab, follow = (f"lab_{HOSPITALS[0]}", f"followup_{HOSPITALS[1]}")
    job_id = analyst.submit({"analysis": "linear_regression", "version": "1.0", "datasets": [lab, follow],
                             "columns": ["biomarker_1", "outcome"], "partition": "vertical",
                             "join_key": "patient_id", "protocol": "rep3", "recipients": [ANALYST],
                             "params": {"features": ["biomarker_1"], "target": "outcome"}})["id"]
    done = analyst.wait(job_id, timeout=180)
    assert done["state"] == "released", done["reasons"]
    for h in HOSPITALS[:2]:  # their part ended once their columns were sent; they saw no result
        job = JobStore(cluster.nodes[h].dir / "store" / "jobs.db").get(job_id)
        assert job is not None and job.state.value in ("contributed", "released") and job.result is None
    out = analyst.result(job_id)["outputs"]
    joined = pd.read_csv(cluster.cons.data[HOSPITALS[0]]["lab"]).merge(
        pd.read_csv(cluster.cons.data[HOSPITALS[1]]["followup"]), on="patient_id")
    ols = sm.OLS(joined["outcome"], sm.add_constant(joined[["biomarker_1"]])).fit()
    assert out["n"] == len(joined) == 300
    np.testing.assert_allclose(out["coefficients"], ols.params.to_numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out["std_errors"], ols.bse.to_numpy(), rtol=1e-3)


def settled_by_statements(cluster: Cluster, hospital: str, job_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = []

    def look() -> bool:
        found[:] = [e.body | {"kind": e.kind} for e in audit(cluster, hospital)
                    if e.body.get("job_id") == job_id and e.body.get("by") == "abort_statements"]
        return bool(found)
    until(f"{hospital}'s settlement of {job_id}", look)
    assert len(found) == 1, found
    return found[0]


def remaining(cluster: Cluster, hospital: str) -> float:
    return SqliteLedger(cluster.nodes[hospital].dir / "store" / "ledger.db").remaining(f"trial_{hospital}")[0]


def aborted_dp_job_settles(cluster: Cluster, kind: str, statements: dict[str, str], state: str,
                           charged: float) -> tuple[str, str]:
    """Run the DP job (a compute party's hook makes it abort); every hospital settles it by the
    compute nodes' statements as ``kind``, its ledger row ends ``state`` with ``charged`` spent.
    Returns the job id and its final state."""
    before = {h: remaining(cluster, h) for h in HOSPITALS}
    analyst = cluster.analyst()
    job_id = analyst.submit(DP)["id"]
    done = analyst.wait(job_id, timeout=120)
    assert done["state"] in ("aborted", "failed"), done
    for h in HOSPITALS:
        body = settled_by_statements(cluster, h, job_id)
        assert body == {"kind": kind, "job_id": job_id, "dataset": f"trial_{h}", "by": "abort_statements",
                        "statements": statements}
        assert SqliteLedger(cluster.nodes[h].dir / "store" / "ledger.db").state(job_id) == [(f"trial_{h}", state)]
        assert remaining(cluster, h) == pytest.approx(before[h] - charged)
    return job_id, str(done["state"])


def test_a_compute_party_killed_before_output_gives_every_hospital_its_budget_back(cluster: Cluster) -> None:
    restart(cluster, "c2", {CRASH_AT_BARRIER_ENV: "c2:before"})
    try:
        job_id, outcome = aborted_dp_job_settles(cluster, "budget_released", {c: "valid" for c in COMPUTE},
                                                 "released", charged=0.0)
        for h in HOSPITALS:
            assert state_at(cluster, h, job_id) == outcome  # told the compute parties' outcome
    finally:
        cluster.kill("c2", signal.SIGTERM)  # the next test starts it again with its own hook


def test_a_compute_party_killed_after_others_marked_output_started_leaves_every_hospital_spent(
        cluster: Cluster) -> None:
    """c2 dies between the barrier's rounds: c1 and c3 have marked "output started" (so they sign
    nothing), c2 had not (it signs): statements short, every hospital stays charged."""
    cluster.start("c2", wait=60, env={CRASH_AT_BARRIER_ENV: "c2:unmarked"})
    try:
        aborted_dp_job_settles(cluster, "budget_committed", {"c1": "missing", "c2": "valid", "c3": "missing"},
                               "committed", charged=0.5)
    finally:
        cluster.kill("c2", signal.SIGTERM)  # the last test that runs a job


def test_the_hospital_nodes_are_owners_and_the_others_compute(cluster: Cluster) -> None:
    parties = {p.name: p.role for p in cluster.cons.contract.parties}
    assert parties == {**{c: "compute" for c in COMPUTE}, **{h: "owner" for h in HOSPITALS}}
    assert cluster.admin("hospital_01").node()["role"] == "owner"
