import time

import numpy as np
import pytest

from tessera.errors import ProtocolAbort, SessionError
from tessera.runtime import run_threads
from tessera.runtime.inprocess import party_names


class Boom(Exception):
    pass


@pytest.mark.parametrize("protocol", ["semi2k", "rep3"])
def test_a_failing_party_aborts_the_others_and_the_root_cause_is_raised(protocol):
    def prog(s):
        a = s.input(0, np.ones(4) if s.me == 0 else None, shape=(4,))
        if s.me == 1:
            raise Boom("party 1 broke")
        return (a * a).reveal()

    start = time.perf_counter()
    with pytest.raises(Boom):
        run_threads(prog, 3, protocol=protocol, timeout=30)
    assert time.perf_counter() - start < 10  # aborted promptly, not by timeout


@pytest.mark.parametrize("protocol", ["semi2k", "rep3"])
def test_every_other_endpoint_stops_with_who_and_why(protocol):
    import threading

    from tessera.net.memory import memory_mesh
    from tessera.runtime.inprocess import run_dealer, run_party

    names = ["P0", "P1", "P2"]
    mesh = memory_mesh(names + (["dealer"] if protocol == "semi2k" else []), timeout=30)
    outcome = {}

    def prog(s):
        a = s.input(0, np.ones(4) if s.me == 0 else None, shape=(4,))
        if s.me == 1:
            raise Boom("party 1 broke")
        return (a * a).reveal()

    def party(i):
        try:
            run_party(prog, protocol, mesh[i], names, 16)
        except BaseException as e:
            outcome[mesh[i].name] = e

    def dealer():
        try:
            run_dealer(mesh[-1], 3)
        except BaseException as e:
            outcome["dealer"] = e

    threads = [threading.Thread(target=party, args=(i,)) for i in range(3)]
    if protocol == "semi2k":
        threads.append(threading.Thread(target=dealer))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(outcome.pop("P1"), Boom)
    assert set(outcome) == ({"P0", "P2", "dealer"} if protocol == "semi2k" else {"P0", "P2"})
    for e in outcome.values():  # wherever each was (set-up, product, opening), it names who and why
        assert isinstance(e, ProtocolAbort) and e.party == "P1" and "party 1 broke" in e.reason


def test_communication_is_accounted_per_party():
    n = 1000

    def prog(s):
        a = s.input(0, np.ones(n) if s.me == 0 else None, shape=(n,))
        b = s.input(1, np.ones(n) if s.me == 1 else None, shape=(n,))
        (a * b).reveal()

    r3 = run_threads(prog, 3, protocol="rep3")
    r2 = run_threads(prog, 3, protocol="semi2k")
    # rep3: 2 inputs x 2 msgs x 8n from the owners, mul+trunc 36n in all (the helper 10n, the others 16n
    # and 10n: a word and a 16-bit word each way), reveal 8n each
    assert sum(r3.bytes_sent.values()) == pytest.approx(8 * n * (4 + 3) + 36 * n, rel=0.01)
    # semi2k, 3 parties: inputs free, open d,e 16n to 2 peers, trunc 8n to 2 peers, reveal 8n to 2
    for p in ["P0", "P1", "P2"]:
        assert r2.bytes_sent[p] == pytest.approx(2 * 8 * n * 4, rel=0.01)
    assert r2.bytes_sent["dealer"] == pytest.approx(8 * n * 3, rel=0.01)  # c, r_msb, r_mid corrections
    assert r2.rounds >= 3 and r3.rounds >= 5


def test_party_names_are_validated():
    assert party_names(2) == ["P0", "P1"]
    with pytest.raises(SessionError):
        party_names(["a", "a"])
    with pytest.raises(SessionError):
        party_names(["a", "dealer"])
