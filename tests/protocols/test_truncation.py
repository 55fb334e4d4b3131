"""Truncation is exact up to one unit in the last place, whatever the value's size (< 2^62)."""

import numpy as np
import pytest

from tests.conftest import run

PROTOCOLS = [("semi2k", 3), ("semi2k", 2), ("rep3", 3)]


@pytest.mark.parametrize("config", PROTOCOLS)
def test_a_million_products_up_to_2_20_are_within_2_ulp(config):
    rng = np.random.default_rng(7)
    n = 10**6
    # magnitudes log-uniform so that tiny and large products are both well represented
    mag = lambda: np.exp2(rng.uniform(-8, 10, n)) * rng.choice([-1.0, 1.0], n)  # noqa: E731
    a_raw = np.round(mag() * 2**16).astype(np.int64)
    b_raw = np.round(mag() * 2**16).astype(np.int64)

    def prog(s):
        a = s.input(0, a_raw / 2**16 if s.me == 0 else None, shape=(n,), bound=2.0**15 - 2.0**-15)
        b = s.input(1, b_raw / 2**16 if s.me == 1 else None, shape=(n,), bound=2.0**15 - 2.0**-15)
        return (a * b).reveal()

    got = run(prog, config)["P0"]
    exact = (a_raw * b_raw).astype(np.float64) / 2**32  # products < 2^52: exact in int64 and float64
    assert np.abs(exact).max() <= 2**20
    err_ulp = np.abs(got - exact) * 2**16
    assert err_ulp.max() <= 2, f"max error {err_ulp.max()} ulp"


@pytest.mark.parametrize("config", PROTOCOLS)
def test_truncation_near_the_top_of_the_range_has_no_failures(config):
    rng = np.random.default_rng(11)
    n = 20_000
    # raw products up to ~2^61.9, where local (SecureML-style) truncation fails often
    a_raw = rng.integers(2**30, 2**31 - 1, n) * rng.choice([-1, 1], n)
    b_raw = rng.integers(2**30, 2**31 - 1, n) * rng.choice([-1, 1], n)

    def prog(s):
        a = s.input(0, a_raw / 2**16 if s.me == 0 else None, shape=(n,), bound=2.0**15)
        b = s.input(1, b_raw / 2**16 if s.me == 1 else None, shape=(n,), bound=2.0**15)
        raw = s.protocol.mul(a.shares, b.shares, 16)
        return s.protocol.open([raw])[0]

    got = run(prog, config)["P0"].view(np.int64)
    exact = [(int(x) * int(y)) >> 16 for x, y in zip(a_raw, b_raw)]
    err = np.array([int(g) - e for g, e in zip(got.tolist(), exact)])
    assert max(abs(x) for x in (int(a) * int(b) for a, b in zip(a_raw[:100], b_raw[:100]))) > 2**60
    assert err.min() >= 0 and err.max() <= 1, (err.min(), err.max())


@pytest.mark.parametrize("f", [1, 8, 9, 16, 17, 32, 33, 40])
def test_rep3_truncation_is_exact_for_every_word_size_of_its_top_bit_shares(f):
    """rep3 sends the helper's shares of the mask's top bit modulo 2^f, in 8, 16, 32 or 64-bit
    words; the result is ``floor(x / 2^f)`` or one more, for values up to 2^62 of either sign."""
    rng = np.random.default_rng(f)
    n = 4000
    raw = rng.integers(-(2**62) + 1, 2**62, n)
    raw[:4] = [2**62 - 1, -(2**62) + 1, 0, -1]

    def prog(s):
        x = s.input(0, raw if s.me == 0 else None, shape=(n,), frac_bits=0, bound=None)
        return s.protocol.open([s.protocol.truncate(x.shares, f)])[0]

    got = run(prog, ("rep3", 3))["P0"].view(np.int64)
    err = np.array([int(g) - (int(x) >> f) for g, x in zip(got.tolist(), raw.tolist())])
    assert err.min() >= 0 and err.max() <= 1, (err.min(), err.max())
