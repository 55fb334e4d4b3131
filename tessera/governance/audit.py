"""The audit log of one node: append-only, hash-chained, every entry signed by the node.

Entry ``i`` holds the hash of entry ``i-1``; its own hash covers index, time, kind, body and the
previous hash; the node's Ed25519 key signs that hash. Bodies are JSON of numbers, strings,
booleans, lists and objects only — what happened (contract adopted, job received, policy
decision with reasons, budget reserved/committed/released, session start and end, the
transcript hash of the values opened during the job, outputs released and to whom) — never
secret inputs or shares. ``verify`` names the first bad entry; ``compare`` checks that every
party recorded the same transcript hash for each job.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tessera.errors import AuditError
from tessera.governance.sqlite import transaction
from tessera.net.identity import Identity, verify_signature

__all__ = ["AuditLog", "Entry", "VerifyReport", "verify_entries", "compare_logs", "not_parties", "read_jsonl", "read_db", "KINDS"]

KINDS = ("contract_adopted", "job_received", "policy_decision", "budget_reserved", "budget_committed",
         "budget_released", "session_start", "session_end", "transcript_hash", "output_released", "job_aborted",
         "outcome_reconciled", "job_cancelled")
GENESIS = "0" * 64


def _canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _check_body(value: Any, where: str = "body") -> None:
    if value is None or isinstance(value, (bool, int, float, str)):
        return
    if isinstance(value, list):
        for i, v in enumerate(value):
            _check_body(v, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise AuditError(f"{where}: keys must be strings")
            _check_body(v, f"{where}.{k}")
        return
    raise AuditError(f"{where}: audit entries hold plain JSON values only, not {type(value).__name__}")


@dataclass(frozen=True)
class Entry:
    index: int
    time: float
    kind: str
    body: dict[str, Any]
    prev_hash: str
    hash: str
    signature: str

    def digest(self) -> str:
        return hashlib.sha256(_canonical({"index": self.index, "time": self.time, "kind": self.kind,
                                          "body": self.body, "prev": self.prev_hash})).hexdigest()

    def as_json(self) -> str:
        return json.dumps({"index": self.index, "time": self.time, "kind": self.kind, "body": self.body,
                           "prev_hash": self.prev_hash, "hash": self.hash, "signature": self.signature},
                          sort_keys=True)


class AuditLog:
    """A node's audit log in SQLite; appends are serialised (``BEGIN IMMEDIATE``)."""

    def __init__(self, path: str | Path, identity: Identity) -> None:
        self.path = str(path)
        self.identity = identity
        if not Path(path).exists():  # created readable by its owner only
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        with transaction(self.path) as db:
            db.execute("CREATE TABLE IF NOT EXISTS audit (idx INTEGER PRIMARY KEY, ts REAL, kind TEXT, body TEXT, "
                       "prev_hash TEXT, hash TEXT, signature TEXT)")

    def append(self, kind: str, body: Mapping[str, Any]) -> Entry:
        """Add an entry; ``body`` must be plain JSON values (no arrays, bytes or shares)."""
        if kind not in KINDS:
            raise AuditError(f"unknown audit entry kind {kind!r}")
        body = dict(body)
        _check_body(body)
        with transaction(self.path) as db:
            last = db.execute("SELECT idx, hash FROM audit ORDER BY idx DESC LIMIT 1").fetchone()
            index, prev = (0, GENESIS) if last is None else (last[0] + 1, last[1])
            draft = Entry(index, time.time(), kind, body, prev, "", "")
            digest = draft.digest()
            entry = Entry(index, draft.time, kind, body, prev, digest, self.identity.sign(bytes.fromhex(digest)).hex())
            db.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (index, entry.time, kind, json.dumps(body, sort_keys=True), prev, digest, entry.signature))
        return entry

    def entries(self) -> list[Entry]:
        """Every entry, in order; :class:`AuditError` naming the first one that cannot be read."""
        got = read_db(self.path)
        if isinstance(got, VerifyReport):
            raise AuditError(got.reason)
        return got

    def verify(self, expected_head: str | None = None) -> VerifyReport:
        """:func:`verify_entries` on this log with its node's key; an entry that cannot be read
        (or a database that cannot) fails the report, naming it."""
        got = read_db(self.path)
        return got if isinstance(got, VerifyReport) else verify_entries(got, self.identity.public_key, expected_head)

    def export(self, path: str | Path) -> None:
        """Write the log as JSON lines (what ``tessera audit verify`` reads)."""
        Path(path).write_text("".join(e.as_json() + "\n" for e in self.entries()), encoding="utf-8")


@dataclass
class VerifyReport:
    ok: bool
    entries: int
    first_bad: int | None = None
    reason: str = ""
    head: str = GENESIS


def read_jsonl(path: str | Path) -> list[Entry] | VerifyReport:
    """Parse an exported log; a malformed line gives a failed report naming that entry."""
    out: list[Entry] = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines()):
        try:
            d = json.loads(line)
            out.append(Entry(int(d["index"]), float(d["time"]), str(d["kind"]), dict(d["body"]),
                             str(d["prev_hash"]), str(d["hash"]), str(d["signature"])))
        except (ValueError, KeyError, TypeError):
            return VerifyReport(False, len(out), n, f"entry {n} is malformed or truncated")
    return out


def _entry(row: tuple[Any, ...]) -> Entry:
    idx, ts, kind, body, prev, digest, sig = row
    parsed = json.loads(body)
    if not isinstance(parsed, dict):
        raise ValueError("the body is not a JSON object")
    return Entry(int(idx), float(ts), str(kind), parsed, str(prev), str(digest), str(sig))


def read_db(path: str | Path) -> list[Entry] | VerifyReport:
    """Read a node's ``audit.db`` (read-only; it is never created or changed); an entry that
    cannot be read, or a file that is not a readable audit log, gives a failed report naming it."""
    p = Path(path)
    if not p.is_file():
        return VerifyReport(False, 0, None, f"no audit log {p}")
    out: list[Entry] = []
    try:
        db = sqlite3.connect(f"{p.resolve().as_uri()}?mode=ro", uri=True, timeout=60.0)
        try:
            rows = db.execute("SELECT idx, ts, kind, body, prev_hash, hash, signature FROM audit ORDER BY idx")
            for n, row in enumerate(rows):
                try:
                    out.append(_entry(row))
                except (ValueError, TypeError):
                    return VerifyReport(False, len(out), n, f"entry {n} is malformed (unreadable body or fields)")
        finally:
            db.close()
    except sqlite3.DatabaseError as e:
        # a damaged page: name the entries read so far, so the damage can be found
        return VerifyReport(False, len(out), len(out), f"the audit log {p.name} cannot be read after entry "
                            f"{len(out) - 1}: {e}" if out else f"the audit log {p.name} cannot be read: {e}")
    return out


def verify_entries(entries: Iterable[Entry], public_key: str, expected_head: str | None = None) -> VerifyReport:
    """Check indices, the hash chain and every signature; report the first bad entry.

    Removing entries at the end leaves a valid shorter chain: pass the head hash recorded
    elsewhere (e.g. by another party or a monitoring system) as ``expected_head`` to catch it.
    """
    prev, count = GENESIS, 0
    for i, e in enumerate(entries):
        count += 1
        if e.index != i:
            return VerifyReport(False, count, i, f"entry {i} is missing (found index {e.index})", prev)
        if e.prev_hash != prev:
            return VerifyReport(False, count, i, f"entry {i} does not follow entry {i - 1} (broken chain)", prev)
        if e.digest() != e.hash:
            return VerifyReport(False, count, i, f"entry {i} was altered (its hash does not match its content)", prev)
        try:
            good = verify_signature(public_key, bytes.fromhex(e.signature), bytes.fromhex(e.hash))
        except ValueError:
            good = False
        if not good:
            return VerifyReport(False, count, i, f"entry {i} has an invalid signature", prev)
        prev = e.hash
    if expected_head is not None and prev != expected_head:
        return VerifyReport(False, count, count, f"the log ends early: entry {count} onwards is missing", prev)
    return VerifyReport(True, count, None, "", prev)


def _computed_in(entries: list[Entry]) -> set[str]:
    """The jobs a log has entries for, less those its node served as the dealer (semi2k: it
    hands out randomness and computes nothing, so it has no transcript of its own)."""
    dealt = {str(e.body.get("job_id")) for e in entries if e.kind == "session_start" and e.body.get("role") == "dealer"}
    return {str(e.body.get("job_id")) for e in entries if "job_id" in e.body} - dealt


def not_parties(logs: Mapping[str, Iterable[Entry]]) -> dict[str, list[str]]:
    """For each job with a transcript hash in some log: the logs with no entry at all for it
    (their node was not a party to the job, so there is nothing of theirs to compare), or whose
    node was the job's dealer (``session_start`` with ``role`` ``dealer``: it computes nothing)."""
    lists = {p: list(es) for p, es in logs.items()}
    jobs = {str(e.body.get("job_id")) for es in lists.values() for e in es if e.kind == "transcript_hash"}
    mentioned = {p: _computed_in(es) for p, es in lists.items()}
    return {j: [p for p in lists if j not in mentioned[p]] for j in sorted(jobs)
            if any(j not in mentioned[p] for p in lists)}


def compare_logs(logs: Mapping[str, Iterable[Entry]]) -> list[str]:
    """Problems where parties recorded different transcript hashes for a job, or a party that
    took part in a job recorded none (empty: agree). A log with no entry for a job (its node
    was not a party to it, :func:`not_parties`) is not compared for that job."""
    logs = {p: list(es) for p, es in logs.items()}
    absent = not_parties(logs)
    seen: dict[str, dict[str, str]] = {}
    for party, entries in logs.items():
        for e in entries:
            if e.kind == "transcript_hash":
                seen.setdefault(str(e.body.get("job_id")), {})[party] = str(e.body.get("hash"))
    problems = []
    for job, by_party in sorted(seen.items()):
        missing = [p for p in logs if p not in by_party and p not in absent.get(job, [])]
        if missing:
            problems.append(f"job {job}: no transcript hash recorded by {missing}")
        if len(set(by_party.values())) > 1:
            groups: dict[str, list[str]] = {}
            for p, h in by_party.items():
                groups.setdefault(h, []).append(p)
            detail = "; ".join(f"{h[:12]}... by {ps}" for h, ps in groups.items())
            problems.append(f"job {job}: parties disagree on the transcript hash ({detail})")
    return problems
