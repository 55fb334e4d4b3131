import multiprocessing as mp
import threading
from pathlib import Path

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


def test_a_zombie_or_a_reused_pid_does_not_hold_a_reservation(tmp_path):
    """A party process whose node died is re-parented to init and may stay a zombie for seconds:
    ``kill(pid, 0)`` still succeeds on it. Recovery must take it for dead (this was #20)."""
    import subprocess
    import sys
    import time

    from tessera.governance.ledger import pid_alive, process_owner

    led = SqliteLedger(tmp_path / "l.db")
    led.set_budget("tx", 3.0, 0.0)
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # never waited for: a zombie once it exits
    owner = process_owner(child.pid)
    assert owner.startswith(f"pid:{child.pid}:")
    SqliteLedger(tmp_path / "l.db", owner=owner).reserve("j1", "tx", 0.5)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not pid_alive(owner) and not pid_alive(f"pid:{child.pid}")
    assert led.recover() == {"j1": "released"}
    assert led.remaining("tx")[0] == pytest.approx(3.0)
    child.wait()
    # a live process with another start time is another process that reuses the pid
    me = process_owner()
    assert pid_alive(me)
    assert not pid_alive(me.rsplit(":", 1)[0] + ":1")


def test_recover_waits_for_every_owner_and_commits_if_any_output_started(tmp_path):
    led = SqliteLedger(tmp_path / "l.db")
    led.set_budget("a", 3.0, 0.0)
    led.set_budget("b", 3.0, 0.0)
    SqliteLedger(tmp_path / "l.db", owner="alive").reserve("j1", "a", 1.0)
    SqliteLedger(tmp_path / "l.db", owner="dead").reserve("j1", "b", 1.0)
    SqliteLedger(tmp_path / "l.db", owner="dead").reserve("j2", "a", 1.0)
    led.mark_output_started("j2")
    assert {j: sorted(o) for j, o in led.reserved().items()} == {"j1": ["alive", "dead"], "j2": ["dead"]}
    assert led.recover(lambda o: o == "alive") == {"j2": "committed"}  # j1 is still held by a live owner
    assert led.recover(lambda o: False) == {"j1": "released"}
    assert led.remaining("a")[0] == pytest.approx(2.0) and led.remaining("b")[0] == pytest.approx(3.0)
    assert led.reserved() == {}
