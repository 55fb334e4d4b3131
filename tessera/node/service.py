"""The node: one organisation's long-lived service. :class:`Node` wires the parts together and
answers the analysts and the owner:

* :mod:`tessera.node.store` — the job store (typed :class:`~tessera.node.store.Job` records),
  states and moves in :mod:`tessera.node.states`;
* :mod:`tessera.node.coordinator` — agreeing on jobs with the other nodes (signed peer messages),
  this node's decision (:mod:`tessera.node.decisions`: policy and the one planning of the job);
* :mod:`tessera.node.runner` — ports, the party process of each running job, outcomes, and the
  budget sweep;
* :mod:`tessera.node.datasources` — the node's datasets through :mod:`tessera.data`.

A node that restarts marks the jobs it was running as ``aborted``, settles their budget
reservations and resumes coordinating the jobs it had not started (:meth:`Node.recover`).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tessera.errors import TesseraError
from tessera.governance.audit import AuditLog, verify_entries
from tessera.governance.contract import Contract, PartySpec
from tessera.governance.job import JobSpec
from tessera.governance.ledger import SqliteLedger, process_owner
from tessera.jobs.contract import roles_for
from tessera.net.identity import Identity
from tessera.node.config import ConfigError, NodeConfig
from tessera.node.context import NodeContext, NodeError
from tessera.node.coordinator import Coordinator, job_id_for
from tessera.node.metrics import NodeMetrics
from tessera.node.states import STATES, JobState
from tessera.node.store import Job, JobStore, view
from tessera.runtime import jsonable

__all__ = ["Node", "NodeError"]

S = JobState


class Node:
    """One organisation's node (see the module docstring)."""

    def __init__(self, cfg: NodeConfig, logger: logging.Logger | None = None) -> None:
        contract = Contract.load(cfg.path(cfg.contract))
        me = contract.party(cfg.name)
        identity = Identity.load(cfg.path(cfg.identity_dir), cfg.name)
        if identity.public_key != me.public_key:
            raise ConfigError(f"the key in {cfg.identity_dir} is not {cfg.name!r}'s key in the contract")
        store_dir = cfg.store_dir
        (store_dir / "jobs").mkdir(parents=True, exist_ok=True)
        store = JobStore(store_dir / "jobs.db")
        ledger = SqliteLedger(store_dir / "ledger.db", owner=process_owner())
        own = [d.name for d in contract.datasets if d.owner == cfg.name]
        self.ctx = ctx = NodeContext(
            cfg=cfg, contract=contract, me=me, identity=identity, dir=store_dir, store=store,
            ledger_path=store_dir / "ledger.db", ledger=ledger, audit=AuditLog(store_dir / "audit.db", identity),
            metrics=NodeMetrics(cfg.name, store.counts, self._budget_left, STATES),
            tasks=ThreadPoolExecutor(16, thread_name_prefix=f"tessera-{cfg.name}"),
            logger=logger or logging.getLogger("tessera.node"), own_datasets=own)
        unknown = [a for a in cfg.analysts if a not in {x.id for x in contract.analysts}]
        if unknown:
            ctx.log(logging.WARNING, f"analysts {unknown} have tokens here but are not in the contract")
        for d in own:
            b = contract.budget(d)
            if b is not None:
                ledger.set_budget(d, b.epsilon, b.delta)
        if not any(e.kind == "contract_adopted" and e.body.get("hash") == contract.hash for e in ctx.audit.entries()):
            ctx.audit.append("contract_adopted", {"contract_id": contract.contract_id, "hash": contract.hash})
        self.coordinator = Coordinator(ctx)
        self.runner = self.coordinator.runner
        try:
            self._config_mtime: int | None = cfg.file.stat().st_mtime_ns if cfg.file else None
        except OSError:
            self._config_mtime = None
        self._stop_lock = threading.Lock()
        self._stopped = False
        self._sweeper: threading.Thread | None = None

    # -- the parts, by their usual names -----------------------------------------------------------

    @property
    def cfg(self) -> NodeConfig:
        return self.ctx.cfg

    @property
    def contract(self) -> Contract:
        return self.ctx.contract

    @property
    def me(self) -> PartySpec:
        return self.ctx.me

    @property
    def identity(self) -> Identity:
        return self.ctx.identity

    @property
    def store(self) -> JobStore:
        return self.ctx.store

    @property
    def ledger(self) -> SqliteLedger:
        return self.ctx.ledger

    @property
    def ledger_path(self) -> Path:
        return self.ctx.ledger_path

    @property
    def audit(self) -> AuditLog:
        return self.ctx.audit

    @property
    def metrics(self) -> NodeMetrics:
        return self.ctx.metrics

    @property
    def own_datasets(self) -> list[str]:
        return self.ctx.own_datasets

    @property
    def stopping(self) -> threading.Event:
        return self.ctx.stopping

    @property
    def log(self) -> logging.Logger:
        return self.ctx.logger

    def _budget_left(self) -> dict[str, float]:
        return {d: self.ledger.remaining(d)[0] for d in self.own_datasets if self.contract.budget(d)}

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
            self.ctx.log(logging.WARNING, f"node.toml changed but cannot be read: {e}")
            return
        if fresh.name == self.cfg.name:
            self.cfg.analysts = dict(fresh.analysts)

    # -- analysts ------------------------------------------------------------------------------

    def submit(self, analyst: str, body: Any) -> tuple[dict[str, Any], bool]:
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
            parties = roles_for(self.contract, spec, self.cfg.name).endpoints  # the job is planned when decided
        except (TesseraError, ValueError):
            parties = [self.cfg.name]
        job, created = self.store.create(job_id, spec.model_dump(mode="json"), spec.hash, self.cfg.name, parties,
                                         idem=idem, detail=f"submitted by {analyst} at {self.cfg.name}")
        if created:
            self.audit.append("job_received", {"job_id": job_id, "job_hash": spec.hash, "analyst": analyst,
                                               "analysis": spec.analysis, "coordinator": self.cfg.name})
            self.ctx.log(logging.INFO, "job submitted", job_id=job_id, analyst=analyst)
            self.coordinator.later(self.coordinator.coordinate, job_id)
        elif job.spec_json != spec.model_dump(mode="json"):
            raise NodeError(409, f"idempotency key {spec.idempotency_key!r} was used for a different job {job.id}")
        return self.view(job.id), created

    def view(self, job_id: str) -> dict[str, Any]:
        return self.render(self.coordinator.job(job_id))

    def render(self, job: Job) -> dict[str, Any]:
        """The API view of a job from the store (docs/node-api.md)."""
        out = view(job, self.store.events(job.id))
        if job.state is S.RUNNING:
            out["progress"] = self.runner.progress(job.id, out["progress"])
        return out

    def result(self, job_id: str, viewer: str, admin: bool) -> dict[str, Any]:
        job = self.coordinator.job(job_id)
        if not admin and viewer not in job.spec_json.get("recipients", []):
            raise NodeError(403, f"{viewer!r} is not a recipient of job {job_id}")
        if job.state is not S.RELEASED:
            raise NodeError(409, f"job {job_id} is {job.state}, not released")
        if job.result is None:
            raise NodeError(404, f"node {self.cfg.name} is not a recipient of job {job_id}'s outputs")
        return {"job_id": job_id, "outputs": jsonable.to_plain(job.result), "revealed": job.revealed}

    # -- the data owner ------------------------------------------------------------------------

    def approve(self, job_id: str, accept: bool, reason: str = "") -> dict[str, Any]:
        self.coordinator.approve(job_id, accept, reason)
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

    # -- peers ---------------------------------------------------------------------------------

    def receive(self, kind: str, env: Any) -> dict[str, Any]:
        """Handle a signed message from a peer node; returns the signed reply."""
        return self.coordinator.receive(kind, env)

    # -- start and stop ------------------------------------------------------------------------

    def recover(self) -> dict[str, list[str]]:
        """After a restart: abort the jobs that were running, settle their budget, and resume
        coordinating jobs that had not started. Returns the job ids by what was done."""
        done: dict[str, list[str]] = {"aborted": [], "resumed": []}
        for job in self.store.in_states(S.RUNNING):
            reasons = [f"{self.cfg.name}: the node stopped during the job"]
            self.audit.append("job_aborted", {"job_id": job.id, "state": "aborted", "reasons": reasons})
            self.store.transition(job.id, S.ABORTED, reasons[0], reasons=reasons)
            done["aborted"].append(job.id)
        self.sweep(by="recovery")
        if self._sweeper is None:
            self._sweeper = threading.Thread(target=self.coordinator.guarded, args=(self.runner.sweep_loop,),
                                             daemon=True, name=f"tessera-{self.cfg.name}-sweep")
            self._sweeper.start()
        for job in self.store.in_states(S.SUBMITTED, S.PENDING, S.ACCEPTED, S.AWAITING_APPROVAL):
            if job.coordinator != self.cfg.name:
                continue
            done["resumed"].append(job.id)
            if job.state is S.SUBMITTED:
                self.coordinator.later(self.coordinator.coordinate, job.id)
            else:
                self.store.transition(job.id, S.PENDING, "resumed after a restart")
                self.coordinator.later(self.coordinator.advance, job.id)
        if done["aborted"]:  # one outcome per job everywhere: ask the other parties (#15.13)
            self.coordinator.later(self.coordinator.reconcile, done["aborted"])
        if done["aborted"] or done["resumed"]:
            self.ctx.log(logging.INFO, f"recovered the store: {done}")
        return done

    def sweep(self, by: str = "sweep", audited_here: str | None = None) -> dict[str, str]:
        """Settle every budget reservation that no running process holds (see
        :meth:`tessera.node.runner.Runner.sweep`); returns job id -> state."""
        return self.runner.sweep(by, audited_here)

    def stop(self, grace: float = 5.0) -> None:
        """Graceful shutdown: refuse new work, end every running party process (its peers
        abort), record the jobs as aborted, settle budgets."""
        with self._stop_lock:  # a second caller waits until the first has finished
            if self._stopped:
                return
            self.stopping.set()
            self.runner.stop_all(grace)
            self.ctx.tasks.shutdown(wait=False, cancel_futures=True)
            self.sweep(by="shutdown")
            self._stopped = True

    def health(self) -> dict[str, Any]:
        problems = self.runner.problems()
        return {"status": "stopping" if self.stopping.is_set() else "degraded" if problems else "ok",
                "problems": problems, "node": self.cfg.name,
                "contract": self.contract.hash, "contract_in_force": not self.contract.problems(),
                "jobs_running": self.runner.running, "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
