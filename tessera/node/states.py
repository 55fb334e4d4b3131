"""The states of a job at a node, the one table of the moves between them, and the progress
fraction each state stands for.

    submitted -> pending | awaiting_approval | accepted -> running -> released | aborted | failed
    (any state before running) -> denied | failed | aborted | cancelled
    running -> contributed (a data owner that only inputs: its shares are sent, it is done)

``contributed``: the final state of a job at a data owner that does not compute, once its
shares have left: it takes no further part and may go offline. It moves up (below) to the outcome
the compute parties agree on if that reaches it; the owner's own outcome never decides the job's.

``cancelled``: withdrawn (``job cancel``) before it ran; a running job that is cancelled is
``aborted`` at every party, with the reason (an outcome of a run job like any other, so the
one-outcome rule below and the ledger's "output started means spent" still decide).

A final state moves only by reconciliation (#15.13), upwards in :data:`OUTCOME_ORDER`
(``aborted -> failed -> released``) to the outcome the parties agree on (:func:`agreed_outcome`):
released if any party recorded released, else failed if any party failed (its own error is the
cause), else aborted. Moving only upwards, the nodes converge whatever order the reports come in.
``pending -> pending`` is the coordinator resuming a job after a restart; ``accepted -> pending``
too (the decisions are gathered again).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["JobState", "Vote", "FINAL_STATES", "STATES", "TRANSITIONS", "FRACTION", "OUTCOME_ORDER", "may_move",
           "agreed_outcome", "outranks", "running_fraction"]


class JobState(StrEnum):
    SUBMITTED = "submitted"
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    ACCEPTED = "accepted"
    RUNNING = "running"
    RELEASED = "released"
    DENIED = "denied"
    FAILED = "failed"
    ABORTED = "aborted"
    CANCELLED = "cancelled"
    CONTRIBUTED = "contributed"


class Vote(StrEnum):
    """A node's decision on a job (what the coordinator gathers)."""

    ACCEPTED = "accepted"
    DENIED = "denied"
    AWAITING_APPROVAL = "awaiting_approval"
    #: the coordinator could not ask the node
    UNREACHABLE = "unreachable"


S = JobState
STATES: tuple[str, ...] = tuple(s.value for s in JobState)
FINAL_STATES: frozenset[JobState] = frozenset({S.RELEASED, S.DENIED, S.FAILED, S.ABORTED, S.CANCELLED,
                                               S.CONTRIBUTED})
_ENDS = {S.DENIED, S.FAILED, S.ABORTED, S.CANCELLED}

#: state -> the states a job may move to from it
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.SUBMITTED: frozenset({S.PENDING, S.AWAITING_APPROVAL, S.ACCEPTED, *_ENDS}),
    S.PENDING: frozenset({S.PENDING, S.AWAITING_APPROVAL, S.ACCEPTED, *_ENDS}),
    S.AWAITING_APPROVAL: frozenset({S.PENDING, S.ACCEPTED, *_ENDS}),
    S.ACCEPTED: frozenset({S.PENDING, S.RUNNING, *_ENDS}),
    S.RUNNING: frozenset({S.RELEASED, S.FAILED, S.ABORTED, S.CONTRIBUTED}),
    **{s: frozenset() for s in FINAL_STATES},
    # reconciliation only: up to the outcome the parties agree on
    S.ABORTED: frozenset({S.FAILED, S.RELEASED}),
    S.FAILED: frozenset({S.RELEASED}),
    S.CONTRIBUTED: frozenset({S.ABORTED, S.FAILED, S.RELEASED}),
}

#: The outcomes of a job that ran, lowest first: a node's recorded outcome only moves up
#: (``contributed``, an input-only owner's, is below every outcome the compute parties reach).
OUTCOME_ORDER: tuple[JobState, ...] = (S.CONTRIBUTED, S.ABORTED, S.FAILED, S.RELEASED)


def outranks(a: JobState, b: JobState) -> bool:
    """Whether outcome ``a`` is above ``b`` in :data:`OUTCOME_ORDER` (both outcomes of a run job)."""
    return a in OUTCOME_ORDER and b in OUTCOME_ORDER and OUTCOME_ORDER.index(a) > OUTCOME_ORDER.index(b)


def agreed_outcome(states: list[JobState]) -> JobState | None:
    """The job's one outcome from the parties' recorded outcomes: released if any party released
    (an output reached a recipient: the job counts as released, and spent, everywhere), else
    failed if any failed, else aborted; None if none of them is an outcome of a run job
    (``contributed`` is not: an input-only owner's part says nothing about the job's outcome)."""
    ranked = [s for s in states if s in OUTCOME_ORDER and s is not S.CONTRIBUTED]
    return max(ranked, key=OUTCOME_ORDER.index) if ranked else None

#: how far along a job in each state is (the progress bar of views and the dashboard); a job
#: that ends without a release (denied, failed, aborted, cancelled) keeps the fraction it had
#: reached (:meth:`tessera.node.store.JobStore.transition`): only a release is 1.0
FRACTION: dict[JobState, float] = {S.SUBMITTED: 0.0, S.PENDING: 0.1, S.AWAITING_APPROVAL: 0.2, S.ACCEPTED: 0.3,
                                   S.RUNNING: 0.5, **{s: 1.0 for s in FINAL_STATES}}


def running_fraction(party_fraction: float) -> float:
    """A running job's fraction from its party process's own (0..1): from the ``running`` state's
    to 0.99 (1.0 is the final state's), never below the state's, rounded to 0.1%."""
    f = party_fraction if 0.0 <= party_fraction <= 1.0 else (1.0 if party_fraction > 1.0 else 0.0)
    start = FRACTION[S.RUNNING]
    return round(start + (0.99 - start) * f, 3)


def may_move(src: JobState, dst: JobState) -> bool:
    return dst in TRANSITIONS[src]
