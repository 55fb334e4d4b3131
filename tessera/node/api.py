"""The node's HTTPS API (FastAPI): analysts, the data owner, peer nodes, Prometheus, dashboard.

Routes and JSON shapes are documented in ``docs/node-api.md``. Analysts and the owner present a
bearer token (only its SHA-256 is stored); peers send signed envelopes. Long-polls are
``async`` and do not hold a worker thread, so a slow client does not hold up anyone else.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Body, Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

from tessera.errors import TesseraError
from tessera.node.service import Node, NodeError
from tessera.node.store import FINAL_STATES

__all__ = ["create_app", "Viewer"]

DASHBOARD = Path(__file__).parent / "dashboard"


@dataclass(frozen=True)
class Viewer:
    kind: str  # "admin" or "analyst"
    id: str

    @property
    def admin(self) -> bool:
        return self.kind == "admin"


def create_app(node: Node) -> FastAPI:
    app = FastAPI(title=f"Tessera node {node.cfg.name}", version="1", docs_url=None, redoc_url=None)

    @app.exception_handler(NodeError)
    async def _node_error(_: Request, e: NodeError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=e.status)

    @app.exception_handler(TesseraError)
    async def _tessera_error(_: Request, e: TesseraError) -> JSONResponse:
        return JSONResponse({"detail": f"{type(e).__name__}: {e}"}, status_code=502)

    def viewer(authorization: str | None = Header(None)) -> Viewer:
        if not authorization or not authorization.startswith("Bearer "):
            node.metrics.http_denied.labels(node.cfg.name).inc()
            raise NodeError(401, "an API token is required (Authorization: Bearer ...)")
        token = authorization[len("Bearer "):].strip()
        if node.cfg.is_admin(token):
            return Viewer("admin", node.cfg.name)
        analyst = node.cfg.analyst_for(token)
        if analyst is None:
            node.refresh_tokens()  # a token issued since the node started
            analyst = node.cfg.analyst_for(token)
        if analyst is None or analyst not in {a.id for a in node.contract.analysts}:
            node.metrics.http_denied.labels(node.cfg.name).inc()
            raise NodeError(401, "token not accepted: unknown analyst")
        return Viewer("analyst", analyst)

    def admin_only(v: Viewer = Depends(viewer)) -> Viewer:
        if not v.admin:
            raise NodeError(403, "only this node's owner (admin token) may do this")
        return v

    def visible(job_id: str, v: Viewer) -> dict[str, Any]:
        job = node.view(job_id)
        if not v.admin and job["analyst"] != v.id and v.id not in job["recipients"]:
            raise NodeError(404, f"no job {job_id!r} at node {node.cfg.name}")
        return job

    @app.get("/health")
    def health() -> dict[str, Any]:
        return node.health()

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(node.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/node")
    def info(v: Viewer = Depends(viewer)) -> dict[str, Any]:
        return {"name": node.cfg.name, "role": node.me.role, "contract_id": node.contract.contract_id,
                "contract_hash": node.contract.hash, "fingerprint": node.identity.fingerprint,
                "contract_problems": node.contract.problems(),
                "parties": [{"name": p.name, "role": p.role, "api": p.api} for p in node.contract.parties],
                "datasets": node.own_datasets, "approval": node.cfg.approval,
                "viewer": {"kind": v.kind, "id": v.id}}

    @app.post("/v1/jobs")
    def submit(body: Any = Body(...), v: Viewer = Depends(viewer)) -> JSONResponse:
        if v.admin:
            raise NodeError(403, "jobs are submitted by analysts named in the contract, not with the admin token")
        job, created = node.submit(v.id, body)
        return JSONResponse(job, status_code=201 if created else 200)

    @app.get("/v1/jobs")
    def jobs(v: Viewer = Depends(viewer)) -> dict[str, Any]:
        rows = node.store.jobs(None if v.admin else v.id)
        return {"jobs": [node.render(j) for j in rows]}

    @app.get("/v1/jobs/{job_id}")
    def job(job_id: str, v: Viewer = Depends(viewer)) -> dict[str, Any]:
        return visible(job_id, v)

    @app.get("/v1/jobs/{job_id}/wait")
    async def wait(job_id: str, timeout: float = 30.0, since: str | None = None,
                   v: Viewer = Depends(viewer)) -> dict[str, Any]:
        deadline = time.monotonic() + max(0.0, min(timeout, 300.0))
        while True:
            job = await run_in_threadpool(visible, job_id, v)
            if job["state"] in FINAL_STATES or (since is not None and job["state"] != since) \
                    or time.monotonic() >= deadline:
                return job
            await asyncio.sleep(0.2)

    @app.get("/v1/jobs/{job_id}/result")
    def result(job_id: str, v: Viewer = Depends(viewer)) -> dict[str, Any]:
        visible(job_id, v)
        return node.result(job_id, v.id, v.admin)

    @app.post("/v1/jobs/{job_id}/approve")
    def approve(job_id: str, _: Viewer = Depends(admin_only)) -> dict[str, Any]:
        return node.approve(job_id, True)

    @app.post("/v1/jobs/{job_id}/reject")
    def reject(job_id: str, body: dict[str, Any] | None = Body(None), _: Viewer = Depends(admin_only)) -> dict[str, Any]:
        return node.approve(job_id, False, str((body or {}).get("reason", "")))

    @app.get("/v1/budget")
    def budget(_: Viewer = Depends(viewer)) -> dict[str, Any]:
        return {"datasets": node.budgets()}

    @app.get("/v1/audit")
    def audit(_: Viewer = Depends(admin_only)) -> dict[str, Any]:
        return node.audit_status()

    @app.post("/v1/peer/{kind}")
    def peer(kind: str, body: Any = Body(...)) -> dict[str, Any]:
        return node.receive(kind, body)

    if DASHBOARD.is_dir():
        app.mount("/", StaticFiles(directory=DASHBOARD, html=True), name="dashboard")
    return app
