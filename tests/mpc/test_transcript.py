"""The session transcript hash: bound to the session id and to every opening's kind, shape and
recipients (and the values opened to everybody), identical at every party of a session (#15.14)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest

from tessera.data.synthetic import bank_transactions
from tessera.jobs.local import run_local
from tessera.mpc.session import Session
from tessera.net.memory import memory_mesh

NAMES = ["a", "b", "c"]


def _hashes(program: Any, session_id: bytes, protocol: str = "rep3") -> dict[str, str]:
    """Run ``program(session)`` at three parties in threads over one in-memory session; the
    transcript hash of each party."""
    mesh = memory_mesh(NAMES, timeout=30, session_id=session_id)
    out: dict[str, str] = {}
    errors: list[BaseException] = []

    def party(i: int) -> None:
        try:
            s = Session.start(protocol, mesh[i], NAMES)
            program(s)
            out[s.party] = s.transcript_hash()
            s.close()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=party, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return out


def _sum_to(to: Any, shape: tuple[int, ...] = (3,)):
    def program(s: Session) -> None:
        xs = [s.input(p, np.ones(shape) if s.party == p else None, shape=shape) for p in NAMES]
        s.reveal(xs[0] + xs[1] + xs[2], to=to)
    return program


@pytest.fixture(scope="module")
def banks():
    frames, schema, _ = bank_transactions(6000, seed=9)
    return frames, schema


@pytest.mark.parametrize("protocol", ["rep3", "semi2k"])
def test_two_jobs_differing_only_in_iterations_have_different_hashes_and_every_party_agrees(banks, protocol):
    frames, schema = banks
    hashes = {}
    for iterations in (8, 9):
        res = run_local("logistic_regression", frames, schema, features=["amount", "merchant_risk"],
                        target="is_fraud", protocol=protocol, runtime="threads", iterations=iterations,
                        max_inverse=1e6)  # rows of rare events: a badly conditioned Hessian
        per_party = {n: r.result.transcript for n, r in res.reports.items()}
        assert len(set(per_party.values())) == 1, per_party  # every party of the job agrees
        hashes[iterations] = per_party["bank_a"]
    assert hashes[8] != hashes[9]  # the same (empty) session id: the openings differ


def test_a_different_session_id_gives_a_different_hash_for_the_same_computation():
    first = _hashes(_sum_to(None), b"S" * 16)
    again = _hashes(_sum_to(None), b"S" * 16)
    other = _hashes(_sum_to(None), b"T" * 16)
    assert len(set(first.values())) == len(set(other.values())) == 1
    assert first == again  # nothing random was opened: the same session, the same transcript
    assert first["a"] != other["a"]


def test_an_openings_recipients_and_shape_enter_the_hash_even_when_its_values_do_not():
    sid = b"R" * 16
    to_a = _hashes(_sum_to("a"), sid)
    to_b = _hashes(_sum_to("b"), sid)
    to_a_wider = _hashes(_sum_to("a", (4,)), sid)
    for h in (to_a, to_b, to_a_wider):
        assert len(set(h.values())) == 1, h  # a recipient and the others still agree
    assert len({to_a["a"], to_b["a"], to_a_wider["a"]}) == 3


def test_the_parties_of_a_job_in_separate_processes_agree_on_a_hash_bound_to_their_tls_session(banks):
    frames, schema = banks
    kw = dict(features=["amount", "merchant_risk"], target="is_fraud", protocol="rep3", iterations=8,
              max_inverse=1e6)
    over_tls = run_local("logistic_regression", frames, schema, runtime="cluster", **kw)
    hashes = {n: r.result.transcript for n, r in over_tls.reports.items()}
    assert len(hashes) == 3 and len(set(hashes.values())) == 1, hashes
    in_threads = run_local("logistic_regression", frames, schema, runtime="threads", **kw)
    # the same computation, the same openings, but another session: another transcript
    assert in_threads.reports["bank_a"].result.transcript != hashes["bank_a"]


def test_a_session_id_given_explicitly_overrides_the_channels():
    first = _hashes(_sum_to(None), b"S" * 16)
    mesh = memory_mesh(NAMES, timeout=30, session_id=b"S" * 16)
    out: dict[str, str] = {}

    def party(i: int) -> None:
        s = Session.start("rep3", mesh[i], NAMES, session_id=b"U" * 16)
        _sum_to(None)(s)
        out[s.party] = s.transcript_hash()

    threads = [threading.Thread(target=party, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(out.values())) == 1 and out["a"] != first["a"]
    assert out == _hashes(_sum_to(None), b"U" * 16)
