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

__all__ = ["BudgetStore", "SqliteLedger", "compose", "pid_alive"]


def compose(costs: list[tuple[float, float]]) -> tuple[float, float]:
    """Total (epsilon, delta) of several mechanisms under basic sequential composition."""
    return sum(c[0] for c in costs), sum(c[1] for c in costs)


def pid_alive(owner: str) -> bool:
    """For owners written as ``pid:N``: is that process still running on this host?"""
    if not owner.startswith("pid:"):
        return True
    try:
        os.kill(int(owner[4:]), 0)
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
    def recover(self, is_alive: Callable[[str], bool] = pid_alive) -> dict[str, str]: ...


class SqliteLedger:
    """The ledger in a SQLite file (WAL mode), shared safely by threads and processes."""

    def __init__(self, path: str | Path, owner: str | None = None) -> None:
        self.path = str(path)
        self.owner = owner or f"pid:{os.getpid()}"
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

    def recover(self, is_alive: Callable[[str], bool] = pid_alive) -> dict[str, str]:
        """Settle reservations whose owner is gone: commit if output had started, else release."""
        settled: dict[str, str] = {}
        with self._tx() as db:
            for job_id, owner, started in db.execute(
                "SELECT DISTINCT job_id, owner, max(output_started) FROM reservations WHERE state = 'reserved' "
                "GROUP BY job_id, owner"
            ).fetchall():
                if is_alive(owner):
                    continue
                state = "committed" if started else "released"
                db.execute("UPDATE reservations SET state = ?, updated = ? WHERE job_id = ? AND state = 'reserved'",
                           (state, time.time(), job_id))
                settled[job_id] = state
        return settled
