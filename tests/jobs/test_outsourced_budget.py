"""#17.3: an input-only owner's charge is spent unless every compute party confirms, signed, that
the job aborted before any output share left. A compute party "killed" in the thread runtime: its
thread dies at the output barrier (the test-only crash point, made to raise instead of exiting the
process); one real-process run kills a compute party's process."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tessera.data.schema import Column, Schema
from tessera.errors import TesseraError
from tessera.governance.ledger import SqliteLedger
from tessera.jobs import budget
from tessera.jobs.budget import CRASH_AT_BARRIER_ENV
from tessera.jobs.local import run_local
from tessera.jobs.model import LedgerRef
from tessera.jobs.outcome import AbortStatement, BarrierRecord, StatementKey, settle_owner, sign_abort

SCHEMA = Schema(columns=(Column(name="x", type="float", min=-100.0, max=100.0),))
OWNERS = ("h1", "h2", "h3")
C3 = ["c1", "c2", "c3"]


def setup(tmp_path, owners=OWNERS) -> tuple[dict[str, pd.DataFrame], dict[str, LedgerRef]]:
    rng = np.random.default_rng(4)
    frames = {p: pd.DataFrame({"x": rng.uniform(-50, 50, 100)}) for p in owners}
    ledgers = {}
    for p in owners:
        path = str(tmp_path / f"{p}.db")
        SqliteLedger(path).set_budget(f"d_{p}", 3.0, 1e-6)
        ledgers[p] = LedgerRef(path=path, dataset=f"d_{p}")
    return frames, ledgers


def states(ledgers, job_id):
    return {p: SqliteLedger(ref.path).state(job_id) for p, ref in ledgers.items()}


class Killed(Exception):
    pass


def kill_at(monkeypatch, party: str, where: str) -> None:
    def crash(p: str, w: str) -> None:
        if (p, w) == (party, where):
            raise Killed(f"{p} killed at {w}")
    monkeypatch.setattr(budget, "crash_point_for_tests", crash)


def run(frames, ledgers, job_id, runtime="threads"):
    return run_local("dp_describe", frames, SCHEMA, protocol="rep3", columns=["x"], epsilon=1.0, job_id=job_id,
                     ledgers=ledgers, compute=C3, runtime=runtime, timeout=120)


def test_a_finished_job_is_spent_at_every_input_only_owner(tmp_path):
    frames, ledgers = setup(tmp_path)
    res = run(frames, ledgers, "j-ok")
    # every owner's rows were counted: the noisy count within 10 released standard deviations
    # of 300 (a 95% interval would miss it in 1 run of 20; this bound fails with odds below 1e-6)
    assert abs(res["noisy_count"] - 300) <= 10 * res["guarantee"]["noise_std_released"]["count"]
    assert states(ledgers, "j-ok") == {p: [(f"d_{p}", "committed")] for p in OWNERS}
    assert all(res.per_party[p].get("budget_left") is None for p in OWNERS)  # owners receive no output
    assert res.reports["h1"].result is not None and res.reports["h1"].result.budget_left[0] == pytest.approx(2.0)


def test_a_compute_party_lost_before_the_reveal_gives_every_owner_its_budget_back(tmp_path, monkeypatch):
    frames, ledgers = setup(tmp_path)
    kill_at(monkeypatch, "c2", "before")
    with pytest.raises(Killed, match="c2 killed at before"):
        run(frames, ledgers, "j-before")
    assert states(ledgers, "j-before") == {p: [(f"d_{p}", "released")] for p in OWNERS}
    assert all(SqliteLedger(r.path).remaining(r.dataset)[0] == pytest.approx(3.0) for r in ledgers.values())


@pytest.mark.parametrize("where", ["after"])
def test_a_compute_party_lost_at_or_after_the_barrier_leaves_every_owner_spent(tmp_path, monkeypatch, where):
    """After the barrier an output share may have left: spent. Between its rounds (others had
    marked, so they do not sign): spent too, erring towards charging."""
    frames, ledgers = setup(tmp_path)
    kill_at(monkeypatch, "c3", where)
    with pytest.raises(Killed):
        run(frames, ledgers, f"j-{where}")
    assert states(ledgers, f"j-{where}") == {p: [(f"d_{p}", "committed")] for p in OWNERS}


def test_the_refund_needs_a_valid_signature_of_every_compute_party(tmp_path):
    _, ledgers = setup(tmp_path, owners=("h1",))
    ref = ledgers["h1"]
    book = SqliteLedger(ref.path)
    keys = {c: StatementKey() for c in C3}
    public = {c: k.public for c, k in keys.items()}

    def signed(job):
        return {c: keys[c].sign(job, c) for c in C3}

    bad = {
        "silent": lambda j: signed(j) | {"c3": None},
        "another party's key": lambda j: signed(j) | {"c3": keys["c1"].sign(j, "c3")},
        "another job": lambda j: signed(j) | {"c3": keys["c3"].sign("other-job", "c3")},
        "garbage": lambda j: signed(j) | {"c2": AbortStatement(job_id=j, party="c2", signature="00" * 64)},
    }
    for n, make in enumerate(bad.values()):
        job = f"j{n}"
        book.reserve(job, ref.dataset, 0.5)
        assert settle_owner(ref, job, make(job), public) == "committed"
        assert book.state(job) == [(ref.dataset, "committed")]
    book.reserve("jok", ref.dataset, 0.5)
    assert settle_owner(ref, "jok", signed("jok"), public) == "released"
    assert book.remaining(ref.dataset)[0] == pytest.approx(3.0 - 4 * 0.5)


def test_a_party_that_marked_signs_nothing(tmp_path):
    rec = BarrierRecord(tmp_path / "c1.barrier")
    key = StatementKey()
    assert sign_abort(rec, key, "j", "c1") is None  # no record at all: cannot tell
    rec.start()
    assert sign_abort(rec, key, "j", "c1") is not None
    rec.mark()
    assert sign_abort(rec, key, "j", "c1") is None
    assert "PRIVATE" not in repr(key) and len(repr(key)) < 60


@pytest.mark.slow
def test_a_compute_process_killed_before_the_reveal_releases_and_owners_left_early(tmp_path, monkeypatch):
    """Real processes over mutual TLS: c2's process dies just before the barrier; the owners'
    processes had sent their shares and exited long before, yet the job ran on until then."""
    frames, ledgers = setup(tmp_path, owners=("h1", "h2"))
    monkeypatch.setenv(CRASH_AT_BARRIER_ENV, "c2:before")
    with pytest.raises(TesseraError):
        run(frames, ledgers, "jp-before", runtime="cluster")
    assert states(ledgers, "jp-before") == {p: [(f"d_{p}", "released")] for p in ("h1", "h2")}
