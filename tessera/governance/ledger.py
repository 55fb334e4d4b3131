"""The privacy-budget ledger of one node: reserve, commit, release; safe under concurrency.

Behind a small store interface (:class:`BudgetStore`); :class:`SqliteLedger` is the default.
A job's DP cost is *reserved* before any input is shared. The reservation becomes a *commit*
when the job's output is released, or as soon as any share of an output has been sent
(:meth:`mark_output_started`: an abort after that may already have leaked it); it is
*released* only if the job ends before that. Every operation is one ``BEGIN IMMEDIATE``
transaction, so concurrent jobs in threads or processes can never overspend. After a crash,
:meth:`recover` settles the reservations of jobs that are no longer running.

Composition is basic (epsilons and deltas add up); :func:`compose` is the one place to change.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol

from tessera.errors import BudgetExceeded
from tessera.governance.sqlite import transaction

__all__ = ["BudgetStore", "SqliteLedger", "compose", "pid_alive", "process_owner"]


def compose(costs: list[tuple[float, float]]) -> tuple[float, float]:
    """Total (epsilon, delta) of several mechanisms under basic sequential composition."""
    return sum(c[0] for c in costs), sum(c[1] for c in costs)


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state, start time)`` of a process from ``/proc/PID/stat``, or None where there is none."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return ("?", "")
    fields = raw[raw.rindex(")") + 2:].split()  # the command name may hold spaces and parentheses
    return fields[0], fields[19]


def process_owner(pid: int | None = None) -> str:
    """The owner tag of a process: ``pid:N:START`` (START is its start time on this host, so a
    later process that reuses the pid is not taken for it), or ``pid:N`` without ``/proc``."""
    pid = os.getpid() if pid is None else pid
    stat = _proc_stat(pid) if Path("/proc/self/stat").exists() else None
    return f"pid:{pid}:{stat[1]}" if stat else f"pid:{pid}"


def pid_alive(owner: str) -> bool:
    """For owners written as ``pid:N[:START]``: is that very process still running on this host?

    A zombie is not running: a party process whose node was killed is re-parented to init, which
    may take seconds to reap it, and ``kill(pid, 0)`` still succeeds on it until then. A process
    with the same pid but another start time is another process.
    """
    if not owner.startswith("pid:"):
        return True
    pid_text, _, start = owner[4:].partition(":")
    pid = int(pid_text)
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        if stat is None or stat[0] in ("Z", "X", "x"):
            return False
        return not start or not stat[1] or stat[1] == start
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class BudgetStore(Protocol):
    def set_budget(self, dataset: str, epsilon: float, delta: float) -> None: ...
    def reserve(self, job_id: str, dataset: str, epsilon: float, delta: float = 0.0) -> None: ...
    def mark_output_started(self, job_id: str) -> None: ...
    def commit(self, job_id: str) -> None: ...
    def release(self, job_id: str) -> str: ...
    def remaining(self, dataset: str) -> tuple[float, float]: ...
    def reserved(self) -> dict[str, list[str]]: ...
    def recover(self, is_alive: Callable[[str], bool] = pid_alive) -> dict[str, str]: ...


class SqliteLedger:
    """The ledger in a SQLite file (WAL mode), shared safely by threads and processes."""

    def __init__(self, path: str | Path, owner: str | None = None) -> None:
        self.path = str(path)
        self.owner = owner or process_owner()
        with self._tx() as db:
            db.execute("CREATE TABLE IF NOT EXISTS budgets (dataset TEXT PRIMARY KEY, epsilon REAL, delta REAL)")
            db.execute(
                "CREATE TABLE IF NOT EXISTS reservations (job_id TEXT, dataset TEXT, epsilon REAL, delta REAL, "
                "state TEXT CHECK (state IN ('reserved', 'committed', 'released')), output_started INTEGER, "
                "owner TEXT, updated REAL, PRIMARY KEY (job_id, dataset))"
            )

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self.path)

    def set_budget(self, dataset: str, epsilon: float, delta: float = 0.0) -> None:
        """Declare a dataset's total budget (from the contract); keeps what was already spent."""
        with self._tx() as db:
            db.execute("INSERT INTO budgets VALUES (?, ?, ?) ON CONFLICT(dataset) DO UPDATE SET "
                       "epsilon = excluded.epsilon, delta = excluded.delta", (dataset, epsilon, delta))

    @staticmethod
    def _spent(db: sqlite3.Connection, dataset: str) -> tuple[float, float]:
        rows = db.execute("SELECT epsilon, delta FROM reservations WHERE dataset = ? AND state != 'released'",
                          (dataset,)).fetchall()
        return compose([(float(e), float(d)) for e, d in rows])

    def reserve(self, job_id: str, dataset: str, epsilon: float, delta: float = 0.0) -> None:
        """Reserve ``(epsilon, delta)`` of ``dataset`` for ``job_id``, or raise BudgetExceeded."""
        with self._tx() as db:
            row = db.execute("SELECT epsilon, delta FROM budgets WHERE dataset = ?", (dataset,)).fetchone()
            if row is None:
                raise BudgetExceeded(f"dataset {dataset!r} has no privacy budget")
            eps_spent, delta_spent = self._spent(db, dataset)
            if eps_spent + epsilon > row[0] + 1e-12 or delta_spent + delta > row[1] + 1e-15:
                raise BudgetExceeded(
                    f"dataset {dataset!r}: job {job_id} asks epsilon {epsilon:g}, delta {delta:g}; "
                    f"remaining epsilon {row[0] - eps_spent:g}, delta {row[1] - delta_spent:g}"
                )
            db.execute("INSERT INTO reservations VALUES (?, ?, ?, ?, 'reserved', 0, ?, ?)",
                       (job_id, dataset, epsilon, delta, self.owner, time.time()))

    def mark_output_started(self, job_id: str) -> None:
        """An output share has been sent: the reservation can no longer be released."""
        with self._tx() as db:
            db.execute("UPDATE reservations SET output_started = 1, updated = ? WHERE job_id = ?",
                       (time.time(), job_id))

    def commit(self, job_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE reservations SET state = 'committed', updated = ? WHERE job_id = ? "
                       "AND state = 'reserved'", (time.time(), job_id))

    def release(self, job_id: str) -> str:
        """Give a reservation back, unless output was started (then it is committed). Returns
        the resulting state."""
        with self._tx() as db:
            rows = db.execute("SELECT output_started FROM reservations WHERE job_id = ? AND state = 'reserved'",
                              (job_id,)).fetchall()
            if not rows:
                return "none"
            state = "committed" if any(r[0] for r in rows) else "released"
            db.execute("UPDATE reservations SET state = ?, updated = ? WHERE job_id = ? AND state = 'reserved'",
                       (state, time.time(), job_id))
            return state

    def refund(self, job_id: str) -> str:
        """Give back a spent charge of an input-only data owner, on the signed word of every compute
        party that the job aborted before any output share left (checked by the caller:
        :func:`tessera.jobs.outcome.settle_owner`). Returns the resulting state."""
        with self._tx() as db:
            n = db.execute("UPDATE reservations SET state = 'released', updated = ? WHERE job_id = ? "
                           "AND state != 'released'", (time.time(), job_id)).rowcount
        return "released" if n else "none"

    def remaining(self, dataset: str) -> tuple[float, float]:
        with self._tx() as db:
            row = db.execute("SELECT epsilon, delta FROM budgets WHERE dataset = ?", (dataset,)).fetchone()
            if row is None:
                return (0.0, 0.0)
            eps, delta = self._spent(db, dataset)
            return (row[0] - eps, row[1] - delta)

    def state(self, job_id: str) -> list[tuple[str, str]]:
        with self._tx() as db:
            return db.execute("SELECT dataset, state FROM reservations WHERE job_id = ?", (job_id,)).fetchall()

    def reserved(self) -> dict[str, list[str]]:
        """The jobs that still hold a reservation, with the owners that made them."""
        with self._tx() as db:
            rows = db.execute("SELECT DISTINCT job_id, owner FROM reservations WHERE state = 'reserved'").fetchall()
        out: dict[str, list[str]] = {}
        for job_id, owner in rows:
            out.setdefault(job_id, []).append(owner)
        return out

    def recover(self, is_alive: Callable[[str], bool] = pid_alive) -> dict[str, str]:
        """Settle reservations whose owner is gone: commit if output had started, else release.

        Safe to call at any time and as often as wanted (a node sweeps with it): a reservation
        whose owner still runs is left to that owner, which commits or releases it itself.
        """
        settled: dict[str, str] = {}
        with self._tx() as db:
            rows = db.execute("SELECT job_id, owner, output_started FROM reservations WHERE state = 'reserved'").fetchall()
            jobs: dict[str, tuple[set[str], bool]] = {}
            for job_id, owner, started in rows:
                owners, any_started = jobs.get(job_id, (set(), False))
                jobs[job_id] = (owners | {owner}, any_started or bool(started))
            for job_id, (owners, started) in jobs.items():
                if any(is_alive(o) for o in owners):
                    continue
                state = "committed" if started else "released"
                db.execute("UPDATE reservations SET state = ?, updated = ? WHERE job_id = ? AND state = 'reserved'",
                           (state, time.time(), job_id))
                settled[job_id] = state
        return settled
