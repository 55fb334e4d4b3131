"""The states of a job at a node, the one table of the moves between them, and the progress
fraction each state stands for.

    submitted -> pending | awaiting_approval | accepted -> running -> released | aborted | failed
    (any state before running) -> denied | failed | aborted

A job in a final state never moves again. ``pending -> pending`` is the coordinator resuming a
job after a restart; ``accepted -> pending`` too (the decisions are gathered again).
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["JobState", "Vote", "FINAL_STATES", "STATES", "TRANSITIONS", "FRACTION", "may_move"]


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


class Vote(StrEnum):
    """A node's decision on a job (what the coordinator gathers)."""

    ACCEPTED = "accepted"
    DENIED = "denied"
    AWAITING_APPROVAL = "awaiting_approval"
    #: the coordinator could not ask the node
    UNREACHABLE = "unreachable"


S = JobState
STATES: tuple[str, ...] = tuple(s.value for s in JobState)
FINAL_STATES: frozenset[JobState] = frozenset({S.RELEASED, S.DENIED, S.FAILED, S.ABORTED})
_ENDS = {S.DENIED, S.FAILED, S.ABORTED}

#: state -> the states a job may move to from it
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    S.SUBMITTED: frozenset({S.PENDING, S.AWAITING_APPROVAL, S.ACCEPTED, *_ENDS}),
    S.PENDING: frozenset({S.PENDING, S.AWAITING_APPROVAL, S.ACCEPTED, *_ENDS}),
    S.AWAITING_APPROVAL: frozenset({S.PENDING, S.ACCEPTED, *_ENDS}),
    S.ACCEPTED: frozenset({S.PENDING, S.RUNNING, *_ENDS}),
    S.RUNNING: frozenset({S.RELEASED, S.FAILED, S.ABORTED}),
    **{s: frozenset() for s in FINAL_STATES},
}

#: how far along a job in each state is (the progress bar of views and the dashboard)
FRACTION: dict[JobState, float] = {S.SUBMITTED: 0.0, S.PENDING: 0.1, S.AWAITING_APPROVAL: 0.2, S.ACCEPTED: 0.3,
                                   S.RUNNING: 0.5, **{s: 1.0 for s in FINAL_STATES}}


def may_move(src: JobState, dst: JobState) -> bool:
    return dst in TRANSITIONS[src]
