"""#16.4 at the node: an analyst's mistake in a job is a 4xx naming it, never a 500 or a failed job.

A job that cannot be planned under the contract (a misspelled column, an unknown analysis,
parameters its analysis does not take, a categorical target where a boolean is needed) is
refused at submission with 422 and the planner's one line, and is *not recorded*: like a body
that is not a job, it is a request to fix, found the same way at every node, and nothing was
decided or run. A job that can be planned but that the contract does not allow is recorded and
denied by every party, with its reasons (so the owners' audit logs show what was asked).

Against real node processes over TLS on 127.0.0.1 (a submission is what the finding is about);
a peer's own decision on such a job in-process on a real :class:`Node`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tessera.governance.job import JobSpec
from tessera.node.config import NodeConfig
from tessera.node.decisions import decide
from tessera.node.example import ANALYST, FRAUD_FEATURES, ORGS, build_consortium
from tessera.node.peers import HTTPError
from tessera.node.service import Node
from tests.node.conftest import Cluster, free_block, make_cluster

pytestmark = pytest.mark.slow

TX = [f"tx_{o}" for o in ORGS]
LOGREG: dict[str, Any] = {"analysis": "logistic_regression", "version": "1.0", "datasets": TX,
                          "columns": [*FRAUD_FEATURES, "is_fraud"],
                          "params": {"features": FRAUD_FEATURES, "target": "is_fraud", "iterations": 5},
                          "protocol": "rep3", "recipients": [ANALYST]}


def _with(**params: Any) -> dict[str, Any]:
    return {**LOGREG, "params": {**LOGREG["params"], **params}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = make_cluster(tmp_path_factory.mktemp("user-errors"), rows=600)
    try:
        yield c
    finally:
        c.stop_all()


MISTAKES = [
    ("misspelled target", _with(target="is_frud"), ["no column 'is_frud'", "is_fraud"]),
    ("unknown analysis", {**LOGREG, "analysis": "logistic_regresion"},
     ["no analysis named 'logistic_regresion'", "did you mean 'logistic_regression'?"]),
    ("unknown version", {**LOGREG, "version": "7.0"}, ["analysis 'logistic_regression' has no version 7.0"]),
    ("a parameter it does not take", _with(iteration=5),
     ["iteration: not a parameter (did you mean 'iterations'?)", "the parameters are features, target"]),
    ("wrong type", _with(features="amount", iterations="many"),
     ["features: Input should be a valid list", "iterations: Input should be a valid integer"]),
    # a categorical feature is one-hot encoded (tests/analytics/test_categorical.py); a categorical target is not
    ("a categorical target", {**LOGREG, "columns": [*LOGREG["columns"], "channel"],
                              "params": {**LOGREG["params"], "target": "channel"}},
     ["the target 'channel' must be a boolean column"]),
]


@pytest.mark.parametrize(("what", "job", "named"), MISTAKES, ids=[m[0] for m in MISTAKES])
def test_a_mistake_in_a_job_is_a_422_naming_it_and_the_job_is_not_recorded(cluster, what, job, named):
    analyst = cluster.analyst()
    before = {j["id"] for j in analyst.jobs()}
    with pytest.raises(HTTPError) as e:
        analyst.submit(job, idempotency_key=f"mistake-{what}")
    assert e.value.status == 422, e.value
    assert e.value.detail.startswith("the job cannot be planned: "), e.value.detail
    assert "\n" not in e.value.detail and "Traceback" not in e.value.detail
    for part in named:
        assert part in e.value.detail, (part, e.value.detail)
    assert {j["id"] for j in analyst.jobs()} == before  # not recorded, at the node it was sent to
    for name in ORGS:
        assert {j["id"] for j in cluster.admin(name).jobs()} >= before
        assert not [j for j in cluster.admin(name).jobs() if j["idempotency_key"] == f"mistake-{what}"]


def test_a_plannable_job_the_contract_forbids_is_recorded_and_denied(cluster):
    """The line between the two: iterations=40 is a valid parameter (the model allows 50) that
    the contract's maximum of 25 forbids: recorded, denied by every party, with the reason."""
    analyst = cluster.analyst()
    job = analyst.submit(_with(iterations=40))
    final = analyst.wait(job["id"], timeout=120)
    assert final["state"] == "denied"
    assert any("iterations=40 exceeds" in r for r in final["reasons"]), final["reasons"]


def test_no_node_logs_a_traceback_for_the_mistakes(cluster):
    for node in cluster.nodes.values():
        log = (node.dir / "stdout.log").read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


def test_a_peer_that_plans_a_misspelled_column_denies_the_job_naming_it(tmp_path: Path):
    """A peer decides on a job proposed to it by planning it itself: a column its contract does
    not declare is a denial with the planner's reason (it was a KeyError, and the job 'failed')."""
    cons = build_consortium(tmp_path / "c", rows=300, base_port=free_block())
    node = Node(NodeConfig.load(cons.nodes["beta"] / "node.toml"))
    try:
        spec = JobSpec.model_validate({**_with(target="is_frud"), "analyst": ANALYST})
        d = decide(node.ctx, spec, "alpha", "j-typo")
        assert d.state.value == "denied" and d.job is None
        assert any("plan: no column 'is_frud'" in r for r in d.reasons), d.reasons
    finally:
        node.stop()


# --- the analyst's CLI against the same nodes ----------------------------------------------------

def _tessera(*args: str) -> Any:
    from typer.testing import CliRunner

    from tessera.cli.main import app

    return CliRunner().invoke(app, list(args))


def test_job_submit_of_a_mistake_is_one_line_naming_it(cluster, tmp_path: Path):
    import tomli_w

    job = tmp_path / "typo.toml"
    job.write_text(tomli_w.dumps(_with(target="is_frud")))
    res = _tessera("job", "submit", str(job), "--profile", str(cluster.cons.analyst_profile))
    assert res.exit_code == 1 and res.stdout == ""
    assert res.stderr.splitlines() == [
        "error: HTTP 422: the job cannot be planned: no column 'is_frud'; columns are "
        "['amount', 'merchant_risk', 'hour', 'account_age_days', 'is_fraud', 'channel']"]
    job.write_text("analysis = [\n")
    res = _tessera("job", "submit", str(job), "--profile", str(cluster.cons.analyst_profile))
    assert res.exit_code == 1 and len(res.stderr.splitlines()) == 1 and "cannot read the job" in res.stderr


def test_job_status_is_a_readable_summary_and_list_has_a_header(cluster):
    import json

    profile = str(cluster.cons.analyst_profile)
    analyst = cluster.analyst()
    job_id = analyst.submit(_with(iterations=30))["id"]
    assert analyst.wait(job_id, timeout=120)["state"] == "denied"
    res = _tessera("job", "status", job_id, "--profile", profile)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert len(lines) < 20 and not res.stdout.lstrip().startswith("{")
    assert lines[0] == f"job        {job_id}"
    assert lines[1] == "analysis   logistic_regression v1.0 (horizontal, rep3)"
    assert lines[4].startswith("state      denied")
    assert any(line.startswith("decisions  alpha: denied") for line in lines), lines
    assert any(line.startswith("reason     ") and "iterations=30 exceeds" in line for line in lines), lines
    full = json.loads(_tessera("job", "status", job_id, "--json", "--profile", profile).stdout)
    assert full["id"] == job_id and full["state"] == "denied" and "events" in full
    listing = _tessera("job", "list", "--profile", profile)
    assert listing.exit_code == 0, listing.output
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["ID", "STATE", "ANALYSIS", "ANALYST", "UPDATED", "DETAIL"]
    mine = [r for r in rows if r.startswith(job_id)]
    assert len(mine) == 1 and mine[0].split()[1:4] == ["denied", "logistic_regression", "v1.0"]
    assert len(rows) == len(analyst.jobs())
    missing = _tessera("job", "status", "0" * 16, "--profile", profile)
    assert missing.exit_code == 1 and missing.stderr.splitlines() == [
        f"error: HTTP 404: no job {'0' * 16!r} at node alpha"]


def test_the_api_maps_a_plan_error_to_422_not_502(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Whatever handler a PlanError escapes from, the caller gets 422 and its one line (502 is
    for a peer that failed, which a job that cannot be planned is not)."""
    from fastapi.testclient import TestClient

    from tessera.errors import UnknownColumn
    from tessera.node.api import create_app
    from tessera.node.setup import read_profile

    cons = build_consortium(tmp_path / "c", rows=300, base_port=free_block())
    node = Node(NodeConfig.load(cons.nodes["alpha"] / "node.toml"))
    try:
        def submit(analyst: str, body: Any) -> Any:
            raise UnknownColumn("no column 'is_frud'; columns are ['is_fraud']")

        monkeypatch.setattr(node, "submit", submit)
        token = read_profile(cons.analyst_profile)["token"]
        with TestClient(create_app(node)) as api:
            r = api.post("/v1/jobs", json={"analysis": "describe"}, headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 422
        assert r.json() == {"detail": "no column 'is_frud'; columns are ['is_fraud']"}
    finally:
        node.stop()
