"""The node's HTTPS API (FastAPI): analysts, the data owner, peer nodes, Prometheus, dashboard.

Routes and JSON shapes are documented in ``docs/node-api.md``. Analysts and the owner present a
bearer token (only its SHA-256 is stored); peers send signed envelopes. Long-polls are
``async`` and do not hold a worker thread, so a slow client does not hold up anyone else.

Request bodies are read by the node itself, not by the framework: after the token is checked
(API routes), within ``body_timeout`` seconds, at most ``max_body_bytes`` of them (a larger
declared ``Content-Length`` is refused with 413 before anything is read, a longer stream as soon
as it passes the limit), then parsed and checked (:func:`tessera.node.service.check_json_body`).
Job ids in paths are checked (after the token) before anything is looked up.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.responses import JSONResponse as _StarletteJSON
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.errors import PlanError, TesseraError
from tessera.node.peers import PEER_KINDS
from tessera.node.service import Node, NodeError, check_json_body
from tessera.node.store import FINAL_STATES, JobIdError, check_job_id

__all__ = ["create_app", "Viewer", "BodyLimit", "read_json", "JSONResponse"]

DASHBOARD = Path(__file__).parent / "dashboard"
#: the OpenAPI description of a JSON object body the node reads itself (for clients and fuzzers)
_OBJECT_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"type": "object"}}}}}


@dataclass(frozen=True)
class Viewer:
    kind: str  # "admin" or "analyst"
    id: str

    @property
    def admin(self) -> bool:
        return self.kind == "admin"


class JSONResponse(_StarletteJSON):
    """JSON with every non-ASCII character escaped: whatever a store holds (even a lone
    surrogate written before such strings were refused) can always be sent."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


def _too_large(limit: int) -> str:
    return f"the request body exceeds this node's limit of {limit} bytes (max_body_bytes)"


class BodyLimit:
    """ASGI middleware: a request declaring a body longer than ``limit`` bytes gets 413 before
    any of it is read (streamed bodies are bounded where they are read, :func:`read_json`)."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
            if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
                status = 413 if declared.isdigit() else 400
                detail = _too_large(self.limit) if status == 413 else "the Content-Length header is not a number"
                await JSONResponse({"detail": detail}, status_code=status, headers={"Connection": "close"})(
                    scope, receive, send)
                return
        await self.app(scope, receive, send)


async def read_json(request: Request, limit: int, what: str = "the request body", seconds: float = 30.0) -> Any:
    """The request's JSON body, read to at most ``limit`` bytes (413 beyond) within ``seconds``
    (408 if slower), parsed (400 if it is not JSON) and checked (422: too deeply nested, or not
    valid Unicode text)."""
    chunks: list[bytes] = []
    try:
        async with asyncio.timeout(seconds):
            size = 0
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise NodeError(413, _too_large(limit))
                chunks.append(chunk)
    except TimeoutError:
        raise NodeError(408, f"{what} did not arrive within {seconds:g} s (body_timeout)") from None
    raw = b"".join(chunks)
    if not raw:
        raise NodeError(400, f"{what} is missing (a JSON document is expected)")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise NodeError(422, f"{what} is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, or bytes that are not UTF-8
        raise NodeError(400, f"{what} is not JSON: {e}") from None
    check_json_body(value, what)
    return value


def create_app(node: Node) -> FastAPI:
    app = FastAPI(title=f"Tessera node {node.cfg.name}", version="1", docs_url=None, redoc_url=None,
                  default_response_class=JSONResponse)
    limit = node.cfg.max_body_bytes
    app.add_middleware(BodyLimit, limit=limit)

    @app.exception_handler(NodeError)
    async def _node_error(_: Request, e: NodeError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=e.status)

    @app.exception_handler(JobIdError)
    async def _job_id_error(_: Request, e: JobIdError) -> JSONResponse:
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(PlanError)
    async def _plan_error(_: Request, e: PlanError) -> JSONResponse:
        # a job or request that cannot be planned is the caller's to fix: 422 with the one line
        return JSONResponse({"detail": str(e)}, status_code=422)

    @app.exception_handler(TesseraError)
    async def _tessera_error(_: Request, e: TesseraError) -> JSONResponse:
        return JSONResponse({"detail": f"{type(e).__name__}: {e}"}, status_code=502)

    @app.exception_handler(sqlite3.DatabaseError)
    async def _store_error(_: Request, e: sqlite3.DatabaseError) -> JSONResponse:
        # a damaged state file: say so (and /health names the file), never a bare 500
        node.ctx.log(logging.ERROR, f"a state file of the node cannot be used: {e}")
        return JSONResponse({"detail": f"the node's state cannot be read or written ({e}); "
                                       "its owner must repair it (see /health)"}, status_code=503)

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

    async def job_body(request: Request, _: Viewer = Depends(viewer)) -> Any:
        """The job in the body of an authenticated request (the token is checked first)."""
        return await read_json(request, limit, "the job", node.cfg.body_timeout)

    def job_id_of(job_id: str) -> str:
        """A job id from the path, checked (after the token) before anything is looked up or
        built from it."""
        return check_job_id(job_id)

    def visible(job_id: str, v: Viewer) -> dict[str, Any]:
        job = node.view(job_id)
        if not v.admin and job["analyst"] != v.id and v.id not in job["recipients"]:
            raise NodeError(404, f"no job {job_id!r} at node {node.cfg.name}")
        return job

    @app.get("/health")
    def health() -> JSONResponse:
        out = node.health()
        if out["problems"]:  # 503, with the problems (and "detail" for clients that read it)
            return JSONResponse({**out, "detail": "; ".join(out["problems"])}, status_code=503)
        return JSONResponse(out)

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

    @app.post("/v1/jobs", openapi_extra=_OBJECT_BODY)
    def submit(body: Any = Depends(job_body), v: Viewer = Depends(viewer)) -> JSONResponse:
        if v.admin:
            raise NodeError(403, "jobs are submitted by analysts named in the contract, not with the admin token")
        job, created = node.submit(v.id, body)
        return JSONResponse(job, status_code=201 if created else 200)

    @app.get("/v1/jobs")
    def jobs(v: Viewer = Depends(viewer)) -> dict[str, Any]:
        rows = node.store.jobs(None if v.admin else v.id)
        return {"jobs": [node.render(j) for j in rows]}

    @app.get("/v1/jobs/{job_id}")
    def job(v: Viewer = Depends(viewer), job_id: str = Depends(job_id_of)) -> dict[str, Any]:
        return visible(job_id, v)

    @app.get("/v1/jobs/{job_id}/wait")
    async def wait(v: Viewer = Depends(viewer), job_id: str = Depends(job_id_of), timeout: float = 30.0,
                   since: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + max(0.0, min(timeout, 300.0))
        while True:
            job = await run_in_threadpool(visible, job_id, v)
            if job["state"] in FINAL_STATES or (since is not None and job["state"] != since) \
                    or time.monotonic() >= deadline:
                return job
            await asyncio.sleep(0.2)

    @app.get("/v1/jobs/{job_id}/result")
    def result(v: Viewer = Depends(viewer), job_id: str = Depends(job_id_of)) -> dict[str, Any]:
        visible(job_id, v)
        return node.result(job_id, v.id, v.admin)

    @app.post("/v1/jobs/{job_id}/approve")
    def approve(_: Viewer = Depends(admin_only), job_id: str = Depends(job_id_of)) -> dict[str, Any]:
        return node.approve(job_id, True)

    @app.post("/v1/jobs/{job_id}/reject", openapi_extra={"requestBody": {**_OBJECT_BODY["requestBody"],
                                                                           "required": False}})
    async def reject(request: Request, _: Viewer = Depends(admin_only),
                     job_id: str = Depends(job_id_of)) -> dict[str, Any]:
        reason = ""
        if request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers:
            got = await read_json(request, limit, seconds=node.cfg.body_timeout)
            reason = str(got.get("reason", "")) if isinstance(got, dict) else ""
        return await run_in_threadpool(node.approve, job_id, False, reason)

    @app.get("/v1/budget")
    def budget(_: Viewer = Depends(viewer)) -> dict[str, Any]:
        return {"datasets": node.budgets()}

    @app.get("/v1/audit")
    def audit(_: Viewer = Depends(admin_only)) -> dict[str, Any]:
        return node.audit_status()

    @app.post("/v1/peer/{kind}", openapi_extra=_OBJECT_BODY)
    async def peer(kind: str, request: Request) -> dict[str, Any]:
        # a peer authenticates by the envelope's signature, so the envelope is read first:
        # bounded, and only for a kind of message there is
        if kind not in PEER_KINDS:
            raise NodeError(404, f"no peer message {kind!r}")
        env = await read_json(request, limit, f"the {kind} message", node.cfg.body_timeout)
        return await run_in_threadpool(node.receive, kind, env)

    if DASHBOARD.is_dir():
        app.mount("/", StaticFiles(directory=DASHBOARD, html=True), name="dashboard")
    return app
