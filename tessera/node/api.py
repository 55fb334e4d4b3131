"""The node's HTTPS API (FastAPI): analysts, the data owner, peer nodes, Prometheus, dashboard.

Routes and JSON shapes are documented in ``docs/node-api.md``. Analysts and the owner present a
bearer token (only its SHA-256 is stored); peers send signed envelopes. Long-polls are
``async`` and do not hold a worker thread, so a slow client does not hold up anyone else.

Request bodies are read by the node itself, not by the framework: after the token is checked
(API routes), within ``body_timeout`` seconds, at most ``max_body_bytes`` of them (a larger
declared ``Content-Length`` is refused with 413 before anything is read, a longer stream as soon
as it passes the limit), then parsed and checked (:func:`tessera.node.service.check_json_body`).
Job ids in paths are checked (after the token) before anything is looked up.

The OpenAPI description (``/openapi.json``, browsable at ``/docs`` and ``/redoc``, their
scripts served by the node itself: no CDN) documents the bodies and answers with the models of
:mod:`tessera.node.schemas`; they describe and do not read, so the reading above is unchanged.
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

import fastapi_offline
from fastapi import Depends, FastAPI, Header, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, Response
from fastapi.responses import JSONResponse as _StarletteJSON
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from tessera.errors import PlanError, TesseraError
from tessera.governance.job import JobSpec
from tessera.node import schemas
from tessera.node.peers import PEER_KINDS
from tessera.node.service import Node, NodeError, check_json_body
from tessera.node.store import FINAL_STATES, JobIdError, check_job_id

__all__ = ["create_app", "Viewer", "BodyLimit", "read_json", "JSONResponse"]

DASHBOARD = Path(__file__).parent / "dashboard"
#: Swagger UI's and ReDoc's scripts, shipped with fastapi-offline (the node serves them itself)
DOCS_STATIC = Path(fastapi_offline.__file__).parent / "static"

#: models documented in the OpenAPI description's components (request bodies and their parts)
_BODY_SCHEMAS: dict[str, Any] = {}


def _body(model: type[BaseModel], description: str, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body of ``model``'s shape that the node reads itself."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    _BODY_SCHEMAS.update(schema.pop("$defs", {}))
    _BODY_SCHEMAS[model.__name__] = schema
    return {"requestBody": {"required": required, "description": description, "content": {
        "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}}}


def _answers(*codes: int, **extra: Any) -> dict[int | str, dict[str, Any]]:
    """The error answers of a route (each ``{"detail": "..."}``), for its OpenAPI description."""
    what = {400: "the body is not JSON", 401: "no token, or one this node does not accept",
            403: "this token may not do this", 404: "no such job here (or not one this token may see)",
            408: "the body did not arrive in time", 409: "the job is not in a state that allows this",
            413: "the body is larger than max_body_bytes",
            422: "a job id, body or parameter that is not valid (the message names it)",
            502: "another node could not be reached or refused", 503: "the node's state cannot be used now"}
    out: dict[int | str, dict[str, Any]] = {c: {"model": schemas.ErrorBody, "description": what[c]} for c in codes}
    for code, model in extra.items():
        out[int(code.lstrip("_"))] = {"model": model}
    return out


_BODY_ERRORS = (400, 408, 413, 422)
_JOB_BODY = _body(JobSpec, "The job (JobSpec): analysis, version, datasets, columns, params, recipients, ...; "
                           "`analyst` may be left out (it must be the token's).")
_REASON_BODY = _body(schemas.ReasonBody, "Optional: why (audited, and shown to the analyst).", required=False)
_ENVELOPE_BODY = _body(schemas.Envelope, "A message signed with the sending node's contract key.")


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


_DESCRIPTION = """One organisation's Tessera node: analysts submit and follow jobs, the data owner decides on
them, peer nodes exchange signed messages. Authenticate with `Authorization: Bearer <token>` (an
analyst's token, or the node's admin token); errors are `{"detail": "<one line naming the
problem>"}`. See docs/node-api.md."""


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI description with the body models and the bearer-token scheme."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    components = schema.setdefault("components", {})
    components.setdefault("schemas", {}).update(_BODY_SCHEMAS)
    components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer",
                                                "description": "an analyst's token or the node's admin token"}}
    schema["security"] = [{"bearer": []}]
    app.openapi_schema = schema
    return schema


async def _reason(request: Request, limit: int, seconds: float) -> str:
    """The optional ``{"reason": "..."}`` body of a reject or cancel (bounded like every body)."""
    if request.headers.get("content-length", "0") == "0" and "transfer-encoding" not in request.headers:
        return ""
    got = await read_json(request, limit, seconds=seconds)
    reason = got.get("reason", "") if isinstance(got, dict) else ""
    if not isinstance(reason, str):
        raise NodeError(422, "the reason is text")
    return reason


def create_app(node: Node) -> FastAPI:
    app = FastAPI(title=f"Tessera node {node.cfg.name}", version="1", docs_url=None, redoc_url=None,
                  description=_DESCRIPTION, default_response_class=JSONResponse)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
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

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon.png")

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - API",
                              redoc_js_url="/docs-static/redoc.standalone.js", redoc_favicon_url="/docs-static/favicon.png",
                              with_google_fonts=False)

    @app.get("/health", summary="The node's status", responses=_answers(_503=schemas.Health, _200=schemas.Health),
             description="Anyone may ask. 503 (with the same shape) when the node is degraded: its `problems` "
                         "name what is wrong.")
    def health() -> JSONResponse:
        out = node.health()
        if out["problems"]:  # 503, with the problems (and "detail" for clients that read it)
            return JSONResponse({**out, "detail": "; ".join(out["problems"])}, status_code=503)
        return JSONResponse(out)

    @app.get("/metrics", summary="Prometheus metrics (text format)")
    def metrics() -> Response:
        return Response(node.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/node", summary="Who this node is", responses=_answers(401, _200=schemas.NodeInfo),
             description="The node's name, role, contract, identity fingerprint, parties and datasets, and who asks.")
    def info(v: Viewer = Depends(viewer)) -> dict[str, Any]:
        return {"name": node.cfg.name, "role": node.me.role, "contract_id": node.contract.contract_id,
                "contract_hash": node.contract.hash, "fingerprint": node.identity.fingerprint,
                "contract_problems": node.contract.problems(),
                "parties": [{"name": p.name, "role": p.role, "api": p.api} for p in node.contract.parties],
                "datasets": node.own_datasets, "approval": node.cfg.approval,
                "viewer": {"kind": v.kind, "id": v.id}}

    @app.post("/v1/jobs", openapi_extra=_JOB_BODY, status_code=201, summary="Submit a job (analysts)",
              responses=_answers(401, 403, 409, *_BODY_ERRORS, 503, _201=schemas.JobView, _200=schemas.JobView),
              description="Records the job and asks every party to decide on it; returns its view (201; 200 for a "
                          "repeated idempotency key). A job that cannot be planned under the contract is 422 with the "
                          "planner's message, and is not recorded.")
    def submit(body: Any = Depends(job_body), v: Viewer = Depends(viewer)) -> JSONResponse:
        if v.admin:
            raise NodeError(403, "jobs are submitted by analysts named in the contract, not with the admin token")
        job, created = node.submit(v.id, body)
        return JSONResponse(job, status_code=201 if created else 200)

    @app.get("/v1/jobs", summary="The jobs this token may see", responses=_answers(401, _200=schemas.JobList),
             description="Newest first. An analyst sees the jobs it submitted or receives; the admin token sees all.")
    def jobs(v: Viewer = Depends(viewer)) -> dict[str, Any]:
        rows = node.store.jobs(None if v.admin else v.id)
        return {"jobs": [node.render(j) for j in rows]}

    @app.get("/v1/jobs/{job_id}", summary="A job's view", responses=_answers(401, 404, 422, _200=schemas.JobView),
             description="Its state, progress, decisions, reasons, plan and what it reveals (never result values).")
    def job(v: Viewer = Depends(viewer), job_id: str = Depends(job_id_of)) -> dict[str, Any]:
        return visible(job_id, v)

    @app.get("/v1/jobs/{job_id}/wait", summary="Wait for a job to change (long-poll)",
             responses=_answers(401, 404, 422, _200=schemas.JobView),
             description="Returns the job's view once its state differs from `since`, or is final, or after "
                         "`timeout` seconds (at most 300).")
    async def wait(v: Viewer = Depends(viewer), job_id: str = Depends(job_id_of), timeout: float = 30.0,
                   since: str | None = None) -> dict[str, Any]:
        deadline = time.monotonic() + max(0.0, min(timeout, 300.0))
        while True:
            job = await run_in_threadpool(visible, job_id, v)
            if job["state"] in FINAL_STATES or (since is not None and job["state"] != since) \
                    or time.monotonic() >= deadline:
                return job
            await asyncio.sleep(0.2)

    @app.get("/v1/jobs/{job_id}/result", summary="A released job's outputs (recipients)",
             responses=_answers(401, 403, 404, 409, 422, _200=schemas.JobResult),
             description="For a recipient only: an analyst named in `recipients`, or this node's owner when this node "
                         "is one. 409 while the job is not released. A job sealed to its analysts answers with every "
                         "party's sealed box instead (SealedResult), which only the analyst's key opens.")
    def result(v: Viewer = Depends(viewer), job_id: str = Depends(job_id_of)) -> dict[str, Any]:
        visible(job_id, v)
        return node.result(job_id, v.id, v.admin)

    @app.post("/v1/jobs/{job_id}/approve", summary="Approve a job waiting for this node's owner (admin)",
              responses=_answers(401, 403, 404, 409, 422, 502, _200=schemas.JobView),
              description="This node accepts the job, and tells the coordinator; the job runs once every party has "
                          "accepted. 502: recorded, but the coordinator could not be told (approve again to re-send).")
    def approve(_: Viewer = Depends(admin_only), job_id: str = Depends(job_id_of)) -> dict[str, Any]:
        return node.approve(job_id, True)

    @app.post("/v1/jobs/{job_id}/reject", openapi_extra=_REASON_BODY, summary="Reject a job (admin)",
              responses=_answers(401, 403, 404, 409, *_BODY_ERRORS, 502, _200=schemas.JobView),
              description="This node denies a job waiting for its owner's approval; the job is denied everywhere, "
                          "with the reason.")
    async def reject(request: Request, _: Viewer = Depends(admin_only),
                     job_id: str = Depends(job_id_of)) -> dict[str, Any]:
        reason = await _reason(request, limit, node.cfg.body_timeout)
        return await run_in_threadpool(node.approve, job_id, False, reason)

    @app.post("/v1/jobs/{job_id}/cancel", openapi_extra=_REASON_BODY, summary="Cancel a job",
              responses=_answers(401, 403, 404, 409, *_BODY_ERRORS, _200=schemas.JobView, _202=schemas.JobView),
              description="The analyst who submitted the job, or this node's owner, at the job's coordinator. A job "
                          "that has not run is withdrawn: `cancelled` here at once (200), then at every party. A "
                          "running job is aborted at every party (202: each node ends its party process and records "
                          "`aborted` with the reason; follow it with /wait); no budget is spent unless an output had "
                          "started to leave. A job that has ended: 409.")
    async def cancel(request: Request, v: Viewer = Depends(viewer), job_id: str = Depends(job_id_of)) -> JSONResponse:
        await run_in_threadpool(visible, job_id, v)
        reason = await _reason(request, limit, node.cfg.body_timeout)
        out = await run_in_threadpool(node.cancel, job_id, v.id, v.admin, reason)
        return JSONResponse(out, status_code=202 if out["state"] == "running" else 200)

    @app.get("/v1/budget", summary="This node's privacy budgets", responses=_answers(401, _200=schemas.Budgets),
             description="Epsilon and delta, total, spent and left, for each of this node's datasets with a budget.")
    def budget(_: Viewer = Depends(viewer)) -> dict[str, Any]:
        return {"datasets": node.budgets()}

    @app.get("/v1/audit", summary="Whether the audit log verifies (admin)",
             responses=_answers(401, 403, _200=schemas.AuditStatus),
             description="A damaged or unreadable entry is named (`first_bad`, `problems`), with 200.")
    def audit(_: Viewer = Depends(admin_only)) -> dict[str, Any]:
        return node.audit_status()

    @app.post("/v1/peer/{kind}", openapi_extra=_ENVELOPE_BODY, summary="A signed message from a peer node",
              responses=_answers(403, 404, 409, *_BODY_ERRORS, 503, _200=schemas.Envelope),
              description="Kinds: " + ", ".join(PEER_KINDS) + ". The reply is an envelope signed by this node "
                          "(`KIND.reply`), addressed to the sender.")
    async def peer(kind: str, request: Request) -> dict[str, Any]:
        # a peer authenticates by the envelope's signature, so the envelope is read first:
        # bounded, and only for a kind of message there is
        if kind not in PEER_KINDS:
            raise NodeError(404, f"no peer message {kind!r}")
        env = await read_json(request, limit, f"the {kind} message", node.cfg.body_timeout)
        return await run_in_threadpool(node.receive, kind, env)

    if DOCS_STATIC.is_dir():
        app.mount("/docs-static", StaticFiles(directory=DOCS_STATIC), name="docs-static")
    if DASHBOARD.is_dir():
        app.mount("/", StaticFiles(directory=DASHBOARD, html=True), name="dashboard")
    return app
