"""Agreeing on a job with the other nodes: the signed peer messages (*propose*, *decision*,
*prepare*, *start*, *outcome*), the coordinator's side (gather decisions, deny or start), and the
final state each node records and reports.

Lifecycle (every step persisted in the store, with a timestamped event; states and their moves
in :mod:`tessera.node.states`):

1. An analyst submits a job to the node of one of its data owners, the *coordinator*
   (``submitted``). The coordinator decides for itself (:func:`tessera.node.decisions.decide`:
   contract, policy, the job's plan) and sends a signed *propose* to every other party of the
   job, which decides on its own and answers ``accepted``, ``denied`` (with every reason) or
   ``awaiting_approval`` (its owner approves by hand, after which it sends its *decision*). The
   coordinator's job is ``pending`` until every decision is in.
2. Any denial: the job is ``denied`` everywhere, with the reasons. All accepted: the coordinator
   asks every party for a port (*prepare*), draws a fresh nonce, and sends *start*; every node
   derives the session id from the contract hash, the job hash and the nonce itself and runs its
   party (:class:`tessera.node.runner.Runner`).
3. Each node records its own outcome and reports it to the coordinator (*outcome*).
4. One outcome per job everywhere (#15.13). A node killed during the reveal can leave the nodes
   disagreeing (one ``released``, another ``aborted``). The rule (:func:`tessera.node.states.agreed_outcome`):
   if any party recorded ``released`` — an output reached a recipient, and the output barrier
   made every owner mark its budget spent before that — the job is ``released`` at every node;
   else ``failed`` if any party failed, else ``aborted``. A node's outcome only moves up
   (``aborted -> failed -> released``), so the nodes converge in any order. The coordinator
   answers every *outcome* with the outcome agreed so far and, when that changes, sends it to
   every party (*outcome* with ``final``); a node that restarts asks for the outcome of the jobs
   it was running (:meth:`Coordinator.reconcile`): a peer reports its recorded outcome to the
   coordinator and adopts the answer; a coordinator asks every party (*query*) and announces the
   agreed outcome. A node that moves records an event and an audit entry
   (``outcome_reconciled``) naming the outcome it had.
5. Data owners that only input (#17). Such an owner's node runs its party (local stage, shares
   to the compute parties) and records ``contributed`` once the shares are sent: it takes no
   further part and may go offline. Only the session's endpoints (compute parties, dealer) decide
   the agreed outcome; an owner that reported ``contributed`` is told the agreed one if it is
   online. When its job ends ``aborted`` or ``failed`` (its own party's outcome, or the one it is
   told) while its budget charge is spent, it asks every compute node for its signed abort
   statement (*statement*; :mod:`tessera.jobs.outcome`) and gets its charge back only if every
   one verifies with that party's contract key; otherwise the charge stays spent. Audited
   (``budget_released`` / ``budget_committed`` with ``by = "abort_statements"`` and each party's
   statement: valid, missing, invalid or unreachable).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from tessera.errors import PeerAuthError, TesseraError, TransportError
from tessera.governance.job import JobSpec
from tessera.jobs.model import LedgerRef
from tessera.jobs.outcome import AbortStatement, BarrierRecord, IdentityKey, check_statements, settle_owner, sign_abort
from tessera.node.context import NodeContext, NodeError
from tessera.node.decisions import decide
from tessera.node.peers import PEER_KINDS, PinnedHTTPS, seal, unseal
from tessera.node.replay import SqliteReplayGuard
from tessera.node.runner import STORE_ERRORS, Runner
from tessera.node.states import FINAL_STATES, JobState, Vote, agreed_outcome, outranks
from tessera.node.store import Job, Verdict, check_job_id

__all__ = ["Coordinator", "session_id_for", "job_id_for", "new_nonce"]

S = JobState


def new_nonce() -> str:
    return secrets.token_hex(16)


def session_id_for(contract_hash: str, job_hash: str, nonce: str) -> str:
    """The MPC session id: binds the contract version, the exact job and a fresh nonce."""
    return hashlib.sha256(f"tessera-session|{contract_hash}|{job_hash}|{nonce}".encode()).hexdigest()[:32]


def job_id_for(analyst: str, idempotency_key: str | None) -> str:
    """A fresh id, or one derived from the analyst and its idempotency key (same key, same job)."""
    if idempotency_key:
        return hashlib.sha256(f"{analyst}|{idempotency_key}".encode()).hexdigest()[:16]
    return secrets.token_hex(8)


def _reasons(body: dict[str, Any]) -> list[str]:
    """The ``reasons`` of a peer message: a list of strings, or 422 (a signed message from a
    party is checked like any other input, never a 500)."""
    reasons = body.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise NodeError(422, "the reasons of a message are a list of strings")
    return list(reasons)


def _ports(ports: dict[str, Any]) -> dict[str, int]:
    """The ports of a *start* message: a TCP port number (1-65535) for every party, or 422."""
    if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536 for v in ports.values()):
        raise NodeError(422, "the ports of a start message are TCP port numbers (1-65535)")
    return {str(k): int(v) for k, v in ports.items()}


class Coordinator:
    def __init__(self, ctx: NodeContext) -> None:
        self.ctx = ctx
        self.guard = SqliteReplayGuard(ctx.dir / "replay.db")  # nonces survive a restart (#15.12)
        self.slots = threading.BoundedSemaphore(ctx.cfg.max_running_jobs)
        self.runner = Runner(ctx, self.finish, self.slots.release)

    # -- helpers -------------------------------------------------------------------------------

    def job(self, job_id: str) -> Job:
        job = self.ctx.store.get(job_id)
        if job is None:
            raise NodeError(404, f"no job {job_id!r} at node {self.ctx.name}")
        return job

    def guarded(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception as e:
            job_id = args[0] if args else None
            self.ctx.log(logging.ERROR, f"{fn.__name__} failed: {type(e).__name__}: {e}", job_id=job_id)
            if isinstance(job_id, str):
                self.finish(job_id, S.FAILED, [f"node {self.ctx.name}: {type(e).__name__}: {e}"])

    def later(self, fn: Callable[..., None], *args: Any) -> None:
        try:
            self.ctx.tasks.submit(self.guarded, fn, *args)
        except RuntimeError:  # the node is stopping: its task pool takes no more work
            self.ctx.log(logging.WARNING, f"{fn.__name__} was not scheduled: the node is stopping")

    def _client(self, party: str) -> PinnedHTTPS:
        spec = self.ctx.contract.party(party)
        if not spec.api or not spec.api_fingerprint:
            raise TransportError(f"the contract gives no API address for {party!r}")
        return PinnedHTTPS(spec.api, spec.api_fingerprint, timeout=self.ctx.cfg.peer_timeout)

    def send(self, party: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
        """Send a signed message to ``party``'s node and check its signed reply."""
        env = seal(self.ctx.identity, kind, body, self.ctx.contract.hash, to=party)
        reply = self._client(party).request("POST", f"/v1/peer/{kind}", env)
        sender, answer = unseal(self.ctx.contract, reply, kind + ".reply", me=self.ctx.name)
        if sender != party:
            raise PeerAuthError(f"the reply to a message for {party!r} was signed by {sender!r}")
        return answer

    def receive(self, kind: str, env: Any) -> dict[str, Any]:
        """Handle a signed message from a peer; returns the signed reply."""
        handlers = {"propose": self._on_propose, "decision": self._on_decision, "prepare": self._on_prepare,
                    "start": self._on_start, "outcome": self._on_outcome, "query": self._on_query,
                    "cancel": self._on_cancel, "statement": self._on_statement}
        assert tuple(handlers) == PEER_KINDS
        ctx = self.ctx
        if kind not in handlers:
            raise NodeError(404, f"no peer message {kind!r}")
        try:
            sender, body = unseal(ctx.contract, env, kind, self.guard, me=ctx.name)
        except PeerAuthError as e:
            ctx.metrics.peer_messages.labels(ctx.name, kind, "refused").inc()
            ctx.log(logging.WARNING, f"refused a {kind} message: {e}", kind=kind)
            raise NodeError(403, str(e)) from None
        ctx.metrics.peer_messages.labels(ctx.name, kind, "accepted").inc()
        try:
            answer = handlers[kind](sender, body)
        except STORE_ERRORS as e:  # the peer may try again; never a 500
            ctx.log(logging.ERROR, f"a {kind} message could not be recorded: {type(e).__name__}: {e}", kind=kind)
            raise NodeError(503, f"the node's state cannot be read or written ({type(e).__name__}: {e}); "
                                 f"node {ctx.name} cannot record the message now: try again later; if the state is damaged, "
                                 "its owner must repair it (see /health)") from None
        return seal(ctx.identity, kind + ".reply", answer, ctx.contract.hash, to=sender)

    # -- this node's decision ------------------------------------------------------------------

    def record_decision(self, job_id: str, spec: JobSpec, coordinator: str) -> tuple[Vote, list[str]]:
        """Decide (the one planning of the job at this node), audit it, store the decision and the
        typed job; returns (state, reasons)."""
        ctx = self.ctx
        d = decide(ctx, spec, coordinator, job_id)
        ctx.store.set_decision(job_id, ctx.name, Verdict(d.state, d.reasons))
        ctx.audit.append("policy_decision", {"job_id": job_id, "allowed": d.state is not Vote.DENIED, "reasons": d.reasons,
                                             "by": "policy"})
        if d.job is not None:
            ctx.store.update(job_id, plan=d.job.plan_text, revealed=d.job.revealed, parties=d.job.roles.participants,
                             party_job=d.job)
        elif coordinator == ctx.name:
            ctx.store.update(job_id, parties=[ctx.name])
        return d.state, d.reasons

    def approve(self, job_id: str, accept: bool, reason: str = "") -> None:
        """The owner's decision on a job waiting for it."""
        ctx = self.ctx
        job = self.job(job_id)
        mine = job.decision_of(ctx.name)
        current = mine.state if mine else None
        if current != Vote.AWAITING_APPROVAL and not (accept and current == Vote.ACCEPTED):
            raise NodeError(409, f"job {job_id} is not awaiting this node's approval (it is {job.state})")
        state = Vote.ACCEPTED if accept else Vote.DENIED
        reasons = [] if accept else [f"rejected by the owner of {ctx.name}" + (f": {reason}" if reason else "")]
        ctx.store.set_decision(job_id, ctx.name, Verdict(state, reasons))
        ctx.audit.append("policy_decision", {"job_id": job_id, "allowed": accept, "reasons": reasons, "by": "owner"})
        ctx.log(logging.INFO, f"owner {'approved' if accept else 'rejected'} the job", job_id=job_id)
        if job.coordinator == ctx.name:
            self.later(self.advance, job_id)
            return
        if accept:
            if job.state is S.AWAITING_APPROVAL:
                ctx.store.transition(job_id, S.ACCEPTED, "approved by the owner")
        else:
            ctx.store.transition(job_id, S.DENIED, reasons[0], reasons=reasons)
        try:
            self.send(job.coordinator, "decision", {"job_id": job_id, "state": state, "reasons": reasons})
        except TesseraError as e:
            raise NodeError(502, f"recorded, but the coordinator {job.coordinator} was not told: {e}") from None

    # -- coordinator side ----------------------------------------------------------------------

    def coordinate(self, job_id: str) -> None:
        ctx = self.ctx
        job = self.job(job_id)
        state, _ = self.record_decision(job_id, job.spec, ctx.name)
        job = self.job(job_id)
        if state is Vote.DENIED or job.party_job is None:
            self.advance(job_id)
            return
        ctx.store.transition(job_id, S.PENDING, "asking the other nodes", note="waiting for decisions")
        peers = [p for p in job.parties if p != ctx.name]
        body = {"job_id": job_id, "spec": job.spec_json, "coordinator": ctx.name}

        def ask(peer: str) -> None:
            try:
                answer = self.send(peer, "propose", body)
                ctx.store.set_decision(job_id, peer, Verdict(str(answer.get("state")),
                                                             [str(r) for r in answer.get("reasons", [])]))
            except TesseraError as e:
                ctx.store.set_decision(job_id, peer, Verdict(Vote.UNREACHABLE, [f"{peer}: {e}"]))

        threads = [threading.Thread(target=ask, args=(p,), daemon=True) for p in peers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.advance(job_id)

    def advance(self, job_id: str) -> None:
        """Coordinator: deny, wait, or start, from the decisions gathered so far."""
        ctx = self.ctx
        job = self.job(job_id)
        if job.final or job.state is S.RUNNING:
            return
        decisions = job.decisions
        bad = {p: d for p, d in decisions.items() if d.state in (Vote.DENIED, Vote.UNREACHABLE)}
        mine = job.decision_of(ctx.name)
        if bad or not job.parties or (mine is not None and mine.state == Vote.DENIED):
            reasons = [f"{p}: {r}" for p, d in decisions.items() for r in d.reasons] or ["denied"]
            unreachable = any(d.state == Vote.UNREACHABLE for d in bad.values())
            final = S.FAILED if unreachable and not any(d.state == Vote.DENIED for d in bad.values()) else S.DENIED
            self.finish(job_id, final, reasons)
            self.broadcast_outcome(job_id, final, reasons)
            return
        waiting = [p for p in job.parties if (d := decisions.get(p)) is None or d.state != Vote.ACCEPTED]
        if waiting:
            detail = "waiting for approval by " + ", ".join(waiting)
            if mine is not None and mine.state == Vote.AWAITING_APPROVAL:
                if job.state is not S.AWAITING_APPROVAL:
                    ctx.store.transition(job_id, S.AWAITING_APPROVAL, detail)
            elif job.state is not S.PENDING:
                ctx.store.transition(job_id, S.PENDING, detail)
            else:
                ctx.store.update(job_id, progress={**job.progress, "detail": detail})
            return
        if job.state is not S.ACCEPTED and ctx.store.transition(job_id, S.ACCEPTED, "every node accepted",
                                                                note="waiting for a slot"):
            threading.Thread(target=self.guarded, args=(self.launch, job_id), daemon=True,
                             name=f"launch-{job_id}").start()

    def resume(self, job_id: str) -> None:
        """Coordinator after a restart: ask again every party whose decision it does not hold
        (a *decision* sent while this node was down is lost; the party answers the repeated
        *propose* with the decision it recorded), then go on as :meth:`advance` does. A party that
        cannot be reached now keeps the decision recorded before (its *decision* may still come)."""
        ctx = self.ctx
        job = self.job(job_id)
        body = {"job_id": job_id, "spec": job.spec_json, "coordinator": ctx.name}
        for p in job.parties:
            known = job.decisions.get(p)
            if p == ctx.name or (known is not None and known.state in (Vote.ACCEPTED, Vote.DENIED)):
                continue
            try:
                answer = self.send(p, "propose", body)
            except TesseraError as e:
                ctx.log(logging.WARNING, f"could not ask {p} again for its decision: {e}", job_id=job_id, peer=p)
                continue
            ctx.store.set_decision(job_id, p, Verdict(str(answer.get("state")),
                                                      [str(r) for r in answer.get("reasons", [])]))
        self.advance(job_id)

    def broadcast_outcome(self, job_id: str, state: JobState, reasons: list[str]) -> None:
        for p in self.job(job_id).parties:
            if p == self.ctx.name:
                continue
            try:
                self.send(p, "outcome", {"job_id": job_id, "state": state.value, "reasons": reasons, "final": True})
            except TesseraError as e:
                self.ctx.log(logging.WARNING, f"could not tell {p} the outcome: {e}", job_id=job_id, peer=p)

    def launch(self, job_id: str) -> None:
        """Coordinator: wait for a slot, collect ports, draw the nonce, start every party."""
        ctx = self.ctx
        while not self.slots.acquire(timeout=0.5):
            if ctx.stopping.is_set():
                return
        handed_over = False
        try:
            job = self.job(job_id)
            if job.state is not S.ACCEPTED:
                return
            ports = {ctx.name: self.runner.prepare(job_id)} if ctx.name in job.parties else {}
            answers = self._ask_peers(job_id, [p for p in job.parties if p != ctx.name], "prepare", {"job_id": job_id})
            ports.update({p: int(a["port"]) for p, a in answers.items()})
            ports = {p: ports[p] for p in job.parties}
            nonce = new_nonce()
            body = {"job_id": job_id, "nonce": nonce, "ports": ports}
            # the session's endpoints first (in parallel, this node's own party with them), then
            # the input-only owners: they connect to the compute parties, which must be running
            roles = job.party_job.roles if job.party_job is not None else None
            first = [p for p in job.parties if roles is None or p not in roles.input_only]
            for phase in (first, [p for p in job.parties if p not in first]):
                self._start_peers(job_id, [p for p in phase if p != ctx.name], body)
                if ctx.name in phase:
                    self.start(job_id, nonce, ports, release_slot=True)
                    handed_over = True
        except TesseraError as e:
            if handed_over:  # this node's party runs: abort it and every party started
                self.later(self._abort_everywhere, job_id, f"could not start the job: {e}")
                return
            if self.job(job_id).state is S.CANCELLED:  # withdrawn while it was being started
                return
            reasons = [f"could not start the job: {e}"]
            self.finish(job_id, S.FAILED, reasons)
            self.broadcast_outcome(job_id, S.FAILED, reasons)
        finally:
            if not handed_over:
                self.runner.free_port(job_id)
                self.slots.release()

    def _start_peers(self, job_id: str, peers: list[str], body: dict[str, Any]) -> None:
        """Send *start* to ``peers`` in parallel; raises the first failure (after all were tried)."""
        self._ask_peers(job_id, peers, "start", body)

    def _ask_peers(self, job_id: str, peers: list[str], kind: str, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Send ``kind`` to ``peers`` in parallel; their answers, or the first failure (raised
        after every peer was tried)."""
        errors: list[TesseraError] = []
        answers: dict[str, dict[str, Any]] = {}

        def one(p: str) -> None:
            try:
                answers[p] = self.send(p, kind, body)
            except TesseraError as e:
                errors.append(e)

        threads = [threading.Thread(target=one, args=(p,), daemon=True, name=f"{kind}-{job_id}-{p}") for p in peers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return answers

    def start(self, job_id: str, nonce: str, ports: dict[str, int], release_slot: bool) -> None:
        job = self.job(job_id)
        session_id = session_id_for(self.ctx.contract.hash, job.job_hash, nonce)
        self.runner.start(job_id, nonce, session_id, ports, release_slot)

    def finish(self, job_id: str, state: JobState, reasons: list[str], **fields: Any) -> None:
        """Record a final state here and, at a peer whose job was running, tell the coordinator."""
        ctx = self.ctx
        job = ctx.store.get(job_id)
        if job is None:
            return
        if not ctx.store.transition(job_id, state, "; ".join(reasons) if reasons else state.value, reasons=reasons,
                                    **fields):
            return
        ctx.metrics.finished(state.value, time.time() - job.created)
        ctx.log(logging.INFO if state in (S.RELEASED, S.CONTRIBUTED) else logging.WARNING, f"job {state}",
                job_id=job_id, state=state.value, reasons=reasons)
        self._after_abort(job, state)
        if job.coordinator != ctx.name and job.state is S.RUNNING:
            if not self.report_outcome(job_id, state, reasons):
                self.later(self.reconcile, [job_id])  # keep reporting until the coordinator answers
        elif job.coordinator == ctx.name and job.state is S.RUNNING:
            self.converge(job_id)

    # -- cancelling ------------------------------------------------------------------------------

    def cancel(self, job_id: str, by: str, reason: str = "") -> None:
        """Coordinator: withdraw a job that has not run (``cancelled`` here at once, then at every
        party), or abort a running one at every party (each node ends its party process and
        records ``aborted`` with the reason; :meth:`Runner.cancel`). 409 for a job that has ended,
        or that another node coordinates."""
        ctx = self.ctx
        job = self.job(job_id)
        if job.coordinator != ctx.name:
            raise NodeError(409, f"job {job_id} is coordinated by node {job.coordinator}: cancel it there")
        if job.final:
            raise NodeError(409, f"job {job_id} has already ended ({job.state.value}): only a job that has not "
                                 "ended can be cancelled")
        why = f"cancelled by {by}" + (f": {reason}" if reason else "")
        ctx.log(logging.WARNING, f"job {why}", job_id=job_id)
        if job.state is S.RUNNING:
            with self.runner.lock:  # recorded now: the view and the watcher know it is being cancelled
                self.runner.cancelled[job_id] = why
            self.later(self._abort_everywhere, job_id, why)
        elif self.cancel_here(job_id, why) is S.RUNNING:  # it started meanwhile
            self.later(self._abort_everywhere, job_id, why)
        else:
            self.later(self._tell_parties, job_id, why)

    def cancel_here(self, job_id: str, why: str) -> JobState:
        """This node's side of a cancel: a job not yet running is ``cancelled`` (its port
        reservation freed); a running one's party process is ended (recorded ``aborted`` by its
        watcher). Returns the state the job was found in (a final state: nothing was done)."""
        ctx = self.ctx
        for _ in range(3):  # the job may move on (accepted -> running) meanwhile: look again
            job = self.job(job_id)
            if job.final:
                return job.state
            if job.state is S.RUNNING:
                self.runner.cancel(job_id, why)
                return S.RUNNING
            if ctx.store.transition(job_id, S.CANCELLED, why, reasons=[f"{ctx.name}: {why}"]):
                self.runner.free_port(job_id)
                ctx.audit.append("job_cancelled", {"job_id": job_id, "reasons": [f"{ctx.name}: {why}"]})
                ctx.metrics.finished(S.CANCELLED.value, time.time() - job.created)
                return job.state
        return self.job(job_id).state

    def _tell_parties(self, job_id: str, why: str) -> None:
        """Send *cancel* to every other party of the job, in parallel (best effort: logged)."""
        def tell(p: str) -> None:
            try:
                self.send(p, "cancel", {"job_id": job_id, "reason": why})
            except TesseraError as e:
                self.ctx.log(logging.WARNING, f"could not tell {p} the job was cancelled: {e}", job_id=job_id, peer=p)

        threads = [threading.Thread(target=tell, args=(p,), daemon=True)
                   for p in self.job(job_id).parties if p != self.ctx.name]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def _abort_everywhere(self, job_id: str, why: str) -> None:
        """A running job: the other parties first (so each records the cancel as the reason, not
        the closed links), then this node's own party process."""
        self._tell_parties(job_id, why)
        self.cancel_here(job_id, why)

    # -- one outcome everywhere -------------------------------------------------------------------

    def report_outcome(self, job_id: str, state: JobState, reasons: list[str]) -> bool:
        """Peer: report this node's outcome to the coordinator and adopt the outcome it answers
        with (the one agreed so far). Returns whether the coordinator answered."""
        job = self.job(job_id)
        body: dict[str, Any] = {"job_id": job_id, "state": state.value, "reasons": reasons}
        if self.ctx.name in job.sealed:  # this party's sealed output shares, for the analysts
            body["sealed"] = job.sealed[self.ctx.name]
        try:
            answer = self.send(job.coordinator, "outcome", body)
        except TesseraError as e:
            self.ctx.log(logging.WARNING, f"could not report the outcome to the coordinator: {e}", job_id=job_id)
            return False
        agreed = answer.get("agreed")
        if isinstance(agreed, dict) and agreed.get("state") in {s.value for s in FINAL_STATES}:
            self.adopt(job_id, JobState(str(agreed["state"])), [str(r) for r in agreed.get("reasons", [])],
                       job.coordinator)
        return True

    def agreed(self, job_id: str) -> tuple[JobState, list[str]] | None:
        """Coordinator: the job's outcome agreed so far (this node's and the parties' reports),
        with the reasons of the parties whose outcome it is; None before any outcome."""
        job = self.job(job_id)
        # only the session's endpoints decide: an input-only owner's report is its part only
        deciders = None if job.party_job is None else set(job.party_job.roles.endpoints)
        reports: dict[str, tuple[JobState, list[str]]] = {
            p: (JobState(o.state), list(o.reasons)) for p, o in job.outcomes.items()
            if o.state in {s.value for s in FINAL_STATES} and (deciders is None or p in deciders)}
        if job.final and (deciders is None or self.ctx.name in deciders):
            reports[self.ctx.name] = (job.state, list(job.reasons))
        state = agreed_outcome([s for s, _ in reports.values()])
        if state is None:
            return None
        reasons = [r for s, rs in reports.values() if s is state for r in rs]
        return state, reasons

    def converge(self, job_id: str) -> None:
        """Coordinator: move this node's outcome up to the agreed one and tell every party that
        reported a lower one (a party yet to report gets the agreed outcome in the answer)."""
        agreed = self.agreed(job_id)
        if agreed is None:
            return
        state, reasons = agreed
        job = self.job(job_id)
        if job.final:
            self.adopt(job_id, state, reasons, "the parties' reports")
        behind = [p for p in job.parties if p != self.ctx.name and (o := job.outcomes.get(p)) is not None
                  and o.state in {s.value for s in FINAL_STATES} and outranks(state, JobState(o.state))]
        if behind:
            self.later(self._announce, job_id, state, reasons, behind)

    def _announce(self, job_id: str, state: JobState, reasons: list[str], parties: list[str]) -> None:
        for p in parties:
            try:
                self.send(p, "outcome", {"job_id": job_id, "state": state.value, "reasons": reasons, "final": True})
            except TesseraError as e:
                self.ctx.log(logging.WARNING, f"could not tell {p} the agreed outcome: {e}", job_id=job_id, peer=p)

    def adopt(self, job_id: str, state: JobState, reasons: list[str], source: str) -> bool:
        """Move this node's recorded outcome up to ``state`` (never down); audited."""
        ctx = self.ctx
        job = ctx.store.get(job_id)
        if job is None or not job.final or not outranks(state, job.state):
            return False
        why = (f"reconciled: {state.value} by the parties' outcomes (from {source}); this node had recorded "
               f"{job.state.value}")
        if state is S.RELEASED:
            why += ("; an output reached a recipient, so the job counts as released everywhere and its budget is "
                    "spent")
        moved = ctx.store.transition(job_id, state, why, reasons=[*job.reasons, why])
        if moved:
            ctx.audit.append("outcome_reconciled", {"job_id": job_id, "state": state.value, "was": job.state.value,
                                                    "reasons": reasons})
            ctx.log(logging.WARNING, f"job outcome reconciled: {job.state} -> {state}", job_id=job_id)
            self._after_abort(job, state)
        return moved

    def reconcile(self, job_ids: list[str], attempts: int = 30, delay: float = 2.0) -> None:
        """After a restart: settle the outcome of the jobs this node was running with the other
        parties (see the module docstring), retrying while they cannot be reached."""
        pending = list(job_ids)
        for _ in range(attempts):
            left = []
            for job_id in pending:
                job = self.job(job_id)
                if job.coordinator != self.ctx.name:
                    done = self.report_outcome(job_id, job.state, list(job.reasons))
                else:
                    done = self._query_parties(job_id)
                if not done:
                    left.append(job_id)
            pending = left
            if not pending or self.ctx.stopping.wait(delay):
                return

    def _query_parties(self, job_id: str) -> bool:
        """Coordinator after a restart: every party's recorded outcome of the job, then converge."""
        job = self.job(job_id)
        answered = True
        for p in job.parties:
            if p == self.ctx.name:
                continue
            try:
                answer = self.send(p, "query", {"job_id": job_id})
            except TesseraError as e:
                self.ctx.log(logging.WARNING, f"could not ask {p} for the job's outcome: {e}", job_id=job_id, peer=p)
                answered = False
                continue
            state = str(answer.get("state"))
            if state in {s.value for s in FINAL_STATES}:
                self.ctx.store.set_outcome(job_id, p, Verdict(state, [str(r) for r in answer.get("reasons", [])]))
            elif state == S.RUNNING.value:
                answered = False  # its party has not ended yet: ask again
        self.converge(job_id)
        return answered

    # -- input-only owners: the compute parties' abort statements --------------------------------

    def _after_abort(self, job: Job, state: JobState) -> None:
        """An input-only owner's job that ended aborted or failed: collect the compute parties'
        abort statements in the background (:meth:`collect_statements`)."""
        if state in (S.ABORTED, S.FAILED) and job.party_job is not None \
                and self.ctx.name in job.party_job.roles.input_only:
            self.later(self._collect, job.id)

    def _collect(self, job_id: str) -> None:
        self.collect_statements(job_id)

    def collect_statements(self, job_id: str, attempts: int = 60, delay: float = 1.0) -> str | None:
        """Input-only owner: settle a spent charge of an aborted job. Ask every compute node for
        its signed abort statement (asking again, every ``delay`` s up to ``attempts`` times, those
        still running the job or unreachable), then give the charge back only if every statement
        verifies with that party's contract key, else keep it spent (:func:`settle_owner`);
        audited. Returns the charge's state (``released``, ``committed``), or None if no charge
        of the job was spent here (no DP, or nothing had left)."""
        ctx = self.ctx
        job = self.job(job_id)
        if job.party_job is None or ctx.name not in job.party_job.roles.input_only:
            return None
        if not any(st == "committed" for _, st in ctx.ledger.state(job_id)):
            return None
        compute = list(job.party_job.roles.compute)
        statements: dict[str, AbortStatement | None] = {}
        unreachable: dict[str, str] = {}
        pending = list(compute)
        for _ in range(attempts):
            for c in list(pending):
                try:
                    answer = self.send(c, "statement", {"job_id": job_id})
                except TesseraError as e:
                    unreachable[c] = str(e)
                    continue
                if answer.get("state") not in {s.value for s in FINAL_STATES}:
                    continue  # its party is still running the job: ask again
                unreachable.pop(c, None)
                pending.remove(c)
                raw = answer.get("statement")
                try:
                    statements[c] = None if raw is None else AbortStatement.model_validate(raw)
                except ValidationError:
                    statements[c] = AbortStatement(job_id="", party="", signature="")  # checked invalid below
            if not pending or ctx.stopping.wait(delay):
                break
        keys = {c: ctx.contract.party(c).public_key for c in compute}
        checked = check_statements(job_id, statements, keys)
        for c in pending:
            checked[c] = "unreachable" if c in unreachable else "missing"
        dataset = job.party_job.roles.datasets[ctx.name]
        settled = settle_owner(LedgerRef(path=str(ctx.ledger_path), dataset=dataset), job_id,
                               {c: s for c, s in statements.items() if c not in pending}, keys)
        ctx.audit.append(f"budget_{settled}", {"job_id": job_id, "dataset": dataset, "by": "abort_statements",
                                               "statements": checked})
        ctx.log(logging.INFO if settled == "released" else logging.WARNING,
                f"budget {settled} on the compute parties' abort statements: "
                + ", ".join(f"{c} {v}" for c, v in checked.items()), job_id=job_id)
        return settled

    def _on_statement(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        """An input-only owner of a job asks this compute node for its signed statement that the
        job aborted before any output share left: given only if the job has ended here and this
        node's party recorded that it never marked "output started" (else ``statement`` is null)."""
        ctx = self.ctx
        job_id = check_job_id(body.get("job_id"))
        job = self.job(job_id)
        roles = None if job.party_job is None else job.party_job.roles
        if roles is None or sender not in roles.input_only:
            raise NodeError(403, f"{sender!r} is not a data owner of job {job_id} that only inputs")
        if ctx.name not in roles.compute:
            raise NodeError(409, f"node {ctx.name} is not a compute party of job {job_id}")
        statement = None
        if job.final and job.state is not S.RELEASED:
            statement = sign_abort(BarrierRecord(self.runner.barrier_path(job_id)), IdentityKey(ctx.identity),
                                   job_id, ctx.name)
        return {"state": job.state.value, "statement": None if statement is None else statement.model_dump()}

    # -- messages from peers -------------------------------------------------------------------

    def _on_propose(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        ctx = self.ctx
        job_id, coordinator = check_job_id(body.get("job_id")), body.get("coordinator")
        if coordinator != sender:
            raise NodeError(403, f"{sender!r} proposes a job coordinated by {coordinator!r}")
        try:
            spec = JobSpec.model_validate(body.get("spec"))
        except ValidationError as e:
            return {"state": Vote.DENIED.value, "reasons": [f"invalid job: {e.errors()[0]['msg']}"]}
        existing = ctx.store.get(job_id)
        if existing is not None:
            if existing.coordinator != sender or existing.job_hash != spec.hash:
                raise NodeError(409, f"job {job_id} is known here with another coordinator or content")
            mine = existing.decision_of(ctx.name) or Verdict(existing.state.value)
            return mine.plain()
        ctx.store.create(job_id, spec.model_dump(mode="json"), spec.hash, sender, [sender, ctx.name],
                         detail=f"proposed by {sender} for analyst {spec.analyst}")
        ctx.audit.append("job_received", {"job_id": job_id, "job_hash": spec.hash, "analyst": spec.analyst,
                                          "analysis": spec.analysis, "coordinator": sender})
        state, reasons = self.record_decision(job_id, spec, sender)
        detail = "; ".join(reasons) if reasons else {Vote.ACCEPTED: "accepted by policy",
                                                     Vote.AWAITING_APPROVAL: "waiting for the owner's approval"}[state]
        ctx.store.transition(job_id, JobState(state.value), detail, note=detail, reasons=reasons)
        ctx.log(logging.INFO, f"decided on a proposed job: {state}", job_id=job_id, peer=sender, state=state)
        if state is Vote.DENIED:
            ctx.metrics.finished(S.DENIED.value, 0.0)
        return {"state": state.value, "reasons": reasons}

    def _on_decision(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id = check_job_id(body.get("job_id"))
        job = self.job(job_id)
        if job.coordinator != self.ctx.name or sender not in job.parties:
            raise NodeError(403, f"{sender!r} may not decide on job {job_id} here")
        state = body.get("state")
        if state not in (Vote.ACCEPTED, Vote.DENIED):
            raise NodeError(422, f"a decision is accepted or denied, not {state!r}")
        self.ctx.store.set_decision(job_id, sender, Verdict(str(state), _reasons(body)))
        self.later(self.advance, job_id)
        return {"ok": True}

    def _on_prepare(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id = check_job_id(body.get("job_id"))
        job = self.job(job_id)
        if job.coordinator != sender:
            raise NodeError(403, f"only the coordinator of job {job_id} may start it")
        if job.state is not S.ACCEPTED:
            raise NodeError(409, f"job {job_id} is {job.state} here, not accepted")
        return {"port": self.runner.prepare(job_id)}

    def _on_start(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id = check_job_id(body.get("job_id"))
        job = self.job(job_id)
        if job.coordinator != sender:
            raise NodeError(403, f"only the coordinator of job {job_id} may start it")
        nonce, ports = str(body.get("nonce", "")), body.get("ports")
        if len(nonce) != 32 or not isinstance(ports, dict) or set(ports) != set(job.parties):
            raise NodeError(422, "a start message needs a 128-bit nonce and a port for every party")
        self.start(job_id, nonce, _ports(ports), release_slot=False)
        return {"ok": True}

    def _on_outcome(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        job_id = check_job_id(body.get("job_id"))
        job = self.job(job_id)
        if sender not in job.parties:
            raise NodeError(403, f"{sender!r} is not a party of job {job_id}")
        state = str(body.get("state"))
        reasons = _reasons(body)
        if state not in {s.value for s in FINAL_STATES}:
            raise NodeError(422, f"{state!r} is not a final state")
        if body.get("final") and sender == job.coordinator:
            if job.final:
                self.adopt(job_id, JobState(state), reasons, sender)
            elif job.state is not S.RUNNING:
                self.finish(job_id, JobState(state), reasons)
            return {"ok": True}
        boxes = _sealed_boxes(job, sender, body["sealed"]) if "sealed" in body else None
        self.ctx.store.set_outcome(job_id, sender, Verdict(state, reasons))
        if boxes is not None and job.coordinator == self.ctx.name:
            self.ctx.store.add_sealed(job_id, sender, boxes)
        if job.coordinator != self.ctx.name:
            return {"ok": True}
        self.converge(job_id)
        agreed = self.agreed(job_id)
        return {"ok": True} if agreed is None else {"ok": True, "agreed": {"state": agreed[0].value,
                                                                           "reasons": agreed[1]}}

    def _on_cancel(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        """The coordinator cancels the job: withdrawn here, or its party process ended."""
        job_id = check_job_id(body.get("job_id"))
        job = self.job(job_id)
        if job.coordinator != sender:
            raise NodeError(403, f"only the coordinator of job {job_id} may cancel it")
        reason = body.get("reason", "cancelled")
        if not isinstance(reason, str) or not reason or len(reason) > 1000:
            raise NodeError(422, "the reason of a cancel message is text (1 to 1000 characters)")
        self.cancel_here(job_id, f"{reason} (told by the coordinator {sender})")
        return {"state": self.job(job_id).state.value}

    def _on_query(self, sender: str, body: dict[str, Any]) -> dict[str, Any]:
        """A party of the job asks for this node's recorded state of it (after its restart)."""
        job_id = check_job_id(body.get("job_id"))
        job = self.job(job_id)
        if sender not in job.parties:
            raise NodeError(403, f"{sender!r} is not a party of job {job_id}")
        return {"state": job.state.value, "reasons": list(job.reasons)}


def _sealed_boxes(job: Job, sender: str, boxes: Any) -> dict[str, str]:
    """A party's sealed output shares from its outcome report: a box (text) for analysts the job
    seals to, nothing else (422 otherwise). Opaque here: only the analysts' keys open them."""
    sealed_to = job.party_job.roles.recipients.sealed if job.party_job is not None else {}
    if not isinstance(boxes, dict) or not all(isinstance(a, str) and isinstance(b, str) for a, b in boxes.items()):
        raise NodeError(422, f"{sender!r} sent sealed shares that are not analyst -> box text")
    stray = sorted(a for a in boxes if a not in sealed_to)
    if stray:
        raise NodeError(422, f"{sender!r} sent sealed shares for {stray}, to whom job {job.id} seals nothing")
    return dict(boxes)
