"""Round counts of the building blocks that dominate at WAN latency (each round costs an RTT)."""

import numpy as np

from tests.conftest import run


def _rounds_of(step, protocol="rep3", n=3):
    def prog(s):
        x = s.input(0, np.full(8, 1.5) if s.me == 0 else None, shape=(8,), bound=1.5)
        y = s.input(1, np.full(8, -0.25) if s.me == 1 else None, shape=(8,), bound=0.25)
        before = s.stats.rounds
        out = step(s, x, y)
        return s.stats.rounds - before, out.reveal()

    res = run(prog, (protocol, n)).results
    return res["P0"]


def test_a_rep3_product_with_truncation_takes_two_rounds():
    rounds, value = _rounds_of(lambda s, x, y: x * y)
    assert rounds == 2
    np.testing.assert_allclose(value, -0.375, atol=2**-15)


def test_dependent_rep3_products_pay_two_rounds_each():
    def square_of_product(s, x, y):
        z = x * y
        return z * z

    rounds, value = _rounds_of(square_of_product)
    assert rounds == 4
    np.testing.assert_allclose(value, 0.140625, atol=2**-14)


def test_a_rep3_truncation_sends_36_bytes_per_element_and_rotates_the_helper():
    """Per element, helper 10 bytes (a word and a 16-bit top-bit share), its next 16, the last 10;
    it was 32, 16 and 16. Three truncations: every party is the helper once (12 each)."""
    n = 3000

    def prog(s):
        x = s.input(0, np.full(n, 1.5) if s.me == 0 else None, shape=(n,), bound=1.5)
        y = s.input(1, np.full(n, -0.25) if s.me == 1 else None, shape=(n,), bound=0.25)
        sent = []
        for _ in range(3):
            before = s.stats.total_bytes
            z = x * y
            sent.append((s.stats.total_bytes - before) / n)
        return sent, z.reveal()

    res = run(prog, ("rep3", 3)).results
    assert [res[p][0][0] for p in ("P0", "P1", "P2")] == [10, 16, 10]
    assert [res[p][0][1] for p in ("P0", "P1", "P2")] == [10, 10, 16]
    assert all(sum(res[p][0]) == 36 for p in res)
    np.testing.assert_allclose(res["P0"][1], -0.375, atol=2**-15)
