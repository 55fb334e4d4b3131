"""The same PSI over the mutual-TLS transport (endpoints as threads of this process)."""

import threading

import pytest

from tessera.errors import ProtocolAbort
from tessera.psi import PsiSpec, run_psi
from tests.net.helpers import close_all, identities, mesh_in_threads


def _run(tmp_path, sets, spec, fail=None):
    names = [f"bank-{i}" for i in range(len(sets))]
    ids, eps = identities(tmp_path / "keys", names)
    chans, errors = mesh_in_threads(ids, eps, timeout=20, connect_timeout=10)
    assert not errors
    results, failures = {}, {}

    def party(i):
        try:
            if i == fail:
                chans[i].abort("operator stopped the job")
                raise RuntimeError("stopped")
            results[i] = run_psi(chans[i], sets[i], spec)
        except BaseException as e:
            failures[i] = e

    threads = [threading.Thread(target=party, args=(i,)) for i in range(len(sets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    close_all(chans)
    return results, failures


@pytest.mark.parametrize("parties, mode", [(2, "intersection"), (3, "aligned")])
def test_psi_over_tls(tmp_path, parties, mode):
    sets = [[f"c{i}" for i in range(k * 40, k * 40 + 200)] for k in range(parties)]
    results, failures = _run(tmp_path, sets, PsiSpec(mode))
    assert not failures
    truth = set(sets[0]).intersection(*sets[1:])
    assert all(r.size == len(truth) for r in results.values())
    if mode == "intersection":
        assert [sets[0][i] for i in results[0].rows] == [sets[1][i] for i in results[1].rows]


def test_an_abort_over_tls_stops_the_peer(tmp_path):
    results, failures = _run(tmp_path, [["a"], ["a"]], PsiSpec("size"), fail=1)
    assert results == {} and isinstance(failures[0], ProtocolAbort) and failures[0].party == "bank-1"
