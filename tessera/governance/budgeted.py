"""Running a differentially private job against each data owner's privacy-budget ledger.

The party program :func:`run_budgeted` wraps the analysis executor: the job's (epsilon, delta)
is reserved in this party's ledger before any input is shared (a job over budget is refused
before it starts and everybody aborts with nothing revealed); the reservation is marked spent
the moment this party sends a share of an output (an abort after that may already have leaked
it), committed when the job ends, and released if the job fails before any output share left.
"""

from __future__ import annotations

import secrets
from typing import Any

from tessera import analytics
from tessera.governance.ledger import SqliteLedger
from tessera.mpc.session import Session
from tessera.plan.executor import run_analysis

__all__ = ["run_budgeted"]


def run_budgeted(session: Session, ledger: str, dataset: str, job_id: str, **job: Any) -> dict[str, Any]:
    """One party's side of a DP job, accounted in its ledger at ``ledger`` for ``dataset``."""
    params = job.get("params", {})
    if "epsilon" not in params:
        raise ValueError("a budgeted job needs an epsilon parameter")
    # charge what the analysis will actually use, defaults included (e.g. its default delta)
    checked = analytics.get(job["analysis"], job.get("version")).parse_params(params)
    epsilon, delta = float(checked.epsilon), float(getattr(checked, "delta", 0.0))
    book = SqliteLedger(ledger)
    book.reserve(job_id, dataset, epsilon, delta)
    session.before_reveal(lambda _: book.mark_output_started(job_id))
    try:
        result = run_analysis(session, **job)
    except BaseException:
        book.release(job_id)
        raise
    book.commit(job_id)
    result["budget_left"] = book.remaining(dataset)
    return result


def new_job_id() -> str:
    return secrets.token_hex(8)
