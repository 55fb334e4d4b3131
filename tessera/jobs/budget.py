"""Budget accounting as a hook on the session's release.

A differentially private job is charged to each data owner's ledger: :meth:`BudgetHook.attach`
reserves the job's (epsilon, delta) before any input is shared (a job over budget is refused
before it starts, and everybody aborts with nothing revealed) and registers on
:meth:`Session.before_reveal <tessera.mpc.session.Session.before_reveal>`, so the reservation is
marked spent the moment this party sends a share of an output (an abort after that may already
have leaked it); :meth:`commit` settles it when the job ends, :meth:`release` gives it back if the
job fails before any output share left (the ledger refuses to release a spent reservation).
"""

from __future__ import annotations

from tessera.governance.ledger import SqliteLedger
from tessera.jobs.model import DpCharge, LedgerRef
from tessera.mpc.session import Session

__all__ = ["BudgetHook"]

class BudgetHook:
    """One party's charge for one job in its ledger."""

    def __init__(self, job_id: str, charge: DpCharge, ledger: LedgerRef) -> None:
        self.job_id, self.charge, self.ref = job_id, charge, ledger
        self.book = SqliteLedger(ledger.path)

    def attach(self, session: Session) -> None:
        """Reserve (before any input is shared), and mark spent before the first output share leaves."""
        self.book.reserve(self.job_id, self.ref.dataset, self.charge.epsilon, self.charge.delta)
        session.before_reveal(self._output_started)

    def _output_started(self, _: list[str]) -> None:
        self.book.mark_output_started(self.job_id)

    def commit(self) -> tuple[float, float]:
        """Settle the charge at the end of the job; returns the budget left for the dataset."""
        self.book.commit(self.job_id)
        left = self.book.remaining(self.ref.dataset)
        return float(left[0]), float(left[1])

    def release(self) -> None:
        """The job failed: give the reservation back unless an output share had left."""
        self.book.release(self.job_id)
