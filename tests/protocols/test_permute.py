"""One-party oblivious permutation (``Protocol.permute``, ``mpc.functions.permute_rows``).

Correctness: the output reconstructs to ``x[pi]`` exactly, for every owner, under semi2k (2-4
parties + dealer) and rep3, for 1-D and 2-D, integer and fixed-point tensors, and composes.
Privacy (statistical, as ``test_views.py``): every message a party receives during a
permutation is either uniformly random ring words whose distribution does not depend on the
secret values, or a permutation of row indices (the owner's ``rho``) that shows no dependence
on ``pi`` — a leak such as ``rho = pi`` would fail by a huge margin.
"""

import threading

import numpy as np
import pytest
from scipy import stats

from tessera.errors import SessionError
from tessera.mpc import functions as fn
from tessera.mpc.session import Session
from tessera.net.memory import memory_mesh
from tessera.runtime import run_threads
from tests.protocols.helpers import run_on_mesh, top_byte_hist

CONFIGS = [("semi2k", 2), ("semi2k", 3), ("semi2k", 4), ("rep3", 3)]
ALPHA = 1e-6


@pytest.mark.parametrize("protocol,n", CONFIGS)
def test_permutation_reconstructs_exactly_for_every_owner(protocol, n):
    rng = np.random.default_rng(n)
    x = rng.integers(-10**6, 10**6, size=(37, 3)) / 64.0  # exact at 16 fractional bits
    ints = rng.integers(-10**9, 10**9, size=37)
    perms = [rng.permutation(37) for _ in range(n)]

    def prog(s: Session):
        t = s.input(0, x if s.me == 0 else None, shape=x.shape)
        k = s.input(n - 1, ints if s.me == n - 1 else None, shape=ints.shape, frac_bits=0)
        outs = []
        for owner in range(n):
            pi = perms[owner] if s.me == owner else None
            outs += [fn.permute_rows(t, owner, pi), fn.permute_rows(k, s.parties[owner], pi)]
        # composition: owner 0 then owner n-1 on a column slice
        both = fn.permute_rows(fn.permute_rows(t[:, 1], 0, perms[0] if s.me == 0 else None),
                               n - 1, perms[n - 1] if s.me == n - 1 else None)
        return s.reveal(*outs, both)

    got = run_threads(prog, n, protocol=protocol).results["P0"]
    for owner in range(n):
        np.testing.assert_array_equal(got[2 * owner], x[perms[owner]])
        np.testing.assert_array_equal(got[2 * owner + 1], ints[perms[owner]])
    np.testing.assert_array_equal(got[-1], x[:, 1][perms[0]][perms[n - 1]])


@pytest.mark.parametrize("protocol,n", [("semi2k", 2), ("rep3", 3)])
def test_output_shares_are_fresh(protocol, n):
    pi = np.random.default_rng(0).permutation(500)

    def prog(s: Session):
        t = s.input(0, np.zeros(500) if s.me == 0 else None, shape=(500,))
        y = fn.permute_rows(t, 1, pi if s.me == 1 else None)
        return t.shares, y.shares

    res = run_threads(prog, n, protocol=protocol).results
    for name, (before, after) in res.items():
        # no output share is an input share moved to a new row (0/500 expected by chance)
        assert not np.isin(after.reshape(-1), before.reshape(-1)).any(), name


def test_misuse_is_a_clear_error():
    def owner_without_pi(s: Session):
        fn.permute_rows(s.input(0, np.zeros(3) if s.me == 0 else None, shape=(3,)), 0, None)

    with pytest.raises(SessionError, match="passed no permutation"):
        run_threads(owner_without_pi, 2)

    def not_a_permutation(s: Session):
        fn.permute_rows(s.input(0, np.zeros(3) if s.me == 0 else None, shape=(3,)), 0,
                        np.array([0, 0, 1]) if s.me == 0 else None)

    with pytest.raises(SessionError, match="not a permutation"):
        run_threads(not_a_permutation, 2)

    def outsider_with_pi(s: Session):
        fn.permute_rows(s.input(0, np.zeros(3) if s.me == 0 else None, shape=(3,)), 0, np.arange(3))

    with pytest.raises(SessionError, match="passed a permutation"):
        run_threads(outsider_with_pi, 2)


# --- views -----------------------------------------------------------------------------------

N = 20_000


def record_views(protocol, n_parties, value, pi, owner):
    """Every message each party receives during one permutation of N copies of ``value``."""
    names = [f"P{i}" for i in range(n_parties)]
    dealer = protocol == "semi2k"
    mesh = memory_mesh(names + (["dealer"] if dealer else []))
    views: dict[int, list[np.ndarray]] = {i: [] for i in range(n_parties)}
    recording = threading.Event()

    def wrap(i):
        orig = mesh[i]._recv_raw

        def rec(peer):
            msg = orig(peer)
            if recording.is_set() and len(msg) >= 8 * N:
                views[i].append(np.frombuffer(bytes(msg), dtype=np.uint64).copy())
            return msg
        return rec

    for i in range(n_parties):
        mesh[i]._recv_raw = wrap(i)
    barrier = threading.Barrier(n_parties)

    def program(s: Session):
        x = s.input(0, np.full(N, value) if s.me == 0 else None, shape=(N,))
        barrier.wait()
        if s.me == 0:
            recording.set()
        barrier.wait()
        y = fn.permute_rows(x, owner, pi if s.me == owner else None)
        barrier.wait()
        return y.shares

    run_on_mesh(program, protocol, mesh, names)
    return views


def _is_index_message(words):
    return bool((words < N).all())


def _grid(rho, bins=16):
    """Contingency table of (position, value) bins: uniform for a random permutation."""
    t = np.arange(N) * bins // N
    v = rho.astype(np.int64) * bins // N
    return np.bincount(t * bins + v, minlength=bins * bins).reshape(bins, bins)


@pytest.mark.parametrize("protocol,n,owner", [("semi2k", 2, 0), ("semi2k", 2, 1), ("semi2k", 3, 1),
                                              ("rep3", 3, 0), ("rep3", 3, 2)])
def test_views_are_uniform_and_independent_of_values_and_permutation(protocol, n, owner):
    identity, reverse = np.arange(N), np.arange(N)[::-1].copy()
    va = record_views(protocol, n, 0.0, identity, owner)
    vb = record_views(protocol, n, 12345.678, reverse, owner)
    saw_index = False
    for party in range(n):
        assert len(va[party]) == len(vb[party]) >= 1
        for wa, wb in zip(va[party], vb[party]):
            assert _is_index_message(wa) == _is_index_message(wb)
            if _is_index_message(wa):
                # only non-owners receive rho; it must look like a random permutation for
                # pi = identity and pi = reversal alike (rho = pi would be a diagonal grid)
                assert party != owner
                saw_index = True
                for w in (wa, wb):
                    assert np.array_equal(np.sort(w), np.arange(N))
                    assert stats.chisquare(_grid(w).reshape(-1)).pvalue > ALPHA
                assert stats.chi2_contingency(np.stack([_grid(wa).reshape(-1), _grid(wb).reshape(-1)])).pvalue > ALPHA
            else:
                ha, hb = top_byte_hist(wa), top_byte_hist(wb)
                assert stats.chisquare(ha).pvalue > ALPHA
                assert stats.chisquare(hb).pvalue > ALPHA
                assert stats.chi2_contingency(np.stack([ha, hb])).pvalue > ALPHA
    assert saw_index


def test_the_index_test_detects_a_leak():
    # if the permutation itself travelled, the grid test would reject it at once
    assert stats.chisquare(_grid(np.arange(N)).reshape(-1)).pvalue < 1e-100
    assert stats.chisquare(_grid(np.arange(N)[::-1]).reshape(-1)).pvalue < 1e-100
