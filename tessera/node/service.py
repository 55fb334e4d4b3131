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
import os
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from tessera.errors import PlanError, TesseraError
from tessera.governance.audit import AuditLog, VerifyReport, read_db
from tessera.governance.contract import Contract, PartySpec
from tessera.governance.job import JobSpec
from tessera.governance.ledger import SqliteLedger, process_owner
from tessera.jobs.contract import request_for
from tessera.jobs.planner import plan_job
from tessera.net.identity import Identity
from tessera.node.config import ConfigError, NodeConfig
from tessera.node.context import NodeContext, NodeError
from tessera.node.coordinator import Coordinator, job_id_for
from tessera.node.metrics import NodeMetrics
from tessera.node.states import STATES, JobState
from tessera.node.store import Job, JobStore, view
from tessera.runtime import jsonable

__all__ = ["Node", "NodeError", "check_json_body", "private_dir", "private_file", "MAX_JSON_DEPTH"]

S = JobState

#: the deepest nesting of arrays and objects a request body may have (a job's is 3 or 4)
MAX_JSON_DEPTH = 32


def check_json_body(value: Any, what: str = "the request body") -> None:
    """Refuse (422, naming where) JSON a node cannot store, audit and show again: nesting deeper
    than :data:`MAX_JSON_DEPTH`, and strings or keys that are not valid Unicode text (a lone
    surrogate such as ``\\ud800``, which JSON escapes allow but UTF-8 cannot encode)."""
    todo: list[tuple[Any, str, int]] = [(value, "", 0)]
    while todo:
        v, where, depth = todo.pop()
        if isinstance(v, (dict, list)):
            if depth >= MAX_JSON_DEPTH:
                at = where if len(where) <= 60 else where[:57] + "..."
                raise NodeError(422, f"{what} is nested more than {MAX_JSON_DEPTH} levels deep"
                                     + (f" (at {at})" if at else ""))
            items = v.items() if isinstance(v, dict) else enumerate(v)
            for k, x in items:
                if isinstance(k, str):  # parents' keys are checked before their children's
                    _check_text(k, f"a key in {where}" if where else "a key", what)
                    child = f"{where}.{k}" if where else k
                else:
                    child = f"{where}[{k}]"
                todo.append((x, child, depth + 1))
        elif isinstance(v, str):
            _check_text(v, where or "the value", what)


def _check_text(s: str, where: str, what: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        raise NodeError(422, f"{what} has a string that is not valid Unicode text at {where} "
                             f"(a lone surrogate U+{ord(s[e.start]):04X})") from None


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make it accessible by its owner only (0700)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty if missing, and make it and its SQLite companions (``-wal``,
    ``-shm``) readable by the owner only (0600)."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if p.exists():
            p.chmod(0o600)
    return path


class Node:
    """One organisation's node (see the module docstring)."""

    def __init__(self, cfg: NodeConfig, logger: logging.Logger | None = None) -> None:
        contract = Contract.load(cfg.path(cfg.contract))
        me = contract.party(cfg.name)
        identity = Identity.load(cfg.path(cfg.identity_dir), cfg.name)
        if identity.public_key != me.public_key:
            raise ConfigError(f"the key in {cfg.identity_dir} is not {cfg.name!r}'s key in the contract")
        # the node's state is its owner's only: directories 0700, files 0600
        store_dir = private_dir(cfg.store_dir)
        private_dir(store_dir / "jobs")
        store = JobStore(private_file(store_dir / "jobs.db"))
        ledger = SqliteLedger(private_file(store_dir / "ledger.db"), owner=process_owner())
        own = [d.name for d in contract.datasets if d.owner == cfg.name]
        self.ctx = ctx = NodeContext(
            cfg=cfg, contract=contract, me=me, identity=identity, dir=store_dir, store=store,
            ledger_path=store_dir / "ledger.db", ledger=ledger, audit=AuditLog(private_file(store_dir / "audit.db"), identity),
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
        readable = read_db(ctx.audit.path)  # a damaged log is reported by /health and /v1/audit
        if isinstance(readable, VerifyReport):
            ctx.log(logging.ERROR, f"the audit log cannot be read: {readable.reason}")
        elif not any(e.kind == "contract_adopted" and e.body.get("hash") == contract.hash for e in readable):
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
        self._audit_seen: tuple[list[tuple[int, int]], str] | None = None

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
        check_json_body(body, "the job")
        if body.get("analyst", analyst) != analyst:
            raise NodeError(403, f"this token belongs to analyst {analyst!r}, not {body.get('analyst')!r}")
        try:
            spec = JobSpec.model_validate({**body, "analyst": analyst})
        except ValidationError as e:  # every field and its problem, on one line
            problems = "; ".join(f"{'.'.join(str(x) for x in err['loc']) or '(job)'}: {err['msg']}"
                                 for err in e.errors())
            raise NodeError(422, f"invalid job: {problems}") from None
        job_id = job_id_for(analyst, spec.idempotency_key)
        idem = f"{analyst}|{spec.idempotency_key}" if spec.idempotency_key else None
        parties = self._plannable(spec, job_id)
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

    def _plannable(self, spec: JobSpec, job_id: str) -> list[str]:
        """The parties of ``spec``, or 422 with the planner's one line if the job cannot be
        planned under the contract: an unknown analysis or version, parameters it does not take,
        a column no dataset declares, a dataset the contract does not have, ... -- the analyst's
        mistakes, found the same way at every node (they all plan from the same contract), so
        the job is refused here and not recorded. A job that can be planned is recorded and
        decided by every party's policy (there the plan is made again, and kept)."""
        try:
            planned = plan_job(request_for(self.contract, spec, self.cfg.name, job_id))
        except PlanError as e:
            raise NodeError(422, f"the job cannot be planned: {e}") from None
        except (TesseraError, ValueError):  # decided, and denied with its reasons, by every party
            return [self.cfg.name]
        return list(planned.roles.participants)

    def view(self, job_id: str) -> dict[str, Any]:
        return self.render(self.coordinator.job(job_id))

    def render(self, job: Job) -> dict[str, Any]:
        """The API view of a job from the store (docs/node-api.md)."""
        out = view(job, self.store.events(job.id))
        if job.state is S.RUNNING:
            out["progress"] = self.runner.progress(job.id, out["progress"])
            with self.runner.lock:
                why = self.runner.cancelled.get(job.id)
            if why is not None:  # its party processes are being ended
                out["progress"] = {**out["progress"], "detail": f"stopping: {why}", "stage": f"stopping: {why}"}
        return out

    def result(self, job_id: str, viewer: str, admin: bool) -> dict[str, Any]:
        """Job ``job_id``'s released outputs, for a recipient only: an analyst named in its
        recipients, or this node's owner (admin) when this node is one. The owner of a node that
        holds an analyst's result only passes it on: it sees the job's status and what it
        revealed (by name), never the values. A job sealed to its analysts has no outputs at any
        node: the analyst gets every party's sealed shares (``sealed``, party -> box) instead, and
        its client opens and reconstructs them (:mod:`tessera.jobs.sealed`)."""
        job = self.coordinator.job(job_id)
        recipients = job.spec_json.get("recipients", [])
        if (self.cfg.name if admin else viewer) not in recipients:
            who = f"node {self.cfg.name} (its owner)" if admin else repr(viewer)
            raise NodeError(403, f"{who} is not a recipient of job {job_id}")
        if job.state is not S.RELEASED:
            raise NodeError(409, f"job {job_id} is {job.state}, not released")
        sealed_to = job.party_job.roles.recipients.sealed if job.party_job is not None else {}
        if sealed_to:
            return self._sealed_result(job, viewer)
        if job.result is None:
            raise NodeError(404, f"node {self.cfg.name} is not a recipient of job {job_id}'s outputs")
        return {"job_id": job_id, "outputs": jsonable.to_plain(job.result), "revealed": job.revealed}

    def _sealed_result(self, job: Job, viewer: str) -> dict[str, Any]:
        """A job sealed to its analysts: every party's sealed box for ``viewer`` that this node has
        (it cannot open them), and the parties whose box has not reached it yet (``missing``: a
        peer's box comes with its outcome report, shortly after the job ends)."""
        assert job.party_job is not None
        parties = list(job.party_job.roles.compute)
        boxes = {p: job.sealed[p][viewer] for p in parties if viewer in job.sealed.get(p, {})}
        return {"job_id": job.id, "sealed": boxes, "parties": parties,
                "missing": [p for p in parties if p not in boxes], "revealed": job.revealed}

    def cancel(self, job_id: str, viewer: str, admin: bool, reason: str = "") -> dict[str, Any]:
        """Cancel job ``job_id`` (the analyst who submitted it, or this node's owner; at the
        coordinator): withdrawn if it has not run, aborted at every party if it is running
        (:meth:`Coordinator.cancel`); 409 once it has ended. Returns its view."""
        job = self.coordinator.job(job_id)
        analyst = job.spec_json.get("analyst")
        if not admin and analyst != viewer:
            raise NodeError(403, f"only the analyst who submitted job {job_id} ({analyst}) or the owner of node "
                                 f"{self.cfg.name} may cancel it")
        if len(reason) > 1000:
            raise NodeError(422, "the reason for cancelling is at most 1000 characters")
        self.coordinator.cancel(job_id, f"the owner of {self.cfg.name}" if admin else f"analyst {viewer}", reason)
        return self.view(job_id)

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
        """Whether the audit log verifies; a bad or unreadable entry is named (``first_bad``)."""
        rep = self.audit.verify()
        return {"verified": bool(rep.ok), "entries": rep.entries, "head": rep.head if rep.entries else None,
                "first_bad": rep.first_bad, "problems": [] if rep.ok else [rep.reason]}

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
                self.coordinator.later(self.coordinator.resume, job.id)  # decisions sent meanwhile were lost
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

    def problems(self) -> list[str]:
        """What is wrong with the node's state files: a job store or ledger that SQLite does not
        find intact (``PRAGMA quick_check``), or an audit entry that cannot be read (named; the
        log is read again only when it changed). The audit log's signatures are checked by
        ``/v1/audit``."""
        out = []
        for what, path in (("job store", self.store.path), ("budget ledger", str(self.ledger_path))):
            try:
                db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True, timeout=10.0)
                try:
                    verdict = [r[0] for r in db.execute("PRAGMA quick_check(3)")]
                finally:
                    db.close()
            except sqlite3.OperationalError as e:  # not opened (no file descriptor left, no file, ...)
                out.append(f"the {what} {Path(path).name} cannot be opened: {e}")
                continue
            except sqlite3.DatabaseError as e:
                verdict = [str(e)]
            if verdict != ["ok"]:
                out.append(f"the {what} {Path(path).name} is damaged: {'; '.join(verdict)}")
        audit = self._audit_problem()
        if audit:
            out.append(f"the audit log: {audit}")
        return out

    def _audit_problem(self) -> str:
        """Why the audit log cannot be read ("" if it can), cached while its files are unchanged."""
        stamp = []
        for p in (Path(self.audit.path), Path(self.audit.path + "-wal")):
            try:
                st = p.stat()
                stamp.append((st.st_mtime_ns, st.st_size))
            except OSError:
                stamp.append((0, 0))
        if self._audit_seen is None or self._audit_seen[0] != stamp:
            got = read_db(self.audit.path)
            self._audit_seen = (stamp, got.reason if isinstance(got, VerifyReport) else "")
        return self._audit_seen[1]

    def health(self) -> dict[str, Any]:
        """The node's status: ``ok``, ``stopping``, or ``degraded`` with its ``problems``."""
        problems = self.problems() + self.runner.problems()
        status = "stopping" if self.stopping.is_set() else "degraded" if problems else "ok"
        return {"status": status, "node": self.cfg.name, "problems": problems,
                "contract": self.contract.hash, "contract_in_force": not self.contract.problems(),
                "jobs_running": self.runner.running, "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
