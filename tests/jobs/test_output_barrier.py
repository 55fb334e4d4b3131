"""#15.3: once any recipient can reconstruct any output, the job is spent at every owner.

Real three-party rep3 runs (one OS process per party, mutual TLS). One party's process is made to
die at the output barrier through the test-only hook ``TESSERA_TEST_CRASH_AT_OUTPUT_BARRIER``:
just before its own "output started" mark (so before the barrier), or just after the barrier
(before it sends any output share). The lost party's reservation is then settled the way its
node's sweep settles it (:meth:`SqliteLedger.recover`: its owner process is gone)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tessera.data.schema import Column, Schema
from tessera.errors import TesseraError
from tessera.governance.ledger import SqliteLedger
from tessera.jobs.budget import BARRIER_MESSAGE, CRASH_AT_BARRIER_ENV
from tessera.jobs.local import run_local
from tessera.jobs.model import LedgerRef

pytestmark = pytest.mark.slow

SCHEMA = Schema(columns=(Column(name="x", type="float", min=-100.0, max=100.0),))
PARTIES = ("a", "b", "c")


def setup(tmp_path) -> tuple[dict[str, pd.DataFrame], dict[str, LedgerRef]]:
    rng = np.random.default_rng(4)
    frames = {p: pd.DataFrame({"x": rng.uniform(-50, 50, 300)}) for p in PARTIES}
    ledgers = {}
    for p in PARTIES:
        path = str(tmp_path / f"{p}.db")
        SqliteLedger(path).set_budget(f"tx_{p}", 3.0, 1e-6)
        ledgers[p] = LedgerRef(path=path, dataset=f"tx_{p}")
    return frames, ledgers


def run(frames, ledgers, job_id: str):
    return run_local("dp_describe", frames, SCHEMA, protocol="rep3", columns=["x"], epsilon=1.0, job_id=job_id,
                     ledgers=ledgers, timeout=60)


def settled(ledgers: dict[str, LedgerRef], job_id: str) -> dict[str, list[tuple[str, str]]]:
    for ref in ledgers.values():
        SqliteLedger(ref.path).recover()  # what each node's sweep does for an owner that is gone
    return {p: SqliteLedger(ref.path).state(job_id) for p, ref in ledgers.items()}


@pytest.mark.parametrize("victim", ["a", "c"])
def test_a_party_lost_after_the_barrier_is_spent_at_every_owner(tmp_path, monkeypatch, victim):
    frames, ledgers = setup(tmp_path)
    monkeypatch.setenv(CRASH_AT_BARRIER_ENV, f"{victim}:after")
    with pytest.raises(TesseraError):
        run(frames, ledgers, "j-after")
    states = settled(ledgers, "j-after")
    assert states == {p: [(f"tx_{p}", "committed")] for p in PARTIES}
    for p, ref in ledgers.items():
        assert SqliteLedger(ref.path).remaining(f"tx_{p}")[0] == pytest.approx(2.0)


@pytest.mark.parametrize("victim", ["a", "c"])
def test_a_party_lost_before_its_mark_releases_every_reservation_and_nothing_is_revealed(tmp_path, monkeypatch,
                                                                                          victim):
    frames, ledgers = setup(tmp_path)
    monkeypatch.setenv(CRASH_AT_BARRIER_ENV, f"{victim}:before")
    with pytest.raises(TesseraError) as e:
        run(frames, ledgers, "j-before")
    assert "noisy" not in str(e.value)
    states = settled(ledgers, "j-before")
    assert states == {p: [(f"tx_{p}", "released")] for p in PARTIES}
    for p, ref in ledgers.items():
        assert SqliteLedger(ref.path).remaining(f"tx_{p}")[0] == pytest.approx(3.0)


def test_a_party_lost_between_the_rounds_errs_towards_charging(tmp_path, monkeypatch):
    """Lost after *ready*, before its own mark: the others had marked and stay spent although
    nothing was revealed (nobody passed *marked*); the lost party never marked: released."""
    frames, ledgers = setup(tmp_path)
    monkeypatch.setenv(CRASH_AT_BARRIER_ENV, "b:unmarked")
    with pytest.raises(TesseraError):
        run(frames, ledgers, "j-mid")
    states = settled(ledgers, "j-mid")
    assert states == {"a": [("tx_a", "committed")], "b": [("tx_b", "released")], "c": [("tx_c", "committed")]}


def test_without_a_crash_everybody_commits_and_receives(tmp_path):
    frames, ledgers = setup(tmp_path)
    res = run(frames, ledgers, "j-ok")
    assert set(res.per_party) == set(PARTIES) and all("noisy_count" in out for out in res.per_party.values())
    assert settled(ledgers, "j-ok") == {p: [(f"tx_{p}", "committed")] for p in PARTIES}
    assert BARRIER_MESSAGE.startswith(b"tessera/")
