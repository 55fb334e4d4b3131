"""The budgets of data owners that do not compute: spent unless every compute party confirms,
signed, that the job aborted before any output share left.

An input-only owner is gone once it has sent its shares, so it cannot take part in the output
barrier (:class:`~tessera.jobs.budget.OutputBarrier`). Its rule:

1. it reserves its charge before it sends anything (a job over budget is refused, nothing sent);
2. just before its first share leaves it marks the reservation "output started" and, once sent,
   commits it: from then on it is **spent**, whatever happens to the job;
3. it is given back only on an :class:`AbortStatement` from **every** compute party of the job,
   each signed with that party's Ed25519 key, saying the job aborted before any output share
   left (:func:`settle_owner`). A compute party signs one only if its durable barrier record
   (:class:`BarrierRecord`, written before its *marked* round) shows it never marked: then by the
   barrier's rounds no party sent an output share anywhere. A party that marked never signs.

A compute party that is lost keeps its record (it is written before the mark is passed on), so
its node can still sign for it afterwards; a record that cannot be read signs nothing, and the
owner stays charged: the rule errs towards charging, never towards leaking.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import BaseModel, ConfigDict

from tessera.governance.ledger import SqliteLedger
from tessera.jobs.model import LedgerRef
from tessera.net.identity import Identity, public_key_hex, verify_signature

__all__ = ["AbortStatement", "BarrierRecord", "sign_abort", "settle_owner", "check_statements", "StatementKey",
           "IdentityKey", "Signer"]

_TAG = b"tessera/aborted-before-output/v1\0"


def _message(job_id: str, party: str) -> bytes:
    return _TAG + json.dumps([job_id, party]).encode()


class AbortStatement(BaseModel):
    """Compute party ``party``'s signed word that job ``job_id`` aborted before any output share left."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str
    party: str
    signature: str

    def valid(self, public_key: str) -> bool:
        return verify_signature(public_key, bytes.fromhex(self.signature), _message(self.job_id, self.party))


class StatementKey:
    """An Ed25519 key a compute party signs its statements with (a node uses its identity key)."""

    def __init__(self, key: Ed25519PrivateKey | None = None) -> None:
        self._key = key or Ed25519PrivateKey.generate()

    @property
    def public(self) -> str:
        return public_key_hex(self._key.public_key())

    def sign(self, job_id: str, party: str) -> AbortStatement:
        return AbortStatement(job_id=job_id, party=party, signature=self._key.sign(_message(job_id, party)).hex())

    def __repr__(self) -> str:  # never print key material
        return f"StatementKey(public={self.public[:16]}...)"


class IdentityKey:
    """A node's identity (its contract key) as the key its compute party's statements are signed
    with: an owner verifies them with that party's ``public_key`` in the contract."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity

    @property
    def public(self) -> str:
        return self._identity.public_key

    def sign(self, job_id: str, party: str) -> AbortStatement:
        return AbortStatement(job_id=job_id, party=party, signature=self._identity.sign(_message(job_id, party)).hex())

    def __repr__(self) -> str:
        return f"IdentityKey(public={self.public[:16]}...)"


class Signer(Protocol):
    """What signs a compute party's statements (:class:`StatementKey`, :class:`IdentityKey`)."""

    def sign(self, job_id: str, party: str) -> AbortStatement: ...


class BarrierRecord:
    """A compute party's durable record of whether it marked "output started" for a job."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def mark(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("marked")
        tmp.replace(self.path)

    def marked(self) -> bool:
        """True unless the record shows no mark (an unreadable record counts as marked)."""
        try:
            return self.path.exists() and self.path.read_text() != "unmarked"
        except OSError:
            return True

    def start(self) -> None:
        self.path.write_text("unmarked")


def sign_abort(record: BarrierRecord, key: Signer, job_id: str, party: str) -> AbortStatement | None:
    """The party's statement that ``job_id`` aborted before any output share left, or None if its
    record shows it marked (or cannot tell)."""
    if not record.path.exists() or record.marked():
        return None
    return key.sign(job_id, party)


def settle_owner(ledger: LedgerRef, job_id: str, statements: Mapping[str, AbortStatement | None],
                 keys: Mapping[str, str]) -> str:
    """Settle an input-only owner's charge for ``job_id``: ``"released"`` if every compute party
    (``keys``: party -> public key) gave a valid statement for this job, else ``"committed"``."""
    book = SqliteLedger(ledger.path)
    checked = check_statements(job_id, statements, keys)
    if checked and all(v == "valid" for v in checked.values()):
        book.refund(job_id)
        return "released"
    book.commit(job_id)
    return "committed"


def check_statements(job_id: str, statements: Mapping[str, AbortStatement | None],
                     keys: Mapping[str, str]) -> dict[str, str]:
    """Each compute party's (``keys``: party -> public key) statement for ``job_id``: ``"valid"``,
    ``"missing"`` (none given) or ``"invalid"`` (another job or party, or a signature that does not
    verify with its key). Reveals nothing but that."""
    out: dict[str, str] = {}
    for p, k in keys.items():
        s = statements.get(p)
        if s is None:
            out[p] = "missing"
            continue
        try:
            ok = s.job_id == job_id and s.party == p and s.valid(k)
        except ValueError:  # not hex, or not a key
            ok = False
        out[p] = "valid" if ok else "invalid"
    return out
