"""Budget accounting as a hook on the session's release, and the output barrier.

A differentially private job is charged to each data owner's ledger: :meth:`BudgetHook.reserve`
reserves the job's (epsilon, delta) before any input is shared (a job over budget is refused
before it starts, and everybody aborts with nothing revealed); :meth:`commit` settles it when the
job ends, :meth:`release` gives it back if the job fails before any output share left (the ledger
refuses to release a spent reservation).

**Output started, at every owner** (#15.3). Under rep3 an opening to one party needs a message
from one other party only, so "mark spent before *this* party sends a share" is not enough: a
party that crashed just before its own mark would get its reservation back although a recipient
reconstructed an output computed on its data. :class:`OutputBarrier` runs on the first
:meth:`Session.reveal <tessera.mpc.session.Session.reveal>` of every job (the one reveal path of
a job's outputs), in two synchronising rounds among the compute parties:

1. *ready*: every party sends every other a ``ready`` message and waits for all of theirs;
2. every party marks "output started" durably in its ledger;
3. *marked*: every party sends every other a ``marked`` message and waits for all of theirs.

Only then does any output share leave. So once any recipient can reconstruct any output, every
party has marked: the job is spent at every owner. A party that never marked never sent
``marked``, so nobody passed step 3 and no output share left anywhere: releasing its reservation
is safe. A party lost before the barrier (before step 1 completes) stops everybody before anyone
marks: every reservation is released. Lost between steps 1 and 3, the parties that had marked stay
spent although nothing was revealed: the rule errs towards charging, never towards leaking.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from tessera.errors import SessionError
from tessera.governance.ledger import SqliteLedger
from tessera.jobs.model import DpCharge, LedgerRef
from tessera.mpc.session import Session
from tessera.runtime.forkserver import LAUNCHER_ENV

__all__ = ["BudgetHook", "OutputBarrier", "READY_MESSAGE", "BARRIER_MESSAGE", "CRASH_AT_BARRIER_ENV", "crash_point_for_tests"]

#: What every party sends every other party at the barrier's two rounds.
READY_MESSAGE = b"tessera/output-barrier/ready/v1"
BARRIER_MESSAGE = b"tessera/output-barrier/marked/v1"

#: For tests only: ``PARTY:before`` ends party PARTY's process just before the barrier (so
#: before its mark); ``PARTY:unmarked`` after the *ready* round, before its mark;
#: ``PARTY:after`` just after the barrier, before any output share leaves it; ``PARTY:output``
#: once every output is revealed, before the party reports. A ``:node`` suffix kills the party's
#: node (its parent process) first, as a node killed at that moment; ``:wait=PATH`` holds the party
#: there until the file PATH exists (at most 120 s) instead. Read only here
#: (:func:`crash_point_for_tests`); never set outside the test suite.
CRASH_AT_BARRIER_ENV = "TESSERA_TEST_CRASH_AT_OUTPUT_BARRIER"


class BudgetHook:
    """One party's charge for one job in its ledger."""

    def __init__(self, job_id: str, charge: DpCharge, ledger: LedgerRef) -> None:
        self.job_id, self.charge, self.ref = job_id, charge, ledger
        self.book = SqliteLedger(ledger.path)

    def reserve(self) -> None:
        """Reserve (before any input is shared); the job's :class:`OutputBarrier` marks it spent."""
        self.book.reserve(self.job_id, self.ref.dataset, self.charge.epsilon, self.charge.delta)

    def output_started(self) -> None:
        """Mark the reservation spent (durably) before any output share can leave any party."""
        self.book.mark_output_started(self.job_id)

    def commit(self) -> tuple[float, float]:
        """Settle the charge at the end of the job; returns the budget left for the dataset."""
        self.book.commit(self.job_id)
        left = self.book.remaining(self.ref.dataset)
        return float(left[0]), float(left[1])

    def remaining(self) -> tuple[float, float]:
        """The budget left for the dataset (a reservation counts as spent)."""
        left = self.book.remaining(self.ref.dataset)
        return float(left[0]), float(left[1])

    def release(self) -> None:
        """The job failed: give the reservation back unless an output share had left."""
        self.book.release(self.job_id)


class OutputBarrier:
    """Before the job's first output share leaves any party: the two synchronising rounds around
    this party's ``mark`` (its ledger's "output started"; see the module docstring). Later
    reveals pass straight through."""

    def __init__(self, mark: Callable[[], None] | None = None) -> None:
        self.mark = mark
        self.passed = False

    def attach(self, session: Session) -> None:
        session.before_reveal(lambda _names: self._first_output(session))

    def _first_output(self, session: Session) -> None:
        if self.passed:
            return
        crash_point_for_tests(session.party, "before")
        _round(session, READY_MESSAGE)
        crash_point_for_tests(session.party, "unmarked")
        if self.mark is not None:
            self.mark()
        _round(session, BARRIER_MESSAGE)
        self.passed = True
        crash_point_for_tests(session.party, "after")


def _round(session: Session, message: bytes) -> None:
    """Send ``message`` to every other compute party and receive theirs."""
    ch = session.protocol.ch
    peers = [p for p in range(session.n_parties) if p != session.me]
    for p in peers:
        ch.send(p, message)
    ch.round()
    for p in peers:
        if bytes(ch.recv(p)) != message:
            raise SessionError(f"party {session.parties[p]!r} is not at the output barrier of the job "
                               "(it sent another message)")


def crash_point_for_tests(party: str, where: str) -> None:
    """The test-only crash hook (:data:`CRASH_AT_BARRIER_ENV`); does nothing unless it names this
    party and point."""
    hook = os.environ.get(CRASH_AT_BARRIER_ENV)
    if hook is None or not hook.startswith(f"{party}:{where}"):
        return
    if hook.startswith(f"{party}:{where}:wait="):
        gate = hook.split("=", 1)[1]
        for _ in range(1200):
            if os.path.exists(gate):
                return
            time.sleep(0.1)
        return
    if hook == f"{party}:{where}:node":  # the node that launched this party process
        os.kill(int(os.environ[LAUNCHER_ENV]), signal.SIGKILL)
    if hook in (f"{party}:{where}", f"{party}:{where}:node"):
        os._exit(17)



