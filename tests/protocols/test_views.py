"""A single party's view is independent of the secret: for input, multiplication, truncation.

Each run shares N copies of one secret value; party 1 records every message it receives and
its own shares. Every recorded word must be uniform (chi-square on the top byte), and the
views for two different secrets must be indistinguishable (two-sample chi-square). A protocol
that leaked the value, or a value-dependent bias, would fail by a huge margin (p ~ 0).
"""

import numpy as np
import pytest
from scipy import stats

from tessera.mpc.session import Session
from tessera.net.memory import memory_mesh
from tests.protocols.helpers import run_on_mesh, top_byte_hist

N = 20_000
ALPHA = 1e-6  # many tests run; a genuine leak gives p values far below this


def record_view(protocol, n_parties, secret, op):
    names = [f"P{i}" for i in range(n_parties)]
    dealer = protocol == "semi2k"
    mesh = memory_mesh(names + (["dealer"] if dealer else []))
    view: list[np.ndarray] = []
    orig = mesh[1]._recv_raw

    def recording(peer):
        msg = orig(peer)
        if len(msg) >= 8 * N:
            view.append(np.frombuffer(bytes(msg), dtype=np.uint64).copy())
        return msg

    mesh[1]._recv_raw = recording
    shares: dict[str, np.ndarray] = {}

    def program(s: Session):
        x = s.input(0, np.full(N, secret) if s.me == 0 else None, shape=(N,))
        y = {"input": lambda: x, "mul": lambda: x * x, "trunc": lambda: x * 0.75}[op]()
        if s.me == 1:
            shares["own"] = y.shares.reshape(-1).copy()

    run_on_mesh(program, protocol, mesh, names)
    return [*view, shares["own"]]


@pytest.mark.parametrize("protocol,n", [("semi2k", 3), ("semi2k", 2), ("rep3", 3)])
@pytest.mark.parametrize("op", ["input", "mul", "trunc"])
def test_view_is_uniform_and_independent_of_the_secret(protocol, n, op):
    view_a = record_view(protocol, n, 0.0, op)
    view_b = record_view(protocol, n, 12345.678, op)
    assert len(view_a) == len(view_b) >= 1
    for wa, wb in zip(view_a, view_b):
        ha, hb = top_byte_hist(wa), top_byte_hist(wb)
        assert stats.chisquare(ha).pvalue > ALPHA
        assert stats.chisquare(hb).pvalue > ALPHA
        assert stats.chi2_contingency(np.stack([ha, hb])).pvalue > ALPHA


def test_the_test_detects_a_leak():
    # sanity check of the statistic: the secret itself is far from uniform
    words = np.full(N, 12345 << 16, dtype=np.uint64)
    assert stats.chisquare(top_byte_hist(words)).pvalue < 1e-100


def _rep3_truncation_views(secret):
    """What each rep3 party receives during one truncation (helper P0, then P1 and P2), split into
    64-bit words and the 16-bit words of the mask's top-bit shares (f = 16)."""
    names = ["P0", "P1", "P2"]
    mesh = memory_mesh(names)
    views: dict[int, list[np.ndarray]] = {i: [] for i in range(3)}
    recording = [False, False, False]
    for i in range(3):
        def recv(peer, orig=mesh[i]._recv_raw, i=i):
            msg = orig(peer)
            if recording[i]:
                words = len(msg) // 8 // N * N  # a word per element first, then 16-bit words
                if words:
                    views[i].append(np.frombuffer(bytes(msg[: 8 * words]), dtype=np.uint64))
                if len(msg) > 8 * words:
                    small = np.frombuffer(bytes(msg[8 * words :]), dtype=np.uint16)
                    assert small.size == N
                    views[i].append(small.astype(np.uint64) << np.uint64(48))
            return msg
        mesh[i]._recv_raw = recv  # type: ignore[method-assign]

    def program(s: Session):
        x = s.input(0, np.full(N, secret) if s.me == 0 else None, shape=(N,))
        y = s.input(1, np.full(N, 0.5) if s.me == 1 else None, shape=(N,))
        recording[s.me] = True  # after this party's inputs
        s.protocol.mul(x.shares, y.shares, 16)

    run_on_mesh(program, "rep3", mesh, names)
    return views


def test_rep3_truncation_views_of_every_role_are_uniform_and_the_helper_receives_nothing():
    view_a, view_b = _rep3_truncation_views(0.0), _rep3_truncation_views(12345.678)
    assert view_a[0] == [] and view_b[0] == []  # the helper (P0 for the first truncation)
    # P1: the other's masked part, the helper's word and top-bit share, the other's 16-bit word;
    # P2: P1's masked part and its word of the result
    assert [w.size for w in view_a[1]] == [N, N, N, N] and [w.size for w in view_a[2]] == [N, N]
    for i in (1, 2):
        for wa, wb in zip(view_a[i], view_b[i], strict=True):
            ha, hb = top_byte_hist(wa), top_byte_hist(wb)
            assert stats.chisquare(ha).pvalue > ALPHA
            assert stats.chisquare(hb).pvalue > ALPHA
            assert stats.chi2_contingency(np.stack([ha, hb])).pvalue > ALPHA
