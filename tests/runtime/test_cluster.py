"""Parties as separate OS processes over mutual TLS (slow: real processes)."""

import time

import numpy as np
import psutil
import pytest

from tessera.errors import TransportError
from tessera.runtime.cluster import run_cluster
from tessera.runtime.diagnostics import selftest_inputs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("protocol,n", [("semi2k", 3), ("rep3", 3), ("semi2k", 2)])
def test_selftest_over_tls_matches_numpy(protocol, n):
    res = run_cluster("tessera.runtime.diagnostics:selftest", n, protocol=protocol, args={"n": 500})
    xs = [selftest_inputs(p, 500) for p in range(n)]
    for party, out in res.results.items():
        np.testing.assert_allclose(out["sum"], sum(xs), atol=1e-3)
        np.testing.assert_allclose(out["product"], xs[0] * xs[1], atol=0.05)
        assert np.array_equal(out["less"], (xs[0] < xs[1]).astype(int))
        assert abs(out["max"] - sum(xs).max()) < 1e-3
    assert len({out["transcript"] for out in res.results.values()}) == 1
    assert all(c["bytes_sent"] > 0 for c in res.comm.values())


def _is_party(proc: psutil.Process) -> bool:
    try:
        return "tessera.runtime.party" in " ".join(proc.cmdline())
    except psutil.Error:  # ended (or a zombie) meanwhile
        return False


@pytest.mark.parametrize("protocol", ["semi2k", "rep3"])
def test_a_party_killed_mid_protocol_stops_everyone_cleanly(protocol):
    start = time.monotonic()
    with pytest.raises(TransportError) as err:
        run_cluster("tessera.runtime.diagnostics:crash", 3, protocol=protocol, args={"victim": "P1"},
                    recv_timeout=10, timeout=60)
    assert time.monotonic() - start < 45
    assert "P1" in str(err.value)
    # the party processes were this test's children, and every one has ended and been waited for
    # by the time run_cluster returns (party processes of other work on the machine don't count)
    assert [c for c in psutil.Process().children(recursive=True) if _is_party(c)] == []


def test_unknown_program_is_refused():
    with pytest.raises(Exception, match="tessera package|no party program"):
        run_cluster("os:system", 2, protocol="semi2k", timeout=30)
