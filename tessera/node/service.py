"""The node: takes jobs from analysts, agrees on them with the other nodes, runs its party of
each job in its own process, and keeps the store, the ledger and the audit log.

Lifecycle of a job (every step persisted in the store, with a timestamped event):

1. An analyst submits it to the node of one of its data owners, the *coordinator*
   (``submitted``). The same idempotency key returns the same job; it runs once.
2. The coordinator decides for itself (contract + policy + plan) and sends a signed *propose*
   to every other party of the job, which decides on its own and answers *accepted*, *denied*
   (with every reason) or *awaiting_approval* (its owner approves by hand: ``tessera job
   approve|reject``, after which it sends its *decision*). The coordinator's job is ``pending``
   until every decision is in.
3. Any denial: the job is ``denied`` everywhere, with the reasons. All accepted: the coordinator
   asks every party for a port (*prepare*), draws a fresh nonce, and sends *start*; every node
   derives the session id from the contract hash, the job hash and the nonce itself.
4. Each node runs its party (or the dealer) as a separate process over mutual TLS and records
   its own outcome: ``released`` (outputs delivered to the recipients only), ``aborted`` (a
   party or the network failed: nothing more is revealed, reserved budget goes back unless an
   output share had left) or ``failed`` (this node's own error); it reports the outcome to the
   coordinator.

A node that restarts marks the jobs it was running as ``aborted``, settles their budget
reservations and resumes coordinating the jobs it had not started.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
from pydantic import ValidationError

from tessera.errors import PeerAuthError, TesseraError, TransportError
from tessera.governance.audit import AuditLog, verify_entries
from tessera.governance.contract import Contract
from tessera.governance.job import JobSpec
from tessera.governance.ledger import SqliteLedger, pid_alive, process_owner
from tessera.governance.policy import NodeState, check
from tessera.net.identity import Identity
from tessera.node.config import ConfigError, NodeConfig
from tessera.node.jobs import JobPlan, job_id_for, new_nonce, plan_job, session_id_for
from tessera.node.logs import log
from tessera.node.metrics import NodeMetrics
from tessera.node.peers import PinnedHTTPS, ReplayGuard, seal, unseal
from tessera.node.store import FINAL_STATES, STATES, JobStore, view
from tessera.runtime import jsonable
from tessera.runtime.config import EndpointSpec, PartyConfig

__all__ = ["Node", "NodeError"]

_ABORT_ERRORS = {"ProtocolAbort", "TransportError", "PeerAuthError", "FrameError"}


class NodeError(TesseraError):
    """A request the node refuses; ``status`` is the HTTP status the API answers with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class Node:
    """One organisation's node (see the module docstring for the job lifecycle)."""

    def __init__(self, cfg: NodeConfig, logger: logging.Logger | None = None) -> None:
        self.cfg = cfg
        self.log = logger or logging.getLogger("tessera.node")
        self.contract = Contract.load(cfg.path(cfg.contract))
        self.me = self.contract.party(cfg.name)
        self.identity = Identity.load(cfg.path(cfg.identity_dir), cfg.name)
        if self.identity.public_key != self.me.public_key:
            raise ConfigError(f"the key in {cfg.identity_dir} is not {cfg.name!r}'s key in the contract")
        unknown = [a for a in cfg.analysts if a not in {x.id for x in self.contract.analysts}]
        if unknown:
            self._log(logging.WARNING, f"analysts {unknown} have tokens here but are not in the contract")
        self.dir = cfg.store_dir
        (self.dir / "jobs").mkdir(parents=True, exist_ok=True)
        self.store = JobStore(self.dir / "jobs.db")
        self.ledger_path = self.dir / "ledger.db"
        self.ledger = SqliteLedger(self.ledger_path, owner=process_owner())
        self.own_datasets = [d.name for d in self.contract.datasets if d.owner == cfg.name]
        for d in self.own_datasets:
            b = self.contract.budget(d)
            if b is not None:
                self.ledger.set_budget(d, b.epsilon, b.delta)
        self.audit = AuditLog(self.dir / "audit.db", self.identity)
        if not any(e.kind == "contract_adopted" and e.body.get("hash") == self.contract.hash
                   for e in self.audit.entries()):
            self.audit.append("contract_adopted", {"contract_id": self.contract.contract_id,
                                                   "hash": self.contract.hash})
        self.guard = ReplayGuard()
        self.metrics = NodeMetrics(cfg.name, self.store.counts, self._budget_left, STATES)
        self.tasks = ThreadPoolExecutor(16, thread_name_prefix=f"tessera-{cfg.name}")
        self.slots = threading.BoundedSemaphore(cfg.max_running_jobs)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()
        try:
            self._config_mtime: int | None = cfg.file.stat().st_mtime_ns if cfg.file else None
        except OSError:
            self._config_mtime = None
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._sweeper: threading.Thread | None = None

    # -- helpers -------------------------------------------------------------------------------

    def _log(self, level: int, msg: str, **fields: Any) -> None:
        log(self.log, level, msg, node=self.cfg.name, **fields)

    def refresh_tokens(self) -> None:
        """Pick up analyst tokens added to ``node.toml`` since the node started (``tessera node
        add-analyst``), without a restart. Other settings take effect at the next start."""
        path = self.cfg.file
        if path is None:
            return
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return
        if mtime == self._config_mtime:
            return
        self._config_mtime = mtime
        try:
            fresh = NodeConfig.load(path)
        except ConfigError as e:
            self._log(logging.WARNING, f"node.toml changed but cannot be read: {e}")
            return
        if fresh.name == self.cfg.name:
            self.cfg.analysts = dict(fresh.analysts)

    def _budget_left(self) -> dict[str, float]:
        return {d: self.ledger.remaining(d)[0] for d in self.own_datasets if self.contract.budget(d)}

    def _client(self, party: str) -> PinnedHTTPS:
        spec = self.contract.party(party)
        if not spec.api or not spec.api_fingerprint:
            raise TransportError(f"the contract gives no API address for {party!r}")
        return PinnedHTTPS(spec.api, spec.api_fingerprint, timeout=self.cfg.peer_timeout)

    def send(self, party: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a signed message to ``party``'s node and check its signed reply."""
        env = seal(self.identity, kind, body, self.contract.hash)
        reply = self._client(party).request("POST", f"/v1/peer/{kind}", env)
        sender, answer = unseal(self.contract, reply, kind + ".reply")
        if sender != party:
            raise PeerAuthError(f"the reply to a message for {party!r} was signed by {sender!r}")
        return answer

    def receive(self, kind: str, env: Any) -> dict[str, Any]:
        """Handle a signed message from a peer; returns the signed reply."""
        handlers = {"propose": self._on_propose, "decision": self._on_decision, "prepare": self._on_prepare,
                    "start": self._on_start, "outcome": self._on_outcome}
        if kind not in handlers:
            raise NodeError(404, f"no peer message {kind!r}")
        try:
            sender, body = unseal(self.contract, env, kind, self.guard)
        except PeerAuthError as e:
            self.metrics.peer_messages.labels(self.cfg.name, kind, "refused").inc()
            self._log(logging.WARNING, f"refused a {kind} message: {e}", kind=kind)
            raise NodeError(403, str(e)) from None
        self.metrics.peer_messages.labels(self.cfg.name, kind, "accepted").inc()
        answer = handlers[kind](sender, body)
        return seal(self.identity, kind + ".reply", answer, self.contract.hash)

    def _job(self, job_id: str) -> dict[str, Any]:
        job = self.store.get(job_id)
        if job is None:
            raise NodeError(404, f"no job {job_id!r} at node {self.cfg.name}")
        return job

    def _decide(self, spec: JobSpec, coordinator: str) -> tuple[str, list[str], JobPlan | None]:
        """This node's decision: ('accepted' | 'denied' | 'awaiting_approval', reasons, plan)."""
        rows = self._rows(spec)
        decision = check(self.contract, spec, NodeState(self.cfg.name, rows, lambda d: self.ledger.remaining(d)[0]))
        reasons = list(decision.reasons)
        plan = None
        try:
            plan = plan_job(self.contract, spec, coordinator)
        except (TesseraError, ValueError) as e:
            reasons.append(f"plan: {e}")
        if plan is not None and self.cfg.name not in plan.parties:
            reasons.append(f"node {self.cfg.name!r} has no part in this job")
        if plan is not None and self.cfg.name in plan.data_parties:
            ds = plan.dataset_of[self.cfg.name]
            if ds not in self.cfg.datasets:
                reasons.append(f"dataset {ds!r} has no data source configured at {self.cfg.name}")
        if reasons:
            return "denied", reasons, plan
        if self.cfg.approval == "manual":
            return "awaiting_approval", [], plan
        return "accepted", [], plan

    def _rows(self, spec: JobSpec) -> dict[str, int]:
        rows: dict[str, int] = {}
        for d in spec.datasets:
            if d in self.cfg.datasets and d in self.own_datasets:
                try:
                    rows[d] = self._count_rows(d)
                except Exception:
                    pass
        return rows

    def _count_rows(self, dataset: str) -> int:
        src = self.cfg.datasets[dataset]
        con = duckdb.connect()
        try:
            if src.path is not None:
                path = str(self.cfg.path(src.path)).replace("'", "''")
                return int(con.execute(f"SELECT count(*) FROM '{path}'").fetchone()[0])  # type: ignore[index]
            self._register_tables(con, src.tables)
            return int(con.execute(f"SELECT count(*) FROM ({src.sql})").fetchone()[0])  # type: ignore[index]
        finally:
            con.close()

    def _register_tables(self, con: duckdb.DuckDBPyConnection, tables: dict[str, str]) -> None:
        for name, p in tables.items():
            if not name.isidentifier():
                raise ConfigError(f"table name {name!r} in a SQL source is not an identifier")
            path = str(self.cfg.path(p)).replace("'", "''")
            con.execute(f'CREATE VIEW "{name}" AS SELECT * FROM \'{path}\'')

    # -- analysts ------------------------------------------------------------------------------

    def submit(self, analyst: str, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Accept a job from ``analyst``; returns (job view, created)."""
        if self.stopping.is_set():
            raise NodeError(503, "the node is shutting down")
        if not isinstance(body, dict):
            raise NodeError(422, "a job is a JSON object")
        if body.get("analyst", analyst) != analyst:
            raise NodeError(403, f"this token belongs to analyst {analyst!r}, not {body.get('analyst')!r}")
        try:
            spec = JobSpec.model_validate({**body, "analyst": analyst})
        except ValidationError as e:
            err = e.errors()[0]
            raise NodeError(422, f"invalid job: {err['msg']} at {'.'.join(str(x) for x in err['loc'])}") from None
        job_id = job_id_for(analyst, spec.idempotency_key)
        idem = f"{analyst}|{spec.idempotency_key}" if spec.idempotency_key else None
        try:
            parties = plan_job(self.contract, spec, self.cfg.name).parties
        except (TesseraError, ValueError):
            parties = [self.cfg.name]
        job, created = self.store.create(job_id, spec.model_dump(mode="json"), spec.hash, self.cfg.name, parties,
                                         idem=idem, detail=f"submitted by {analyst} at {self.cfg.name}")
        if created:
            self.audit.append("job_received", {"job_id": job_id, "job_hash": spec.hash, "analyst": analyst,
                                               "analysis": spec.analysis, "coordinator": self.cfg.name})
            self._log(logging.INFO, "job submitted", job_id=job_id, analyst=analyst)
            self.tasks.submit(self._guarded, self._coordinate, job_id)
        elif job["spec"] != spec.model_dump(mode="json"):
            raise NodeError(409, f"idempotency key {spec.idempotency_key!r} was used for a different job {job['id']}")
        return self.view(job_id), created

    def view(self, job_id: str) -> dict[str, Any]:
        return self.render(self._job(job_id))

    def render(self, job: dict[str, Any]) -> dict[str, Any]:
        """The API view of a job row from the store (docs/node-api.md)."""
        job_id = job["id"]
        out = view(job, self.store.events(job_id))
        if out["state"] == "running":
            out["progress"] = self._running_progress(job_id, out["progress"])
        return out

    def _running_progress(self, job_id: str, progress: dict[str, Any]) -> dict[str, Any]:
        """The party process's figures so far (rounds, bytes sent, seconds), if it wrote any."""
        try:
            figures = json.loads((self.dir / "jobs" / job_id / "progress.json").read_text())
        except (OSError, ValueError):
            return progress
        detail = (f"secure computation: {figures['rounds']} rounds, {figures['bytes_sent'] / 1e6:.1f} MB sent, "
                  f"{figures['seconds']:.0f} s")
        return {**progress, "detail": detail, "rounds": figures["rounds"], "bytes_sent": figures["bytes_sent"],
                "seconds": figures["seconds"]}

    def result(self, job_id: str, viewer: str, admin: bool) -> dict[str, Any]:
        job = self._job(job_id)
        spec = job["spec"]
        if not admin and viewer not in spec["recipients"]:
            raise NodeError(403, f"{viewer!r} is not a recipient of job {job_id}")
        if job["state"] != "released":
            raise NodeError(409, f"job {job_id} is {job['state']}, not released")
        if job["result"] is None:
            raise NodeError(404, f"node {self.cfg.name} is not a recipient of job {job_id}'s outputs")
        return {"job_id": job_id, "outputs": jsonable.to_plain(job["result"]), "revealed": job["revealed"] or []}

    # -- the data owner ------------------------------------------------------------------------

    def approve(self, job_id: str, accept: bool, reason: str = "") -> dict[str, Any]:
        job = self._job(job_id)
        mine = (job["decisions"] or {}).get(self.cfg.name, {})
        if mine.get("state") != "awaiting_approval" and not (accept and mine.get("state") == "accepted"):
            raise NodeError(409, f"job {job_id} is not awaiting this node's approval (it is {job['state']})")
        state = "accepted" if accept else "denied"
        reasons = [] if accept else [f"rejected by the owner of {self.cfg.name}" + (f": {reason}" if reason else "")]
        self.store.set_decision(job_id, self.cfg.name, state, reasons)
        self.audit.append("policy_decision", {"job_id": job_id, "allowed": accept, "reasons": reasons,
                                              "by": "owner"})
        self._log(logging.INFO, f"owner {'approved' if accept else 'rejected'} the job", job_id=job_id)
        if job["coordinator"] == self.cfg.name:
            self.tasks.submit(self._guarded, self._advance, job_id)
        else:
            if accept:
                self.store.transition(job_id, "accepted", "approved by the owner", only_from=("awaiting_approval",))
            else:
                self.store.transition(job_id, "denied", reasons[0], reasons=reasons)
            try:
                self.send(job["coordinator"], "decision", {"job_id": job_id, "state": state, "reasons": reasons})
            except TesseraError as e:
                raise NodeError(502, f"recorded, but the coordinator {job['coordinator']} was not told: {e}") from None
        return self.view(job_id)

    def budgets(self) -> list[dict[str, Any]]:
        out = []
        for d in self.own_datasets:
            b = self.contract.budget(d)
            if b is None:
                continue
            eps_left, delta_left = self.ledger.remaining(d)
            out.append({"dataset": d, "owner": self.cfg.name, "epsilon_total": b.epsilon,
                        "epsilon_spent": b.epsilon - eps_left, "epsilon_left": eps_left,
                        "delta_total": b.delta, "delta_spent": b.delta - delta_left})
        return out

    def audit_status(self) -> dict[str, Any]:
        entries = self.audit.entries()
        rep = verify_entries(entries, self.identity.public_key)
        problems = [] if rep.ok else [rep.reason]
        return {"verified": bool(rep.ok), "entries": len(entries), "head": entries[-1].hash if entries else None,
                "problems": problems}

    # -- coordination (coordinator side) -------------------------------------------------------

    def _guarded(self, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:
            job_id = args[0] if args else None
            self._log(logging.ERROR, f"{fn.__name__} failed: {type(e).__name__}: {e}", job_id=job_id)
            if isinstance(job_id, str):
                self._finish(job_id, "failed", [f"node {self.cfg.name}: {type(e).__name__}: {e}"])

    def _coordinate(self, job_id: str) -> None:
        job = self._job(job_id)
        spec = JobSpec.model_validate(job["spec"])
        state, reasons, plan = self._decide(spec, self.cfg.name)
        self.store.set_decision(job_id, self.cfg.name, state, reasons)
        self.audit.append("policy_decision", {"job_id": job_id, "allowed": state != "denied", "reasons": reasons,
                                              "by": "policy"})
        if plan is not None:
            self.store.update(job_id, plan=plan.plan_text, revealed=plan.revealed, parties=plan.parties)
        if state == "denied" or plan is None:
            self._advance(job_id)
            return
        self.store.transition(job_id, "pending", "asking the other nodes", only_from=("submitted",),
                              progress={"phase": "pending", "fraction": 0.1, "detail": "waiting for decisions"})
        peers = [p for p in plan.parties if p != self.cfg.name]
        body = {"job_id": job_id, "spec": job["spec"], "coordinator": self.cfg.name}

        def ask(peer: str) -> None:
            try:
                answer = self.send(peer, "propose", body)
                self.store.set_decision(job_id, peer, str(answer.get("state")), list(answer.get("reasons", [])))
            except TesseraError as e:
                self.store.set_decision(job_id, peer, "unreachable", [f"{peer}: {e}"])

        threads = [threading.Thread(target=ask, args=(p,), daemon=True) for p in peers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self._advance(job_id)

    def _advance(self, job_id: str) -> None:
        """Coordinator: deny, wait, or start, from the decisions gathered so far."""
        job = self._job(job_id)
        if job["state"] in FINAL_STATES or job["state"] == "running":
            return
        decisions = job["decisions"] or {}
        parties = job["parties"]
        bad = {p: d for p, d in decisions.items() if d["state"] in ("denied", "unreachable")}
        if bad or not parties or decisions.get(self.cfg.name, {}).get("state") == "denied":
            reasons = [f"{p}: {r}" for p, d in decisions.items() for r in d["reasons"]] or ["denied"]
            unreachable = any(d["state"] == "unreachable" for d in bad.values())
            final = "failed" if unreachable and not any(d["state"] == "denied" for d in bad.values()) else "denied"
            self._finish(job_id, final, reasons)
            self._broadcast_outcome(job_id, final, reasons)
            return
        waiting = [p for p in parties if decisions.get(p, {}).get("state") != "accepted"]
        if waiting:
            detail = "waiting for approval by " + ", ".join(waiting)
            if decisions.get(self.cfg.name, {}).get("state") == "awaiting_approval":
                self.store.transition(job_id, "awaiting_approval", detail, only_from=("submitted", "pending"),
                                      progress={"phase": "awaiting_approval", "fraction": 0.2, "detail": detail})
            else:
                self.store.transition(job_id, "pending", detail, only_from=("submitted", "awaiting_approval"))
                self.store.update(job_id, progress={"phase": "pending", "fraction": 0.2, "detail": detail})
            return
        if self.store.transition(job_id, "accepted", "every node accepted",
                                 only_from=("submitted", "pending", "awaiting_approval"),
                                 progress={"phase": "accepted", "fraction": 0.3, "detail": "waiting for a slot"}):
            threading.Thread(target=self._guarded, args=(self._launch, job_id), daemon=True,
                             name=f"launch-{job_id}").start()

    def _broadcast_outcome(self, job_id: str, state: str, reasons: list[str]) -> None:
        job = self._job(job_id)
        for p in job["parties"]:
            if p == self.cfg.name:
                continue
            try:
                self.send(p, "outcome", {"job_id": job_id, "state": state, "reasons": reasons, "final": True})
            except TesseraError as e:
                self._log(logging.WARNING, f"could not tell {p} the outcome: {e}", job_id=job_id, peer=p)

    def _launch(self, job_id: str) -> None:
        """Coordinator: wait for a slot, collect ports, draw the nonce, start every party."""
        while not self.slots.acquire(timeout=0.5):
            if self.stopping.is_set():
                return
        handed_over = False
        try:
            job = self._job(job_id)
            if job["state"] != "accepted":
                return
            parties = job["parties"]
            ports: dict[str, int] = {}
            for p in parties:
                ports[p] = self._prepare(job_id) if p == self.cfg.name else int(self.send(p, "prepare", {"job_id": job_id})["port"])
            nonce = new_nonce()
            body = {"job_id": job_id, "nonce": nonce, "ports": ports}
            for p in parties:
                if p != self.cfg.name:
                    self.send(p, "start", body)
            self._start(job_id, nonce, ports, release_slot=True)
            handed_over = True
        except TesseraError as e:
            reasons = [f"could not start the job: {e}"]
            self._finish(job_id, "failed", reasons)
            self._broadcast_outcome(job_id, "failed", reasons)
        finally:
            if not handed_over:
                self._free_port(job_id)
                self.slots.release()

    # -- coordination (every node) --------------------------------------------------------------

    def _on_propose(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id, coordinator = str(body.get("job_id")), body.get("coordinator")
        if coordinator != sender:
            raise NodeError(403, f"{sender!r} proposes a job coordinated by {coordinator!r}")
        try:
            spec = JobSpec.model_validate(body.get("spec"))
        except ValidationError as e:
            return {"state": "denied", "reasons": [f"invalid job: {e.errors()[0]['msg']}"]}
        existing = self.store.get(job_id)
        if existing is not None:
            if existing["coordinator"] != sender or existing["job_hash"] != spec.hash:
                raise NodeError(409, f"job {job_id} is known here with another coordinator or content")
            mine = (existing["decisions"] or {}).get(self.cfg.name, {"state": existing["state"], "reasons": []})
            return {"state": mine["state"], "reasons": mine["reasons"]}
        state, reasons, plan = self._decide(spec, sender)
        parties = plan.parties if plan is not None else [sender, self.cfg.name]
        self.store.create(job_id, spec.model_dump(mode="json"), spec.hash, sender, parties,
                          detail=f"proposed by {sender} for analyst {spec.analyst}")
        self.audit.append("job_received", {"job_id": job_id, "job_hash": spec.hash, "analyst": spec.analyst,
                                           "analysis": spec.analysis, "coordinator": sender})
        self.audit.append("policy_decision", {"job_id": job_id, "allowed": state != "denied", "reasons": reasons,
                                              "by": "policy"})
        self.store.set_decision(job_id, self.cfg.name, state, reasons)
        if plan is not None:
            self.store.update(job_id, plan=plan.plan_text, revealed=plan.revealed)
        detail = "; ".join(reasons) if reasons else {"accepted": "accepted by policy",
                                                     "awaiting_approval": "waiting for the owner's approval"}[state]
        self.store.transition(job_id, state, detail, reasons=reasons,
                              progress={"phase": state, "fraction": 0.2, "detail": detail})
        self._log(logging.INFO, f"decided on a proposed job: {state}", job_id=job_id, peer=sender, state=state)
        if state == "denied":
            self.metrics.finished("denied", 0.0)
        return {"state": state, "reasons": reasons}

    def _on_decision(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id = str(body.get("job_id"))
        job = self._job(job_id)
        if job["coordinator"] != self.cfg.name or sender not in job["parties"]:
            raise NodeError(403, f"{sender!r} may not decide on job {job_id} here")
        state = body.get("state")
        if state not in ("accepted", "denied"):
            raise NodeError(422, f"a decision is accepted or denied, not {state!r}")
        self.store.set_decision(job_id, sender, state, [str(r) for r in body.get("reasons", [])])
        self.tasks.submit(self._guarded, self._advance, job_id)
        return {"ok": True}

    def _on_prepare(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id = str(body.get("job_id"))
        job = self._job(job_id)
        if job["coordinator"] != sender:
            raise NodeError(403, f"only the coordinator of job {job_id} may start it")
        if job["state"] != "accepted":
            raise NodeError(409, f"job {job_id} is {job['state']} here, not accepted")
        return {"port": self._prepare(job_id)}

    def _prepare(self, job_id: str) -> int:
        """Reserve a free port of this node's MPC range for the job."""
        lo, hi = self.cfg.mpc_ports
        host = self._mpc_host(self.cfg.name)
        with self._lock:
            if job_id in self.ports:
                return self.ports[job_id]
            used = set(self.ports.values())
            for port in range(lo, hi + 1):
                if port in used:
                    continue
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    try:
                        s.bind((host, port))
                    except OSError:
                        continue
                self.ports[job_id] = port
                return port
        raise NodeError(503, f"no free MPC port in {lo}-{hi} at {self.cfg.name}")

    def _free_port(self, job_id: str) -> None:
        with self._lock:
            self.ports.pop(job_id, None)

    def _mpc_host(self, party: str) -> str:
        return self.contract.party(party).address.rsplit(":", 1)[0]

    def _on_start(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id = str(body.get("job_id"))
        job = self._job(job_id)
        if job["coordinator"] != sender:
            raise NodeError(403, f"only the coordinator of job {job_id} may start it")
        nonce, ports = str(body.get("nonce", "")), body.get("ports")
        if len(nonce) != 32 or not isinstance(ports, dict) or set(ports) != set(job["parties"]):
            raise NodeError(422, "a start message needs a 128-bit nonce and a port for every party")
        self._start(job_id, nonce, {str(k): int(v) for k, v in ports.items()}, release_slot=False)
        return {"ok": True}

    def _on_outcome(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id = str(body.get("job_id"))
        job = self._job(job_id)
        if sender not in job["parties"]:
            raise NodeError(403, f"{sender!r} is not a party of job {job_id}")
        state = str(body.get("state"))
        reasons = [str(r) for r in body.get("reasons", [])]
        if state not in FINAL_STATES:
            raise NodeError(422, f"{state!r} is not a final state")
        self.store.set_outcome(job_id, sender, {"state": state, "reasons": reasons})
        if body.get("final") and sender == job["coordinator"] and job["state"] not in ("running",):
            self._finish(job_id, state, reasons)
        return {"ok": True}

    # -- running a party -----------------------------------------------------------------------

    def _start(self, job_id: str, nonce: str, ports: dict[str, int], release_slot: bool) -> None:
        job = self._job(job_id)
        if job["state"] != "accepted":
            raise NodeError(409, f"job {job_id} is {job['state']} here, not accepted")
        if self.stopping.is_set():
            raise NodeError(503, "the node is shutting down")
        spec = JobSpec.model_validate(job["spec"])
        plan = plan_job(self.contract, spec, job["coordinator"])
        session_id = session_id_for(self.contract.hash, spec.hash, nonce)
        workdir = self.dir / "jobs" / job_id
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            cfg = self._party_config(job_id, spec, plan, session_id, ports, workdir)
            cfg.save(workdir / "party.json")
        except Exception as e:
            # engine errors may quote data: name their kind only
            why = f"{type(e).__name__}: {e}" if isinstance(e, TesseraError) else type(e).__name__
            reasons = [f"{self.cfg.name}: could not prepare its data for the job ({why})"]
            self._free_port(job_id)
            self._finish(job_id, "failed", reasons)
            raise NodeError(500, reasons[0]) from None
        self.store.transition(job_id, "running", f"session {session_id[:12]}... started", only_from=("accepted",),
                              nonce=nonce, session_id=session_id, ports=ports,
                              progress={"phase": "running", "fraction": 0.5, "detail": "secure computation"})
        self.audit.append("session_start", {"job_id": job_id, "session_id": session_id, "nonce": nonce,
                                            "contract_hash": self.contract.hash, "job_hash": spec.hash,
                                            "parties": plan.parties})
        env = {**os.environ, "TESSERA_PARENT_PID": str(os.getpid())}
        with open(workdir / "party.log", "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "tessera.runtime.party", str(workdir / "party.json")],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        with self._lock:
            self.procs[job_id] = proc
        self._log(logging.INFO, "party process started", job_id=job_id, pid=proc.pid, port=ports[self.cfg.name])
        threading.Thread(target=self._guarded, args=(self._watch, job_id, proc, plan, release_slot), daemon=True,
                         name=f"watch-{job_id}").start()

    def _party_config(self, job_id: str, spec: JobSpec, plan: JobPlan, session_id: str, ports: dict[str, int],
                      workdir: Path) -> PartyConfig:
        endpoints = [EndpointSpec(name=p, host=self._mpc_host(p), port=ports[p],
                                  fingerprint=self.contract.party(p).fingerprint) for p in plan.parties]
        program, args = None, {}
        if self.cfg.name in plan.data_parties:
            dataset = plan.dataset_of[self.cfg.name]
            args = {"analysis": spec.analysis, "version": spec.version, "params": plan.params,
                    "schema": plan.schema.model_dump(mode="json"), "data": self._data_file(dataset, workdir),
                    "partition": spec.partition, "recipients": plan.mpc_recipients}
            program = "tessera.plan.executor:run_analysis"
            if spec.partition == "vertical":
                program = "tessera.plan.vertical:psi_then_analysis"
                args.update(holders=plan.holders, id_column=spec.join_key, psi_mode=plan.psi_mode)
            elif spec.dp is not None:
                program = "tessera.governance.budgeted:run_budgeted"
                args.update(ledger=str(self.ledger_path), dataset=dataset, job_id=job_id)
        return PartyConfig(name=self.cfg.name, endpoints=endpoints, parties=plan.data_parties,
                           protocol=spec.protocol, identity_dir=str(self.cfg.path(self.cfg.identity_dir)),
                           session_id=session_id, frac_bits=plan.frac_bits, program=program, args=args,
                           timeout=self.cfg.recv_timeout,
                           result_path=str(workdir / "result.json"), progress_path=str(workdir / "progress.json"))

    def _data_file(self, dataset: str, workdir: Path) -> str:
        src = self.cfg.datasets[dataset]
        if src.path is not None:
            return str(self.cfg.path(src.path))
        out = workdir / "data.parquet"
        con = duckdb.connect()
        try:
            self._register_tables(con, src.tables)
            target = str(out).replace("'", "''")
            con.execute(f"COPY ({src.sql}) TO '{target}' (FORMAT PARQUET)")
        finally:
            con.close()
        return str(out)

    def _watch(self, job_id: str, proc: subprocess.Popen[bytes], plan: JobPlan, release_slot: bool) -> None:
        workdir = self.dir / "jobs" / job_id
        try:
            try:
                proc.wait(self.cfg.job_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            report = None
            path = workdir / "result.json"
            if path.exists():
                try:
                    report = jsonable.loads(path.read_text())
                except ValueError:
                    report = None
            self._settle(job_id, proc.returncode, report, plan)
        finally:
            with self._lock:
                self.procs.pop(job_id, None)
            self._free_port(job_id)
            if release_slot:
                self.slots.release()
            (workdir / "data.parquet").unlink(missing_ok=True)  # a SQL source's copy of the rows

    def _settle(self, job_id: str, returncode: int | None, report: dict[str, Any] | None, plan: JobPlan) -> None:
        """Record this node's outcome of a job whose party process ended."""
        self.sweep(audited_here=job_id)
        for dataset, st in self.ledger.state(job_id):
            if st in ("committed", "released"):
                self.audit.append(f"budget_{st}", {"job_id": job_id, "dataset": dataset})
        if report is not None and report.get("ok"):
            result = report.get("result") or {}
            stats = report.get("comm") or {}
            comm = {"bytes_sent": int(stats.get("bytes_sent", 0)), "rounds": int(stats.get("rounds", 0))}
            self.metrics.comm(comm["bytes_sent"], comm["rounds"])
            if "transcript" in result:
                self.audit.append("transcript_hash", {"job_id": job_id, "hash": str(result["transcript"])})
            outputs = result.get("outputs") if self.cfg.name in plan.mpc_recipients else None
            if outputs is not None:
                self.audit.append("output_released", {"job_id": job_id, "to": self._job(job_id)["spec"]["recipients"],
                                                      "outputs": sorted(outputs)})
            self.audit.append("session_end", {"job_id": job_id, "state": "released"})
            self._finish(job_id, "released", [], result=outputs, comm=comm, seconds=float(report.get("seconds", 0.0)))
            return
        if report is None:
            why = "the node shut down during the job" if self.stopping.is_set() else \
                f"the party process ended without a report (exit code {returncode})"
            state, reasons = "aborted", [f"{self.cfg.name}: {why}"]
        else:
            err = str(report.get("error"))
            state = "aborted" if err in _ABORT_ERRORS else "failed"
            reasons = [f"{self.cfg.name}: {err}: {report.get('message', '')}"]
        self.audit.append("job_aborted", {"job_id": job_id, "state": state, "reasons": reasons})
        self.audit.append("session_end", {"job_id": job_id, "state": state})
        self._finish(job_id, state, reasons)

    def _finish(self, job_id: str, state: str, reasons: list[str], **fields: Any) -> None:
        job = self.store.get(job_id)
        if job is None:
            return
        moved = self.store.transition(job_id, state, "; ".join(reasons) if reasons else state, reasons=reasons,
                                      progress={"phase": state, "fraction": 1.0, "detail": state}, **fields)
        if not moved:
            return
        self.metrics.finished(state, time.time() - job["created"])
        self._log(logging.INFO if state == "released" else logging.WARNING, f"job {state}", job_id=job_id,
                  state=state, reasons=reasons)
        if job["coordinator"] != self.cfg.name and job["state"] == "running":
            try:
                self.send(job["coordinator"], "outcome", {"job_id": job_id, "state": state, "reasons": reasons})
            except TesseraError as e:
                self._log(logging.WARNING, f"could not report the outcome to the coordinator: {e}", job_id=job_id)

    # -- start and stop ------------------------------------------------------------------------

    def recover(self) -> dict[str, list[str]]:
        """After a restart: abort the jobs that were running, settle their budget, and resume
        coordinating jobs that had not started. Returns the job ids by what was done."""
        done: dict[str, list[str]] = {"aborted": [], "resumed": []}
        for job in self.store.in_states("running"):
            reasons = [f"{self.cfg.name}: the node stopped during the job"]
            self.audit.append("job_aborted", {"job_id": job["id"], "state": "aborted", "reasons": reasons})
            self.store.transition(job["id"], "aborted", reasons[0], reasons=reasons,
                                  progress={"phase": "aborted", "fraction": 1.0, "detail": "aborted"})
            done["aborted"].append(job["id"])
        self.sweep(by="recovery")
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self._guarded, args=(self._sweep_loop,), daemon=True,
                                             name=f"tessera-{self.cfg.name}-sweep")
            self._sweeper.start()
        for job in self.store.in_states("submitted", "pending", "accepted", "awaiting_approval"):
            if job["coordinator"] != self.cfg.name:
                continue
            done["resumed"].append(job["id"])
            if job["state"] == "submitted":
                self.tasks.submit(self._guarded, self._coordinate, job["id"])
            else:
                self.store.transition(job["id"], "pending", "resumed after a restart",
                                      only_from=("accepted", "pending", "awaiting_approval"))
                self.tasks.submit(self._guarded, self._advance, job["id"])
        if done["aborted"] or done["resumed"]:
            self._log(logging.INFO, f"recovered the store: {done}")
        return done

    def sweep(self, by: str = "sweep", audited_here: str | None = None) -> dict[str, str]:
        """Settle every budget reservation that no running process holds; returns job id -> state.

        A reservation belongs to the party process that made it, which commits or releases it
        itself unless it dies first (killed, or exiting with its node). Here every reservation
        whose owner is gone is settled: committed if an output share had left, else released.
        A zombie counts as gone, and so does a process that merely reuses the owner's pid. An
        owner still running for a job that is final here is a party process of an earlier run of
        this node (it would exit on its own within a second): it is ended first, so that no
        reservation of a final job can stay reserved.
        """
        with self._lock:
            children = {p.pid for p in self.procs.values()}
        for job_id, owners in self.ledger.reserved().items():
            job = self.store.get(job_id)
            if job is not None and job["state"] not in FINAL_STATES:
                continue
            for owner in owners:
                pid = int(owner[4:].partition(":")[0]) if owner.startswith("pid:") else None
                if pid is None or pid in children or pid == os.getpid() or not pid_alive(owner):
                    continue
                self._log(logging.WARNING, "ending a party process left from an earlier run", job_id=job_id, pid=pid)
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        settled = self.ledger.recover()
        for job_id, st in settled.items():
            if job_id != audited_here:
                self.audit.append(f"budget_{st}", {"job_id": job_id, "dataset": "*", "by": by})
        return settled

    def _sweep_loop(self) -> None:
        while not self.stopping.wait(self.cfg.sweep_interval):
            if self.ledger.reserved():
                self.sweep()

    def stop(self, grace: float = 5.0) -> None:
        """Graceful shutdown: refuse new work, end every running party process (its peers
        abort), record the jobs as aborted, settle budgets."""
        with self._stop_lock:  # a second caller waits until the first has finished
            if self._stopped:
                return
            self._stop(grace)
            self._stopped = True

    def _stop(self, grace: float) -> None:
        self.stopping.set()
        with self._lock:
            procs = dict(self.procs)
        for job_id, p in procs.items():
            self._log(logging.WARNING, "aborting a running job for shutdown", job_id=job_id)
            try:
                p.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self._lock:
                if not self.procs:
                    break
            time.sleep(0.05)
        self.tasks.shutdown(wait=False, cancel_futures=True)
        self.sweep(by="shutdown")

    def health(self) -> dict[str, Any]:
        with self._lock:
            running = len(self.procs)
        return {"status": "stopping" if self.stopping.is_set() else "ok", "node": self.cfg.name,
                "contract": self.contract.hash, "contract_in_force": not self.contract.problems(),
                "jobs_running": running, "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
