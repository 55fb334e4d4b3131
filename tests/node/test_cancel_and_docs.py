"""#16.7 at one node, in-process (FastAPI's TestClient on a real :class:`Node` of a consortium
built on disk; its peers are not running): ``job cancel``, the typed OpenAPI description with
``/docs`` and ``/redoc`` served without a CDN, the views matching it, and the fraction of a job
that ends without a release. A running job cancelled across real nodes: tests/node/test_e2e.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tessera.governance.job import JobSpec
from tessera.node import schemas
from tessera.node.api import create_app
from tessera.node.config import NodeConfig
from tessera.node.example import ANALYST, Consortium, build_consortium
from tessera.node.service import Node
from tessera.node.setup import read_profile
from tessera.node.states import JobState
from tests.node.conftest import free_block

TX = ["tx_alpha", "tx_beta", "tx_gamma"]
DESCRIBE = {"analysis": "describe", "version": "1.0", "datasets": TX, "columns": ["amount"],
            "params": {"columns": ["amount"]}, "protocol": "rep3", "recipients": [ANALYST]}


@pytest.fixture(scope="module")
def cons(tmp_path_factory: pytest.TempPathFactory) -> Consortium:
    return build_consortium(tmp_path_factory.mktemp("cancel"), rows=300, base_port=free_block())


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


def headers(cons: Consortium) -> tuple[dict[str, str], dict[str, str]]:
    admin = read_profile(cons.nodes["alpha"] / "admin.toml")["token"]
    analyst = read_profile(cons.analyst_profile)["token"]
    return {"Authorization": f"Bearer {admin}"}, {"Authorization": f"Bearer {analyst}"}


def job_in(node: Node, job_id: str, *states: JobState, coordinator: str = "alpha", **spec: Any) -> str:
    """A job coordinated by ``coordinator``, moved through ``states`` (planned at alpha, as its
    decision would, when it is to run)."""
    s = JobSpec.model_validate({**DESCRIBE, "analyst": ANALYST, **spec})
    node.store.create(job_id, s.model_dump(mode="json"), s.hash, coordinator, ["alpha", "beta", "gamma"])
    if JobState.ACCEPTED in states:
        node.coordinator.record_decision(job_id, s, coordinator)
    for st in states:
        assert node.store.transition(job_id, st), (job_id, st)
    return job_id


def test_a_pending_job_is_withdrawn_with_its_reason_and_a_second_cancel_is_409(cons: Consortium,
                                                                               node: Node) -> None:
    api = TestClient(create_app(node))
    admin, analyst = headers(cons)
    job_id = job_in(node, "00000000000000d1", JobState.PENDING)
    r = api.post(f"/v1/jobs/{job_id}/cancel", json={"reason": "wrong columns"}, headers=analyst)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["state"] == "cancelled"
    assert view["reasons"] == [f"alpha: cancelled by analyst {ANALYST}: wrong columns"]
    assert view["progress"]["fraction"] == 0.1  # it stopped where it was: no "100%" for a job that did not run
    assert view["events"][-1]["state"] == "cancelled"
    cancelled = [e for e in node.audit.entries() if e.kind == "job_cancelled"]
    assert [e.body for e in cancelled] == [{"job_id": job_id, "reasons": view["reasons"]}]
    again = api.post(f"/v1/jobs/{job_id}/cancel", headers=analyst)
    assert again.status_code == 409
    assert again.json()["detail"] == (f"job {job_id} has already ended (cancelled): only a job that has not ended "
                                      "can be cancelled")
    # the owner may cancel too; a job that ended otherwise is 409 as well
    other = job_in(node, "00000000000000d2", JobState.AWAITING_APPROVAL)
    r = api.post(f"/v1/jobs/{other}/cancel", headers=admin)
    assert r.status_code == 200 and r.json()["reasons"] == ["alpha: cancelled by the owner of alpha"]
    done = job_in(node, "00000000000000d3", JobState.ACCEPTED, JobState.RUNNING, JobState.RELEASED)
    r = api.post(f"/v1/jobs/{done}/cancel", headers=admin)
    assert r.status_code == 409 and "has already ended (released)" in r.json()["detail"]


def test_cancel_mistakes_are_4xx_naming_the_problem(cons: Consortium, node: Node) -> None:
    api = TestClient(create_app(node))
    admin, analyst = headers(cons)
    at_beta = job_in(node, "00000000000000e1", JobState.PENDING, coordinator="beta")
    r = api.post(f"/v1/jobs/{at_beta}/cancel", headers=admin)
    assert r.status_code == 409
    assert r.json()["detail"] == f"job {at_beta} is coordinated by node beta: cancel it there"
    theirs = job_in(node, "00000000000000e2", JobState.PENDING, analyst="analyst-2")
    r = api.post(f"/v1/jobs/{theirs}/cancel", headers=analyst)  # analyst-1 receives it, did not submit it
    assert r.status_code == 403
    assert r.json()["detail"] == (f"only the analyst who submitted job {theirs} (analyst-2) or the owner of node "
                                  "alpha may cancel it")
    assert api.post("/v1/jobs/00000000000000ff/cancel", headers=analyst).status_code == 404
    assert api.post("/v1/jobs/not-a-job/cancel", headers=analyst).status_code == 422
    mine = job_in(node, "00000000000000e3", JobState.PENDING)
    r = api.post(f"/v1/jobs/{mine}/cancel", json={"reason": 7}, headers=analyst)
    assert r.status_code == 422 and r.json()["detail"] == "the reason is text"
    r = api.post(f"/v1/jobs/{mine}/cancel", json={"reason": "x" * 1001}, headers=analyst)
    assert r.status_code == 422 and "at most 1000 characters" in r.json()["detail"]
    assert api.post(f"/v1/jobs/{mine}/cancel").status_code == 401
    assert node.view(mine)["state"] == "pending"  # none of these touched it


def test_a_running_job_cancelled_ends_its_party_process_and_is_recorded_aborted(cons: Consortium,
                                                                                node: Node) -> None:
    api = TestClient(create_app(node))
    _, analyst = headers(cons)
    job_id = job_in(node, "00000000000000f1", JobState.ACCEPTED, JobState.RUNNING)
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    node.runner.procs[job_id] = proc  # the party process its runner started
    try:
        r = api.post(f"/v1/jobs/{job_id}/cancel", json={"reason": "too slow"}, headers=analyst)
        assert r.status_code == 202, r.text  # accepted: each party ends its process
        assert r.json()["progress"]["detail"] == f"stopping: cancelled by analyst {ANALYST}: too slow"
        assert proc.wait(30) == -15  # SIGTERM
    finally:
        proc.kill()
    job = node.store.get(job_id)
    assert job is not None
    node.runner.settle(job, proc.returncode, None)  # what its watcher does once the process ended
    node.runner.procs.pop(job_id)  # (and then forgets it)
    view = node.view(job_id)
    assert view["state"] == "aborted"
    assert view["reasons"] == [f"alpha: cancelled by analyst {ANALYST}: too slow"]
    assert view["progress"]["fraction"] == 0.5  # where it was, not 1.0
    aborted = [e.body for e in node.audit.entries() if e.kind == "job_aborted"]
    assert aborted == [{"job_id": job_id, "state": "aborted", "reasons": view["reasons"]}]


def test_docs_and_redoc_are_served_without_a_cdn(node: Node) -> None:
    api = TestClient(create_app(node))
    for path, script in (("/docs", "/docs-static/swagger-ui-bundle.js"), ("/redoc", "/docs-static/redoc.standalone.js")):
        r = api.get(path)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert script in r.text and "cdn.jsdelivr" not in r.text and "fonts.googleapis" not in r.text
        js = api.get(script)
        assert js.status_code == 200 and len(js.content) > 100_000


def test_the_openapi_description_types_the_bodies_and_answers(node: Node) -> None:
    api = TestClient(create_app(node))
    spec = api.get("/openapi.json").json()
    comps = spec["components"]["schemas"]
    paths = spec["paths"]
    body = paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/JobSpec"}
    assert set(comps["JobSpec"]["required"]) >= {"analysis", "version", "datasets", "columns", "recipients"}
    assert comps["JobSpec"]["properties"]["dp"]["anyOf"][0] == {"$ref": "#/components/schemas/DPRequest"}
    assert "DPRequest" in comps

    def answer(path: str, method: str, code: str) -> str:
        return paths[path][method]["responses"][code]["content"]["application/json"]["schema"]["$ref"]

    assert answer("/v1/jobs/{job_id}", "get", "200") == "#/components/schemas/JobView"
    assert answer("/v1/jobs", "get", "200") == "#/components/schemas/JobList"
    assert answer("/v1/jobs/{job_id}/result", "get", "409") == "#/components/schemas/ErrorBody"
    assert answer("/v1/jobs/{job_id}/cancel", "post", "202") == "#/components/schemas/JobView"
    cancel_body = paths["/v1/jobs/{job_id}/cancel"]["post"]["requestBody"]
    assert cancel_body["required"] is False
    assert cancel_body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReasonBody"}
    assert "cancelled" in comps["JobView"]["properties"]["state"]["description"]
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for path, ops in paths.items():
        for method, op in ops.items():
            assert op.get("summary") and op.get("summary") != op.get("operationId"), (method, path)
            if path.startswith("/v1/"):
                assert op.get("description"), (method, path)


def test_the_views_the_node_sends_match_the_documented_models(cons: Consortium, node: Node) -> None:
    """The models describe what is sent: every view of jobs in each state validates."""
    api = TestClient(create_app(node))
    admin, analyst = headers(cons)
    job_in(node, "00000000000000a1", JobState.PENDING)
    job_in(node, "00000000000000a2", JobState.DENIED)
    job_in(node, "00000000000000a3", JobState.ACCEPTED, JobState.RUNNING, JobState.RELEASED)
    jobs = api.get("/v1/jobs", headers=admin).json()
    schemas.JobList.model_validate(jobs)
    assert {j["state"] for j in jobs["jobs"]} == {"pending", "denied", "released"}
    for j in jobs["jobs"]:
        schemas.JobView.model_validate(api.get(f"/v1/jobs/{j['id']}", headers=analyst).json())
    schemas.NodeInfo.model_validate(api.get("/v1/node", headers=admin).json())
    schemas.Budgets.model_validate(api.get("/v1/budget", headers=admin).json())
    schemas.AuditStatus.model_validate(api.get("/v1/audit", headers=admin).json())
    schemas.Health.model_validate(api.get("/health").json())
