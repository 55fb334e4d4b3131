"""The node's job store: every job it knows, its state, each node's decision, events, result.

SQLite in WAL mode; every change is one transaction, so a node killed at any point restarts
with a consistent store (:meth:`JobStore.recover` then settles jobs that were in flight).
Results are kept only at nodes that are recipients; what a job revealed is listed by name.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tessera.governance.sqlite import transaction
from tessera.runtime import jsonable

__all__ = ["JobStore", "FINAL_STATES", "STATES"]

STATES = ("submitted", "pending", "awaiting_approval", "accepted", "running",
          "released", "denied", "failed", "aborted")
FINAL_STATES = frozenset({"released", "denied", "failed", "aborted"})

_JSON_FIELDS = ("spec", "parties", "reasons", "decisions", "ports", "progress", "revealed", "comm", "outcomes")
_COLUMNS = ("id", "idem", "spec", "job_hash", "coordinator", "parties", "state", "created", "updated", "reasons",
            "decisions", "nonce", "session_id", "ports", "progress", "plan", "revealed", "comm", "seconds",
            "outcomes", "result")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


class JobStore:
    """Jobs and their events in one SQLite file, safe across threads of the node."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, idem TEXT UNIQUE, spec TEXT, job_hash TEXT, "
                "coordinator TEXT, parties TEXT, state TEXT, created REAL, updated REAL, reasons TEXT, "
                "decisions TEXT, nonce TEXT, session_id TEXT, ports TEXT, progress TEXT, plan TEXT, revealed TEXT, "
                "comm TEXT, seconds REAL, outcomes TEXT, result TEXT)"
            )
            db.execute("CREATE TABLE IF NOT EXISTS events (job_id TEXT, ts REAL, state TEXT, detail TEXT)")
            db.execute("CREATE INDEX IF NOT EXISTS events_job ON events (job_id)")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # the lock spares the node's own threads SQLite's busy-waiting on each other
        with self._lock, transaction(self.path) as db:
            yield db

    # -- writing -------------------------------------------------------------------------------

    def create(self, job_id: str, spec: dict[str, Any], job_hash: str, coordinator: str, parties: list[str],
               idem: str | None = None, detail: str = "") -> tuple[dict[str, Any], bool]:
        """Insert a job in state ``submitted``; if ``job_id`` or ``idem`` exists, return it unchanged.
        Returns (row, created)."""
        with self._tx() as db:
            row = db.execute("SELECT id FROM jobs WHERE id = ? OR (idem IS NOT NULL AND idem = ?)",
                             (job_id, idem)).fetchone()
            if row is not None:
                existing = row[0]
            else:
                now = time.time()
                db.execute(
                    "INSERT INTO jobs (id, idem, spec, job_hash, coordinator, parties, state, created, updated, "
                    "reasons, decisions, progress, revealed, outcomes) VALUES (?, ?, ?, ?, ?, ?, 'submitted', ?, ?, "
                    "'[]', '{}', ?, '[]', '{}')",
                    (job_id, idem, json.dumps(spec), job_hash, coordinator, json.dumps(parties), now, now,
                     json.dumps({"phase": "submitted", "fraction": 0.0, "detail": detail})),
                )
                db.execute("INSERT INTO events VALUES (?, ?, 'submitted', ?)", (job_id, now, detail))
                existing = None
        if existing is not None:
            got = self.get(existing)
            assert got is not None
            return got, False
        got = self.get(job_id)
        assert got is not None
        return got, True

    def transition(self, job_id: str, state: str, detail: str = "", *, only_from: tuple[str, ...] | None = None,
                   **fields: Any) -> bool:
        """Move a job to ``state`` (recording an event) and set ``fields``; a job in a final state
        never moves again. With ``only_from``, moves only from those states. Returns whether it moved."""
        if state not in STATES:
            raise ValueError(f"unknown job state {state!r}")
        with self._tx() as db:
            row = db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or row[0] in FINAL_STATES or (only_from is not None and row[0] not in only_from):
                return False
            now = time.time()
            self._set(db, job_id, state=state, updated=now, **fields)
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (job_id, now, state, detail))
            return True

    def update(self, job_id: str, **fields: Any) -> None:
        """Set fields without a state change (progress, decisions, ...)."""
        with self._tx() as db:
            self._set(db, job_id, updated=time.time(), **fields)

    def set_decision(self, job_id: str, party: str, state: str, reasons: list[str]) -> dict[str, Any]:
        """Record ``party``'s decision on the job; returns all decisions."""
        with self._tx() as db:
            row = db.execute("SELECT decisions FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            decisions = json.loads(row[0])
            decisions[party] = {"state": state, "reasons": list(reasons)}
            self._set(db, job_id, decisions=decisions, updated=time.time())
            return dict(decisions)

    def set_outcome(self, job_id: str, party: str, outcome: dict[str, Any]) -> dict[str, Any]:
        with self._tx() as db:
            row = db.execute("SELECT outcomes FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            outcomes = json.loads(row[0] or "{}")
            outcomes[party] = outcome
            self._set(db, job_id, outcomes=outcomes, updated=time.time())
            return dict(outcomes)

    @staticmethod
    def _set(db: sqlite3.Connection, job_id: str, **fields: Any) -> None:
        if not fields:
            return
        bad = [k for k in fields if k not in _COLUMNS]
        if bad:
            raise ValueError(f"unknown job fields {bad}")
        values = []
        for k, v in fields.items():
            if k == "result":
                v = None if v is None else jsonable.dumps(v)
            elif k in _JSON_FIELDS:
                v = json.dumps(v)
            values.append(v)
        db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?", (*values, job_id))

    # -- reading -------------------------------------------------------------------------------

    def _read(self, where: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs {where}", args).fetchall()
        finally:
            db.close()
        out = []
        for r in rows:
            job = dict(zip(_COLUMNS, r))
            for k in _JSON_FIELDS:
                job[k] = json.loads(job[k]) if job[k] is not None else None
            job["result"] = jsonable.loads(job["result"]) if job["result"] is not None else None
            out.append(job)
        return out

    def get(self, job_id: str) -> dict[str, Any] | None:
        rows = self._read("WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def events(self, job_id: str) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            rows = db.execute("SELECT ts, state, detail FROM events WHERE job_id = ? ORDER BY rowid", (job_id,)).fetchall()
        finally:
            db.close()
        return [{"ts": _iso(ts), "state": s, "detail": d} for ts, s, d in rows]

    def list(self, analyst: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        """The newest ``limit`` jobs (of ``analyst``, if given), newest first."""
        if analyst is None:
            return self._read("ORDER BY created DESC, rowid DESC LIMIT ?", (limit,))
        return self._read("WHERE json_extract(spec, '$.analyst') = ? ORDER BY created DESC, rowid DESC LIMIT ?",
                          (analyst, limit))

    def in_states(self, *states: str) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in states)
        return self._read(f"WHERE state IN ({marks})", tuple(states))

    def counts(self) -> dict[str, int]:
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            return dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        finally:
            db.close()


def view(job: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """The job as the API shows it (docs/node-api.md), without its result."""
    spec = job["spec"]
    return {
        "id": job["id"],
        "state": job["state"],
        "analysis": spec["analysis"],
        "version": spec["version"],
        "protocol": spec.get("protocol"),
        "datasets": spec["datasets"],
        "columns": spec["columns"],
        "params": spec.get("params", {}),
        "partition": spec.get("partition", "horizontal"),
        "join_key": spec.get("join_key"),
        "recipients": spec["recipients"],
        "dp": spec.get("dp"),
        "analyst": spec["analyst"],
        "idempotency_key": spec.get("idempotency_key"),
        "coordinator": job["coordinator"],
        "parties": job["parties"],
        "created": _iso(job["created"]),
        "updated": _iso(job["updated"]),
        "reasons": job["reasons"] or [],
        "decisions": job["decisions"] or {},
        "outcomes": job["outcomes"] or {},
        "events": events,
        "progress": job["progress"] or {},
        "plan": job["plan"],
        "revealed": job["revealed"] or [],
        "comm": job["comm"],
        "seconds": job["seconds"],
        "session_id": job["session_id"],
        "has_result": job["result"] is not None,
    }
