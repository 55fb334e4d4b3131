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
