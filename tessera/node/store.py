"""The node's job store: every job it knows, its state, each node's decision, events, its typed
job and its result, read back as typed :class:`Job` records.

SQLite in WAL mode; every change is one transaction, so a node killed at any point restarts
with a consistent store. States move only along :data:`tessera.node.states.TRANSITIONS`.
Results are kept only at nodes that are recipients; what a job revealed is listed by name. A job
sealed to its analysts leaves only sealed boxes here, which this node cannot open.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tessera.errors import TesseraError
from tessera.governance.job import JobSpec
from tessera.governance.sqlite import transaction
from tessera.jobs.model import PartyJob
from tessera.node.states import FINAL_STATES, FRACTION, STATES, JobState, may_move
from tessera.runtime import jsonable

__all__ = ["JobStore", "Job", "Verdict", "FINAL_STATES", "STATES", "view", "JobIdError", "check_job_id", "JOB_ID"]

#: the one form of a job id (what :func:`tessera.node.coordinator.job_id_for` makes): 16 lowercase
#: hex digits. Ids name directories of the store, so nothing else is ever accepted as one.
JOB_ID = re.compile(r"[0-9a-f]{16}")


class JobIdError(TesseraError, ValueError):
    """Something offered as a job id that is not one (an API path, a peer's message)."""


def check_job_id(job_id: object) -> str:
    """``job_id`` if it is a job id of this node's format, else :class:`JobIdError` naming it
    (shortened: a peer may send anything)."""
    if isinstance(job_id, str) and JOB_ID.fullmatch(job_id):
        return job_id
    shown = repr(job_id)
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    raise JobIdError(f"{shown} is not a job id (16 lowercase hex digits)")

_JSON_FIELDS = ("spec", "parties", "reasons", "decisions", "ports", "progress", "revealed", "comm", "outcomes",
                "sealed")
_COLUMNS = ("id", "idem", "spec", "job_hash", "coordinator", "parties", "state", "created", "updated", "reasons",
            "decisions", "nonce", "session_id", "ports", "progress", "plan", "revealed", "comm", "seconds",
            "outcomes", "result", "party_job", "sealed")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Verdict:
    """A party's decision on a job (``accepted``, ``denied``, ``awaiting_approval``, ``unreachable``),
    or its outcome (a final state), with the reasons."""

    state: str
    reasons: list[str] = field(default_factory=list)

    def plain(self) -> dict[str, Any]:
        return {"state": self.state, "reasons": list(self.reasons)}


@dataclass(frozen=True)
class Job:
    """One job as this node knows it."""

    id: str
    idem: str | None
    spec_json: dict[str, Any]
    job_hash: str
    coordinator: str
    parties: list[str]
    state: JobState
    created: float
    updated: float
    reasons: list[str]
    decisions: dict[str, Verdict]
    nonce: str | None
    session_id: str | None
    ports: dict[str, int] | None
    progress: dict[str, Any]
    plan_text: str | None
    revealed: list[str]
    comm: dict[str, Any] | None
    seconds: float | None
    outcomes: dict[str, Verdict]
    result: dict[str, Any] | None
    #: the typed job this node planned when it decided (None before, or if it could not be planned)
    party_job: PartyJob | None
    #: a job sealed to its analysts: party -> analyst -> that party's sealed output shares (boxes
    #: this node cannot open); this node's own and, at the coordinator, every party's
    sealed: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def spec(self) -> JobSpec:
        return JobSpec.model_validate(self.spec_json)

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    def decision_of(self, party: str) -> Verdict | None:
        return self.decisions.get(party)

    @classmethod
    def _of_row(cls, row: dict[str, Any]) -> Job:
        return cls(
            id=row["id"], idem=row["idem"], spec_json=row["spec"] or {}, job_hash=row["job_hash"],
            coordinator=row["coordinator"], parties=list(row["parties"] or []), state=JobState(row["state"]),
            created=row["created"], updated=row["updated"], reasons=list(row["reasons"] or []),
            decisions={p: Verdict(d["state"], list(d.get("reasons", []))) for p, d in (row["decisions"] or {}).items()},
            nonce=row["nonce"], session_id=row["session_id"],
            ports={str(k): int(v) for k, v in row["ports"].items()} if row["ports"] else None,
            progress=row["progress"] or {}, plan_text=row["plan"], revealed=list(row["revealed"] or []),
            comm=row["comm"], seconds=row["seconds"],
            outcomes={p: Verdict(o["state"], list(o.get("reasons", []))) for p, o in (row["outcomes"] or {}).items()},
            result=row["result"],
            party_job=PartyJob.from_json(row["party_job"]) if row["party_job"] else None,
            sealed={str(p): {str(a): str(b) for a, b in boxes.items()} for p, boxes in (row["sealed"] or {}).items()},
        )


class JobStore:
    """Jobs and their events in one SQLite file, safe across threads of the node."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        #: the job directories (a party process's files) live next to the database
        self.jobs_dir = Path(path).parent / "jobs"
        self._lock = threading.Lock()
        with self._tx() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, idem TEXT UNIQUE, spec TEXT, job_hash TEXT, "
                "coordinator TEXT, parties TEXT, state TEXT, created REAL, updated REAL, reasons TEXT, "
                "decisions TEXT, nonce TEXT, session_id TEXT, ports TEXT, progress TEXT, plan TEXT, revealed TEXT, "
                "comm TEXT, seconds REAL, outcomes TEXT, result TEXT, party_job TEXT, sealed TEXT)"
            )
            present = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
            if "party_job" not in present:
                db.execute("ALTER TABLE jobs ADD COLUMN party_job TEXT")  # a store from before typed jobs
            if "sealed" not in present:
                db.execute("ALTER TABLE jobs ADD COLUMN sealed TEXT")  # a store from before sealed results
            db.execute("CREATE TABLE IF NOT EXISTS events (job_id TEXT, ts REAL, state TEXT, detail TEXT)")
            db.execute("CREATE INDEX IF NOT EXISTS events_job ON events (job_id)")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        # the lock spares the node's own threads SQLite's busy-waiting on each other
        with self._lock, transaction(self.path) as db:
            yield db

    def job_dir(self, job_id: str) -> Path:
        """The directory of job ``job_id``'s files, inside :attr:`jobs_dir`; refuses anything
        that is not a job id (:class:`JobIdError`), so no path outside the store is ever built."""
        return self.jobs_dir / check_job_id(job_id)

    # -- writing -------------------------------------------------------------------------------

    def create(self, job_id: str, spec: dict[str, Any], job_hash: str, coordinator: str, parties: list[str],
               idem: str | None = None, detail: str = "") -> tuple[Job, bool]:
        """Insert a job in state ``submitted``; if ``job_id`` or ``idem`` exists, return it unchanged.
        Returns (job, created)."""
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
        got = self.get(existing or job_id)
        assert got is not None
        return got, existing is None

    def transition(self, job_id: str, state: JobState, detail: str = "", *, note: str | None = None,
                   **fields: Any) -> bool:
        """Move a job to ``state`` if the transition table allows it from its current state,
        recording an event and the state's progress (``note`` its detail; default: ``detail``, or
        the state's name for a final state), and set ``fields``. Returns whether it moved."""
        state = JobState(state)
        with self._tx() as db:
            row = db.execute("SELECT state, progress FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None or not may_move(JobState(row[0]), state):
                return False
            now = time.time()
            if note is None:
                note = state.value if state in FINAL_STATES else detail
            fraction = FRACTION[state]
            if state in FINAL_STATES and state not in (JobState.RELEASED, JobState.CONTRIBUTED):  # it stopped where it was
                try:
                    fraction = float(json.loads(row[1] or "{}").get("fraction", 0.0))
                except (ValueError, TypeError, AttributeError):
                    fraction = 0.0
            progress = {"phase": state.value, "fraction": fraction, "detail": note}
            self._set(db, job_id, state=state.value, updated=now, progress=progress, **fields)
            db.execute("INSERT INTO events VALUES (?, ?, ?, ?)", (job_id, now, state.value, detail))
            return True

    def update(self, job_id: str, **fields: Any) -> None:
        """Set fields without a state change (progress, decisions, ...)."""
        with self._tx() as db:
            self._set(db, job_id, updated=time.time(), **fields)

    def set_decision(self, job_id: str, party: str, decision: Verdict) -> None:
        """Record ``party``'s decision on the job."""
        self._merge(job_id, "decisions", party, decision)

    def set_outcome(self, job_id: str, party: str, outcome: Verdict) -> None:
        self._merge(job_id, "outcomes", party, outcome)

    def add_sealed(self, job_id: str, party: str, boxes: dict[str, str]) -> None:
        """Keep ``party``'s sealed output shares of the job (analyst -> box, opaque here)."""
        self._merge(job_id, "sealed", party, dict(boxes))

    def _merge(self, job_id: str, column: str, party: str, value: Verdict | dict[str, str]) -> None:
        with self._tx() as db:
            row = db.execute(f"SELECT {column} FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(job_id)
            merged = json.loads(row[0] or "{}")
            merged[party] = value.plain() if isinstance(value, Verdict) else value
            self._set(db, job_id, **{column: merged, "updated": time.time()})

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
            elif k == "party_job":
                v = None if v is None else v.to_json()
            elif k in _JSON_FIELDS:
                v = json.dumps(v)
            values.append(v)
        db.execute(f"UPDATE jobs SET {', '.join(f'{k} = ?' for k in fields)} WHERE id = ?", (*values, job_id))

    # -- reading -------------------------------------------------------------------------------

    def _read(self, where: str, args: tuple[Any, ...]) -> list[Job]:
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            rows = db.execute(f"SELECT {', '.join(_COLUMNS)} FROM jobs {where}", args).fetchall()
        finally:
            db.close()
        out = []
        for r in rows:
            row = dict(zip(_COLUMNS, r))
            for k in _JSON_FIELDS:
                row[k] = json.loads(row[k]) if row[k] is not None else None
            row["result"] = jsonable.loads(row["result"]) if row["result"] is not None else None
            out.append(Job._of_row(row))
        return out

    def get(self, job_id: str) -> Job | None:
        rows = self._read("WHERE id = ?", (job_id,))
        return rows[0] if rows else None

    def events(self, job_id: str) -> list[dict[str, Any]]:
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            rows = db.execute("SELECT ts, state, detail FROM events WHERE job_id = ? ORDER BY rowid", (job_id,)).fetchall()
        finally:
            db.close()
        return [{"ts": _iso(ts), "state": s, "detail": d} for ts, s, d in rows]

    def jobs(self, analyst: str | None = None, limit: int = 500) -> list[Job]:
        """The newest ``limit`` jobs (of ``analyst``, if given), newest first."""
        if analyst is None:
            return self._read("ORDER BY created DESC, rowid DESC LIMIT ?", (limit,))
        return self._read("WHERE json_extract(spec, '$.analyst') = ? ORDER BY created DESC, rowid DESC LIMIT ?",
                          (analyst, limit))

    def in_states(self, *states: JobState) -> list[Job]:
        marks = ", ".join("?" for _ in states)
        return self._read(f"WHERE state IN ({marks})", tuple(s.value for s in states))

    def counts(self) -> dict[str, int]:
        db = sqlite3.connect(self.path, timeout=60.0)
        try:
            return dict(db.execute("SELECT state, count(*) FROM jobs GROUP BY state").fetchall())
        finally:
            db.close()


def view(job: Job, events: list[dict[str, Any]]) -> dict[str, Any]:
    """The job as the API shows it (docs/node-api.md), without its result."""
    spec = job.spec_json
    return {
        "id": job.id,
        "state": job.state.value,
        "analysis": spec["analysis"],
        "version": spec["version"],
        "protocol": spec.get("protocol"),
        "datasets": spec["datasets"],
        "columns": spec["columns"],
        "params": spec.get("params", {}),
        "partition": spec.get("partition", "horizontal"),
        "join_key": spec.get("join_key"),
        "recipients": spec.get("recipients", []),
        "dp": spec.get("dp"),
        "analyst": spec.get("analyst"),
        "idempotency_key": spec.get("idempotency_key"),
        "coordinator": job.coordinator,
        "parties": job.parties,
        #: who computes and who only inputs (from the planned job; None before it is planned here)
        "roles": None if job.party_job is None else {"compute": job.party_job.roles.compute,
                                                     "input_only": job.party_job.roles.input_only},
        "created": _iso(job.created),
        "updated": _iso(job.updated),
        "reasons": job.reasons,
        "decisions": {p: d.plain() for p, d in job.decisions.items()},
        "outcomes": {p: o.plain() for p, o in job.outcomes.items()},
        "events": events,
        "progress": job.progress,
        "plan": job.plan_text,
        "revealed": job.revealed,
        "comm": job.comm,
        "seconds": job.seconds,
        "session_id": job.session_id,
        "has_result": job.result is not None,
        #: a job sealed to its analysts: the parties whose sealed shares this node holds (opaque to it)
        "sealed_shares": sorted(job.sealed),
    }
