"""Running this node's party of a job: MPC ports, the party process (started and read through the
same launcher as the local cluster, :mod:`tessera.runtime.launcher`), this node's outcome, and the
budget sweep that keeps no reservation alive past its job.

A node runs one ``tessera.jobs.party`` process (forked by the launcher) per running job, handed
the typed job planned when this node decided (never planned again), its data and its ledger. The process's
report (:class:`~tessera.jobs.model.JobReport`) decides the outcome: ``released``, or the
failure's one classification, ``aborted`` or ``failed``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tessera.errors import TesseraError, TransportError
from tessera.governance.ledger import pid_alive
from tessera.jobs.model import JobReport, LedgerRef, PartyJob, PartyLaunch
from tessera.node.context import NodeContext, NodeError
from tessera.node.datasources import data_for_job
from tessera.node.states import FINAL_STATES, JobState, running_fraction
from tessera.node.store import Job
from tessera.protocols import session_protocol
from tessera.runtime.config import EndpointSpec, PartyConfig
from tessera.runtime.forkserver import ForkedProcess
from tessera.runtime.launcher import listen, read_report, start

__all__ = ["Runner", "PARTY_ENTRY"]

#: the module every job's party process runs
PARTY_ENTRY = "tessera.jobs.party"

#: records a final state of a job here (and tells the coordinator): (job id, state, reasons, fields)
Finish = Callable[..., None]

#: one step of recording an outcome; it may return further steps (run next)
Step = Callable[[], "list[Step] | None"]

#: errors of a store that cannot be written now (read-only, full, locked): retried, never fatal
STORE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, OSError)


def _step(fn: Callable[..., object], *args: Any, **kwargs: Any) -> Step:
    def run() -> None:
        fn(*args, **kwargs)
    return run


class Runner:
    def __init__(self, ctx: NodeContext, finish: Finish, release_slot: Callable[[], None]) -> None:
        self.ctx = ctx
        self.finish = finish
        self.release_slot = release_slot
        self.procs: dict[str, ForkedProcess] = {}
        self.ports: dict[str, int] = {}
        #: the listening socket of each prepared job's port, held until its party process has it
        self.listeners: dict[str, socket.socket] = {}
        #: when (monotonic) each held reservation's lease ends unless a start takes it over
        self.leases: dict[str, float] = {}
        #: jobs whose reservation expired unused (newest last, bounded), so that a late start is told why
        self.lapsed: OrderedDict[str, None] = OrderedDict()
        self.lock = threading.Lock()
        #: job id -> why its outcome is not recorded yet (the store refused the write)
        self.store_problems: dict[str, str] = {}
        #: job id -> why it was cancelled while running (its party process is ended; settled aborted)
        self.cancelled: dict[str, str] = {}

    # -- ports ---------------------------------------------------------------------------------

    def mpc_host(self, party: str) -> str:
        return self.ctx.contract.party(party).address.rsplit(":", 1)[0]

    def prepare(self, job_id: str) -> int:
        """Reserve a free port of this node's MPC range for the job: bound and listening from now
        on and handed to the party process at start, so no other process can take it meanwhile
        (peers that connect early wait in its backlog).

        The reservation is a lease of ``prepare_lease`` seconds (renewed by a repeated prepare):
        without a start in time, the sweep (or the next prepare) frees the port, so prepares that
        are never followed by a start (a crashed or hostile coordinator) cannot use up the range.
        """
        lo, hi = self.ctx.cfg.mpc_ports
        host = self.mpc_host(self.ctx.name)
        self.expire_leases()
        with self.lock:
            if job_id in self.ports:
                if job_id in self.listeners:
                    self.leases[job_id] = time.monotonic() + self.ctx.cfg.prepare_lease
                return self.ports[job_id]
            used = set(self.ports.values())
            for port in range(lo, hi + 1):
                if port in used:
                    continue
                try:
                    sock = listen(host, port)
                except TransportError:
                    continue
                self.ports[job_id] = port
                self.listeners[job_id] = sock
                self.leases[job_id] = time.monotonic() + self.ctx.cfg.prepare_lease
                self.lapsed.pop(job_id, None)
                return port
        raise NodeError(503, f"no free MPC port in {lo}-{hi} at {self.ctx.name}")

    def free_port(self, job_id: str) -> None:
        with self.lock:
            self.ports.pop(job_id, None)
            self.leases.pop(job_id, None)
            sock = self.listeners.pop(job_id, None)
        if sock is not None:
            sock.close()

    def expire_leases(self) -> list[str]:
        """Free every reserved port whose lease ended without a start; returns their job ids."""
        now = time.monotonic()
        with self.lock:
            late = [j for j, end in self.leases.items() if end <= now and j in self.listeners]
            socks = []
            for job_id in late:
                self.ports.pop(job_id, None)
                self.leases.pop(job_id, None)
                socks.append(self.listeners.pop(job_id))
                self.lapsed[job_id] = None
                while len(self.lapsed) > 1024:
                    self.lapsed.popitem(last=False)
        for sock in socks:
            sock.close()
        for job_id in late:
            self.ctx.log(logging.WARNING, f"freed the MPC port reserved for the job: no start within "
                         f"{self.ctx.cfg.prepare_lease:g} s", job_id=job_id)
        return late

    @property
    def running(self) -> int:
        with self.lock:
            return len(self.procs)

    # -- a party process -----------------------------------------------------------------------

    def start(self, job_id: str, nonce: str, session_id: str, ports: dict[str, int], release_slot: bool) -> None:
        """Launch this node's party of an accepted job (the job planned when this node decided)."""
        ctx = self.ctx
        job = ctx.store.get(job_id)
        if job is None:
            raise NodeError(404, f"no job {job_id!r} at node {ctx.name}")
        if job.state is not JobState.ACCEPTED:
            raise NodeError(409, f"job {job_id} is {job.state} here, not accepted")
        if ctx.stopping.is_set():
            raise NodeError(503, "the node is shutting down")
        if job.party_job is None:
            raise NodeError(409, f"job {job_id} was never planned at {ctx.name}")
        self.expire_leases()
        with self.lock:
            listener = self.listeners.pop(job_id, None)
            self.leases.pop(job_id, None)
            lapsed = listener is None and job_id in self.lapsed
        if lapsed:
            raise NodeError(409, f"the MPC port {ctx.name} reserved for job {job_id} was freed: no start came within "
                                 f"prepare_lease ({ctx.cfg.prepare_lease:g} s) of prepare; prepare the job again")
        workdir = ctx.job_dir(job_id)
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            launch = self._launch_file(job.party_job, session_id, ports, workdir,
                                       None if listener is None else listener.fileno())
            launch.save(workdir / "party.json")
        except Exception as e:
            # engine errors may quote data: name their kind only
            why = f"{type(e).__name__}: {e}" if isinstance(e, TesseraError) else type(e).__name__
            reasons = [f"{ctx.name}: could not prepare its data for the job ({why})"]
            if listener is not None:
                listener.close()
            self.free_port(job_id)
            self.finish(job_id, JobState.FAILED, reasons)
            raise NodeError(500, reasons[0]) from None
        if not ctx.store.transition(job_id, JobState.RUNNING, f"session {session_id[:12]}... started",
                                    note="secure computation", nonce=nonce, session_id=session_id, ports=ports):
            if listener is not None:
                listener.close()
            self.free_port(job_id)
            now = ctx.store.get(job_id)  # it moved meanwhile (cancelled)
            raise NodeError(409, f"job {job_id} is {now.state.value if now else 'gone'} here, not accepted")
        ctx.audit.append("session_start", {"job_id": job_id, "session_id": session_id, "nonce": nonce,
                                           "contract_hash": ctx.contract.hash, "job_hash": job.job_hash,
                                           "parties": job.party_job.roles.endpoints,
                                           "role": "compute" if ctx.name in job.party_job.roles.compute
                                           else "owner" if ctx.name in job.party_job.roles.input_only else "dealer",
                                           "input_only": job.party_job.roles.input_only})
        proc = start(PARTY_ENTRY, workdir / "party.json", workdir / "party.log", listener=listener)
        with self.lock:
            self.procs[job_id] = proc
            cancelled = job_id in self.cancelled
        if cancelled:  # cancelled while it was being started
            proc.terminate()
        ctx.log(logging.INFO, "party process started", job_id=job_id, pid=proc.pid, port=ports[ctx.name])
        threading.Thread(target=self._watch, args=(job, proc, release_slot), daemon=True,
                         name=f"watch-{job_id}").start()

    def _launch_file(self, job: PartyJob, session_id: str, ports: dict[str, int], workdir: Path,
                     listen_fd: int | None) -> PartyLaunch:
        ctx = self.ctx
        roles = job.roles
        linked = roles.linked(ctx.name, vertical=job.partition == "vertical")
        endpoints = [EndpointSpec(name=p, host=self.mpc_host(p), port=ports[p],
                                  fingerprint=ctx.contract.party(p).fingerprint) for p in linked]
        data, ledger = None, None
        if ctx.name in roles.data_owners:
            dataset = roles.datasets[ctx.name]
            data = data_for_job(ctx.cfg, dataset, workdir)
            if job.dp is not None:
                ledger = LedgerRef(path=str(ctx.ledger_path), dataset=dataset)
        endpoint = PartyConfig(name=ctx.name, endpoints=endpoints, parties=roles.compute,
                               protocol=session_protocol(job.protocol, roles.preprocessing.source),
                               identity_dir=str(ctx.cfg.path(ctx.cfg.identity_dir)), session_id=session_id,
                               frac_bits=job.frac_bits, timeout=ctx.cfg.recv_timeout,
                               result_path=str(workdir / "result.json"), progress_path=str(workdir / "progress.json"),
                               listen_fd=listen_fd)
        # a compute party of a job with input-only owners keeps a durable record of whether it
        # marked "output started": its node signs an abort statement from it (tessera.jobs.outcome)
        record = str(self.barrier_path(job.job_id)) if roles.input_only and ctx.name in roles.compute else None
        return PartyLaunch(endpoint=endpoint, job=job, data=data, ledger=ledger, barrier_record=record)

    def barrier_path(self, job_id: str) -> Path:
        """Where this node's party of a job with input-only owners records whether it marked
        "output started" (:class:`tessera.jobs.outcome.BarrierRecord`)."""
        return self.ctx.job_dir(job_id) / "barrier"

    def _watch(self, job: Job, proc: ForkedProcess, release_slot: bool) -> None:
        """Wait for the party process, then record this node's outcome (:meth:`settle`), retrying
        while the store cannot be written: the job ends in a recorded state once it can."""
        workdir = self.ctx.job_dir(job.id)
        try:
            report: JobReport | None = None
            try:
                try:
                    proc.wait(self.ctx.cfg.job_timeout)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                raw = read_report(workdir / "result.json")
                report = None if raw is None else JobReport.of(raw)
            except Exception as e:  # an unreadable report: settled as a process without one
                self.ctx.log(logging.ERROR, f"reading the party process's report failed: {type(e).__name__}",
                             job_id=job.id)
            try:
                self.settle(job, proc.returncode, report)
            except Exception as e:
                self.ctx.log(logging.ERROR, f"settling the job failed: {type(e).__name__}: {e}", job_id=job.id)
                reasons = [f"node {self.ctx.name}: {type(e).__name__}: {e}"]
                self._record(job.id, [lambda: self.finish(job.id, JobState.FAILED, reasons)])
        finally:
            with self.lock:
                self.procs.pop(job.id, None)
            self.free_port(job.id)
            if release_slot:
                self.release_slot()
            (workdir / "data.parquet").unlink(missing_ok=True)  # a SQL source's copy of the rows

    def settle(self, job: Job, returncode: int | None, report: JobReport | None) -> None:
        """Record this node's outcome of a job whose party process ended: budgets settled and
        audited, then the final state. Each step is retried while the store (or the ledger, or
        the audit log) cannot be written, and a step done is not done again (:meth:`_record`)."""
        ctx, job_id = self.ctx, job.id
        assert job.party_job is not None
        roles = job.party_job.roles

        def budgets() -> list[Step]:
            self.sweep(audited_here=job_id)
            return [_step(ctx.audit.append, f"budget_{st}", {"job_id": job_id, "dataset": dataset})
                    for dataset, st in ctx.ledger.state(job_id) if st in ("committed", "released")]

        with self.lock:
            cancelled = self.cancelled.pop(job_id, None)
        steps: list[Step] = [budgets]
        if report is not None and report.ok and report.result is not None and ctx.name in roles.input_only:
            # an owner that only inputs: its shares are sent, its part is done (it may go offline);
            # the job's outcome is the compute parties' (its budget: committed by its party process)
            ctx.metrics.comm(report.bytes_sent, report.rounds)
            to = ", ".join(roles.compute)
            steps.append(_step(ctx.audit.append, "session_end", {"job_id": job_id, "state": "contributed",
                                                                 "shares_to": list(roles.compute)}))
            steps.append(_step(self.finish, job_id, JobState.CONTRIBUTED,
                               [f"{ctx.name}: its shares were sent to {to}; the result is theirs"],
                               comm={"bytes_sent": report.bytes_sent, "rounds": report.rounds},
                               seconds=report.seconds))
            self._record(job_id, steps)
            return
        if report is not None and report.ok and report.result is not None:
            result = report.result
            comm = {"bytes_sent": report.bytes_sent, "rounds": report.rounds}
            ctx.metrics.comm(report.bytes_sent, report.rounds)
            if result.transcript:
                steps.append(_step(ctx.audit.append, "transcript_hash", {"job_id": job_id, "hash": result.transcript}))
            outputs = result.outputs if ctx.name in roles.recipients.parties else None
            if result.sealed:  # boxes only the analysts open: kept (and passed on), never the values
                steps.append(_step(ctx.store.add_sealed, job_id, ctx.name, dict(result.sealed)))
                steps.append(_step(ctx.audit.append, "output_released", {
                    "job_id": job_id, "to": sorted(result.sealed), "sealed": True, "outputs": list(job.party_job.revealed)}))
            if outputs is not None:
                steps.append(_step(ctx.audit.append, "output_released", {
                    "job_id": job_id, "to": job.spec_json["recipients"], "outputs": sorted(outputs)}))
            steps.append(_step(ctx.audit.append, "session_end", {"job_id": job_id, "state": "released"}))
            steps.append(_step(self.finish, job_id, JobState.RELEASED, [], result=outputs, comm=comm,
                               seconds=report.seconds))
            self._record(job_id, steps)
            return
        if cancelled is not None:
            state, reasons = JobState.ABORTED, [f"{ctx.name}: {cancelled}"]
        elif report is None or report.failure is None:
            why = "the node shut down during the job" if ctx.stopping.is_set() else \
                f"the party process ended without a report (exit code {returncode})"
            state, reasons = JobState.ABORTED, [f"{ctx.name}: {why}"]
        else:
            f = report.failure
            state = JobState.ABORTED if f.kind == "aborted" else JobState.FAILED
            reasons = [f"{ctx.name}: {f.error}: {f.message}"]
        steps.append(_step(ctx.audit.append, "job_aborted", {"job_id": job_id, "state": state.value, "reasons": reasons}))
        steps.append(_step(ctx.audit.append, "session_end", {"job_id": job_id, "state": state.value}))
        steps.append(_step(self.finish, job_id, state, reasons))
        self._record(job_id, steps)

    def cancel(self, job_id: str, why: str) -> None:
        """End the party process of a running job (SIGTERM); its watcher records the job
        ``aborted`` with ``why`` and settles the budget like any abort (released, or committed if
        an output share had left). A process not started yet is ended as soon as it is."""
        with self.lock:
            self.cancelled[job_id] = why
            proc = self.procs.get(job_id)
        if proc is not None:
            self.ctx.log(logging.WARNING, "ending the party process of a cancelled job", job_id=job_id, pid=proc.pid)
            proc.terminate()  # a process that has ended already is left alone

    def _record(self, job_id: str, steps: list[Step]) -> None:
        """Run ``steps`` in order (a step may return more steps, run next). A step that fails on
        the store (SQLite or file-system errors: read-only, full, locked) is retried with backoff
        (0.2 s doubling to 10 s) until it succeeds or the node stops (then the job is recovered as
        ``aborted`` at the next start); meanwhile :meth:`problems` (and ``/health``) and the log
        say what is wrong."""
        queue = deque(steps)
        delay = 0.2
        while queue:
            try:
                more = queue[0]()
            except STORE_ERRORS as e:
                problem = (f"the node's store cannot be written ({type(e).__name__}: {e}); the outcome of job "
                           f"{job_id} will be recorded as soon as it can be")
                with self.lock:
                    first = job_id not in self.store_problems
                    self.store_problems[job_id] = problem
                if first:
                    self.ctx.log(logging.ERROR, problem, job_id=job_id)
                if self.ctx.stopping.wait(delay):
                    self.ctx.log(logging.ERROR, "the node stops with the job's outcome unrecorded; it is recorded "
                                 "aborted at the next start", job_id=job_id)
                    return
                delay = min(delay * 2, 10.0)
                continue
            queue.popleft()
            if more:
                queue.extendleft(reversed(more))
        with self.lock:
            recovered = self.store_problems.pop(job_id, None) is not None
        if recovered:
            self.ctx.log(logging.WARNING, "the store takes writes again; the job's outcome is recorded", job_id=job_id)

    def problems(self) -> list[str]:
        """What is wrong with this node now (for ``/health``): outcomes the store did not take yet."""
        with self.lock:
            return sorted(set(self.store_problems.values()))

    def progress(self, job_id: str, progress: dict[str, Any]) -> dict[str, Any]:
        """A running job's progress with the party process's figures so far, if it wrote any:
        its stage, rounds, bytes and seconds, and the job's fraction (:func:`running_fraction`
        of the party's own: between the ``running`` state's and 1.0, which only release reaches)."""
        try:
            figures = json.loads((self.ctx.job_dir(job_id) / "progress.json").read_text())
            rounds, sent, seconds = int(figures["rounds"]), int(figures["bytes_sent"]), float(figures["seconds"])
            own = float(figures.get("fraction", 0.0))
            stage = str(figures.get("stage") or "secure computation")
        except (OSError, ValueError, KeyError, TypeError):
            return progress
        detail = f"{stage}: {rounds} rounds, {sent / 1e6:.1f} MB sent, {seconds:.0f} s"
        return {**progress, "detail": detail, "stage": stage, "fraction": running_fraction(own), "rounds": rounds,
                "bytes_sent": sent, "seconds": seconds}

    # -- budgets -------------------------------------------------------------------------------

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
        ctx = self.ctx
        with self.lock:
            children = {p.pid for p in self.procs.values()}
        for job_id, owners in ctx.ledger.reserved().items():
            job = ctx.store.get(job_id)
            if job is not None and job.state not in FINAL_STATES:
                continue
            for owner in owners:
                pid = int(owner[4:].partition(":")[0]) if owner.startswith("pid:") else None
                if pid is None or pid in children or pid == os.getpid() or not pid_alive(owner):
                    continue
                ctx.log(logging.WARNING, "ending a party process left from an earlier run", job_id=job_id, pid=pid)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
        settled = ctx.ledger.recover()
        for job_id, st in settled.items():
            if job_id != audited_here:
                ctx.audit.append(f"budget_{st}", {"job_id": job_id, "dataset": "*", "by": by})
        return settled

    def sweep_loop(self) -> None:
        """Every ``sweep_interval``: free expired port reservations, settle orphaned budgets."""
        while not self.ctx.stopping.wait(self.ctx.cfg.sweep_interval):
            self.expire_leases()
            if self.ctx.ledger.reserved():
                self.sweep()

    def stop_all(self, grace: float) -> None:
        """End every running party process (its peers abort) and wait for their outcomes."""
        with self.lock:
            procs = dict(self.procs)
        for job_id, p in procs.items():
            self.ctx.log(logging.WARNING, "aborting a running job for shutdown", job_id=job_id)
            p.terminate()
        deadline = time.monotonic() + grace
        for p in procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            with self.lock:
                if not self.procs:
                    break
            time.sleep(0.05)

