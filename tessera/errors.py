"""The one exception tree of Tessera.

Every error Tessera raises on purpose derives from :class:`TesseraError`. Messages name what
failed and what to do about it, and never contain secret values, shares or keys::

    TesseraError
    ├── EncodingError        a value cannot be represented in the ring (NaN, inf, out of range)
    ├── ShapeError           operands whose shapes do not fit together
    ├── SessionError         misuse of a session: mixed sessions, unknown party, wrong role
    ├── TransportError       the network failed: unreachable peer, closed connection, timeout
    │   ├── FrameError       a malformed, truncated, oversized, wrong-session or replayed frame
    │   └── PeerAuthError    a peer's certificate is not the pinned one
    ├── ProtocolAbort        a party aborted the computation; names who and why
    ├── IdentityError        a missing, unreadable or unsafe key or certificate file
    ├── DataError            input data violates its declared schema
    ├── PlanError            a job cannot be planned safely (e.g. it could overflow the ring)
    │   ├── ParamsError      an analysis's parameters are invalid (names every field and problem)
    │   └── UnknownColumn    a job or analysis names a column its schema does not declare
    ├── GuardFailed          a declared guard inside MPC failed (one bit revealed): the data break
    │                        an assumption the stated accuracy needs; names the cause and the remedy
    ├── ContractError        a contract is malformed, unsigned, tampered with or expired
    ├── PolicyDenied         a job is outside what the contract and policy allow (all reasons)
    ├── BudgetExceeded       a job would overspend a differential-privacy budget
    ├── AuditError           an audit log fails verification
    └── SealedResultError    outputs sealed to an analyst cannot be opened or reconstructed
                             (wrong key, a party's share missing, altered or inconsistent)
"""

from __future__ import annotations

__all__ = [
    "TesseraError",
    "EncodingError",
    "ShapeError",
    "SessionError",
    "TransportError",
    "FrameError",
    "PeerAuthError",
    "ProtocolAbort",
    "IdentityError",
    "DataError",
    "PlanError",
    "ParamsError",
    "UnknownColumn",
    "GuardFailed",
    "ContractError",
    "PolicyDenied",
    "BudgetExceeded",
    "AuditError",
    "SealedResultError",
]


class TesseraError(Exception):
    """Root of every error Tessera raises on purpose."""


class EncodingError(TesseraError, ValueError):
    """A value cannot be encoded in the ring: NaN, infinity, or outside the representable range."""


class ShapeError(TesseraError, ValueError):
    """Operands whose shapes cannot be combined (e.g. mismatched matmul dimensions)."""


class SessionError(TesseraError):
    """A session was misused: tensors from different sessions mixed, an unknown party named."""


class TransportError(TesseraError):
    """The network failed: a peer is unreachable, a connection closed, a receive timed out."""


class FrameError(TransportError):
    """A frame is malformed, truncated, oversized, from another session, or replayed."""


class PeerAuthError(TransportError):
    """A peer presented a certificate whose fingerprint is not the pinned one."""


class ProtocolAbort(TesseraError):
    """A party aborted the computation. ``party`` names who aborted, ``reason`` says why."""

    def __init__(self, party: str, reason: str) -> None:
        super().__init__(f"party {party!r} aborted the computation: {reason}")
        self.party = party
        self.reason = reason


class IdentityError(TesseraError):
    """A key or certificate file is missing, unreadable, or has unsafe permissions."""


class DataError(TesseraError, ValueError):
    """Input data violates its declared schema. Messages name columns and counts, never values."""


class PlanError(TesseraError):
    """A job cannot be planned safely, e.g. a quantity could overflow the ring."""


class ParamsError(PlanError, ValueError):
    """An analysis's parameters are invalid. ``problems`` lists ``(field, problem)`` pairs, all of them.

    A :class:`PlanError` (the job cannot be planned) and a ``ValueError`` (a bad argument), so
    callers that catch either keep working.
    """

    def __init__(self, analysis: str, problems: list[tuple[str, str]]) -> None:
        detail = "; ".join(f"{field}: {problem}" for field, problem in problems)
        super().__init__(f"invalid parameters for {analysis}: {detail}")
        self.analysis = analysis
        self.problems = list(problems)


class UnknownColumn(PlanError, KeyError):
    """A job or an analysis names a column its schema does not declare; the message names it and
    the columns there are. A :class:`PlanError` (the job cannot be planned) and a ``KeyError``
    (a failed lookup by name), so callers that catch either keep working."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown column"


class GuardFailed(TesseraError):
    """A declared guard failed: a data-dependent condition that the released values' stated
    accuracy needs (conditioning, convergence, ...) was checked inside MPC and does not hold.
    Only the guard's one bit was revealed; nothing else was. ``guard`` names it."""

    def __init__(self, guard: str, message: str) -> None:
        super().__init__(message)
        self.guard = guard


class ContractError(TesseraError):
    """A contract is malformed, not signed by every party, tampered with, or expired."""


class PolicyDenied(TesseraError):
    """A job is outside what the contract and the node's policy allow. ``reasons`` lists them all."""

    def __init__(self, reasons: list[str]) -> None:
        super().__init__("job denied: " + "; ".join(reasons))
        self.reasons = list(reasons)


class BudgetExceeded(TesseraError):
    """A job would spend more differential-privacy budget than a dataset has left."""


class AuditError(TesseraError):
    """An audit log fails verification: a broken hash chain, a bad signature, a missing entry."""


class SealedResultError(TesseraError):
    """Outputs sealed to an analyst cannot be opened (another key, an altered box) or
    reconstructed (a party's share missing, or shares that disagree); names the party."""
