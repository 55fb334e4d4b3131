import multiprocessing as mp
import threading

import pytest

from tessera.errors import BudgetExceeded
from tessera.governance.ledger import SqliteLedger


def test_reserve_commit_release_and_remaining(tmp_path):
    led = SqliteLedger(tmp_path / "l.db")
    led.set_budget("tx", 3.0, 1e-6)
    led.reserve("j1", "tx", 1.0)
    led.reserve("j2", "tx", 1.5, 5e-7)
    assert led.remaining("tx") == pytest.approx((0.5, 5e-7))
    with pytest.raises(BudgetExceeded, match="remaining epsilon 0.5"):
        led.reserve("j3", "tx", 0.6)
    assert led.release("j1") == "released"
    led.commit("j2")
    assert led.remaining("tx") == pytest.approx((1.5, 5e-7))
    led.reserve("j4", "tx", 1.0)
    led.mark_output_started("j4")
    assert led.release("j4") == "committed"  # an output share was sent: the budget is spent
    assert led.remaining("tx")[0] == pytest.approx(0.5)


def test_fifty_concurrent_threads_against_a_budget_for_ten(tmp_path):
    SqliteLedger(tmp_path / "l.db").set_budget("tx", 10.0, 0.0)
    ok, denied = [], []

    def job(i):
        led = SqliteLedger(tmp_path / "l.db")
        try:
            led.reserve(f"job{i}", "tx", 1.0)
            led.commit(f"job{i}")
            ok.append(i)
        except BudgetExceeded:
            denied.append(i)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ok) == 10 and len(denied) == 40
    assert SqliteLedger(tmp_path / "l.db").remaining("tx")[0] == pytest.approx(0.0)


def _worker(path, start, results):
    led = SqliteLedger(path)
    for i in range(start, start + 10):
        try:
            led.reserve(f"job{i}", "tx", 1.0)
            led.commit(f"job{i}")
            results.put(1)
        except BudgetExceeded:
            results.put(0)


def test_fifty_jobs_from_five_processes_exactly_ten_commit(tmp_path):
    path = str(tmp_path / "l.db")
    SqliteLedger(path).set_budget("tx", 10.0, 0.0)
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(path, 10 * k, results)) for k in range(5)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in range(50)]
    for p in procs:
        p.join(60)
    assert sum(outcomes) == 10


def test_recovery_after_a_crash_settles_dead_jobs(tmp_path):
    path = tmp_path / "l.db"
    SqliteLedger(path).set_budget("tx", 5.0)
    dead = SqliteLedger(path, owner="pid:999999999")  # a process that no longer exists
    dead.reserve("quiet", "tx", 1.0)
    dead.reserve("leaked", "tx", 1.0)
    dead.mark_output_started("leaked")
    alive = SqliteLedger(path)
    alive.reserve("running", "tx", 1.0)
    settled = SqliteLedger(path).recover()
    assert settled == {"quiet": "released", "leaked": "committed"}
    assert alive.state("running") == [("tx", "reserved")]
    assert SqliteLedger(path).remaining("tx")[0] == pytest.approx(3.0)
