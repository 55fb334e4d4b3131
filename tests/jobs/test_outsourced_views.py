"""#17: what a compute party receives from an input-only data owner is independent of its data.

The owner secret-shares N copies of one secret (tessera.mpc.contrib.send_inputs); every compute
party's view (the messages it receives, and its shares after receive_inputs) must be uniform on
its own, and indistinguishable between two secrets (as tests/protocols/test_views.py)."""

import threading

import numpy as np
import pytest
from scipy import stats

from tessera.mpc.contrib import receive_inputs, send_inputs
from tessera.mpc.session import Contribution
from tessera.net.memory import memory_mesh
from tessera.ring.fixedpoint import encode
from tests.protocols.helpers import top_byte_hist

N = 20_000
ALPHA = 1e-6


def views(protocol: str, n: int, secret: float) -> dict[str, list[np.ndarray]]:
    compute = [f"c{i}" for i in range(n)]
    mesh = memory_mesh([*compute, "owner"])
    seen: dict[str, list[np.ndarray]] = {c: [] for c in compute}
    for i, c in enumerate(compute):
        orig = mesh[i]._recv_raw

        def recording(peer, orig=orig, c=c):
            msg = orig(peer)
            if len(msg) >= 8 * N:
                seen[c].append(np.frombuffer(bytes(msg), dtype=np.uint64).copy())
            return msg
        mesh[i]._recv_raw = recording  # type: ignore[method-assign]
    value = Contribution(np.asarray(encode(np.full(N, secret), 16), dtype=np.uint64), 16, None)
    shares: dict[str, np.ndarray] = {}

    def compute_party(i: int) -> None:
        got = receive_inputs(mesh[i], protocol, i, n, "owner")
        shares[compute[i]] = got[0].shares

    threads = [threading.Thread(target=compute_party, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    send_inputs(mesh[n], protocol, compute, [value])
    for t in threads:
        t.join()
    # the shares reconstruct the secret (additive components; rep3 holds two of three)
    total = sum(shares[c][0] for c in compute)
    assert np.array_equal(total, value.ring)
    return {c: [*seen[c], *shares[c]] for c in compute}


@pytest.mark.parametrize("protocol,n", [("rep3", 3), ("semi2k", 2), ("semi2k", 4)])
def test_a_compute_partys_view_of_an_owners_input_is_independent_of_the_data(protocol, n):
    a, b = views(protocol, n, 0.0), views(protocol, n, 4242.5)
    for c in a:
        assert len(a[c]) == len(b[c]) >= 1
        for wa, wb in zip(a[c], b[c]):
            ha, hb = top_byte_hist(wa), top_byte_hist(wb)
            assert stats.chisquare(ha).pvalue > ALPHA
            assert stats.chisquare(hb).pvalue > ALPHA
            assert stats.chi2_contingency(np.stack([ha, hb])).pvalue > ALPHA


def test_the_owner_sends_about_one_share():
    """semi2k: one share's worth of ring elements to the last party, a seed to each other one."""
    compute = ["c0", "c1", "c2"]
    mesh = memory_mesh([*compute, "owner"])
    value = Contribution(np.arange(N, dtype=np.uint64), 0, None)
    out = []
    ts = [threading.Thread(target=lambda i=i: out.append(receive_inputs(mesh[i], "semi2k", i, 3, "owner")))
          for i in range(3)]
    for t in ts:
        t.start()
    send_inputs(mesh[3], "semi2k", compute, [value])
    for t in ts:
        t.join()
    sent = mesh[3].stats.bytes_sent
    assert sent[0] == sent[1] < 200 and 8 * N <= sent[2] < 8 * N + 200
