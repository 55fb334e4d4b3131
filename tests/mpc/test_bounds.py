"""Magnitude bounds (issue #14): a SecretTensor with a declared bound refuses, before it runs,
any operation whose result could wrap around the ring — instead of a silently wrong answer."""

import numpy as np
import pytest

from tessera.errors import EncodingError, ProtocolAbort, TesseraError
from tessera.mpc import approx
from tests.conftest import run

CONFIGS = [("semi2k", 2), ("rep3", 3)]


def _run(config, prog):
    return run(prog, config)["P0"]


@pytest.mark.parametrize("config", CONFIGS)
def test_squaring_values_that_could_exceed_the_product_range_is_refused(config):
    x = np.array([40_000.0, -35_000.0, 3.0])  # squares above 2^30: wrapped by 2^32 before

    def prog(s):
        t = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=1e5)
        return (t * t).reveal()

    with pytest.raises(EncodingError, match=r"a product could reach 1e\+10.*wrap"):
        _run(config, prog)


@pytest.mark.parametrize("config", CONFIGS)
def test_a_dot_product_that_could_wrap_is_refused_and_a_safe_one_is_exact(config):
    rng = np.random.default_rng(1)
    big = rng.uniform(900, 1000, 10_000)  # CrypTen returns 1.4e9 for such a dot product (1e10)

    def prog(s, v=big, b=1000.0):
        t = s.input(0, v if s.me == 0 else None, shape=v.shape, bound=b)
        return (t @ t).reveal()

    with pytest.raises(EncodingError, match="matrix product"):
        _run(config, prog)
    small = rng.uniform(-10, 10, 10_000)
    got = _run(config, lambda s: prog(s, small, 10.0))
    assert got == pytest.approx(float(small @ small), rel=1e-6)


@pytest.mark.parametrize("config", CONFIGS)
def test_bounds_propagate_through_sums_and_public_constants(config):
    x = np.linspace(-1, 1, 1000)

    def prog(s):
        t = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=1.0)
        total = (t * 3.0).sum()
        assert total.bound == pytest.approx(3000.0)
        assert (t + t).bound == 2.0 and t[:10].bound == 1.0 and t.reshape(10, 100).T.bound == 1.0
        return total.reveal()

    assert _run(config, prog) == pytest.approx(3 * x.sum(), abs=1e-2)


def test_a_sum_that_could_leave_the_ring_is_refused():
    x = np.ones(4)

    def prog(s):
        t = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=2.0**44)  # at 16 bits: range 2^46
        return (t + t + t + t + t).reveal()

    with pytest.raises(EncodingError, match="a sum could reach"):
        _run(("semi2k", 2), prog)


def test_an_input_beyond_its_declared_bound_is_refused_at_its_owner():
    x = np.array([1.0, 2.0, 500.0])

    def prog(s):
        return s.input(0, x if s.me == 0 else None, shape=x.shape, bound=100.0).reveal()

    with pytest.raises((EncodingError, ProtocolAbort, TesseraError), match="beyond its declared bound"):
        _run(("semi2k", 2), prog)


def test_an_approximation_refuses_an_input_outside_its_domain():
    def prog(s):
        t = s.input(0, np.ones(3) if s.me == 0 else None, shape=(3,), bound=2.0**46 - 1)
        return approx.reciprocal(t).reveal()

    with pytest.raises(EncodingError, match="reciprocal is defined for"):
        _run(("semi2k", 2), prog)


def test_bounds_through_sqrt_and_sigmoid():
    x = np.array([0.0, 4.0, 100.0])

    def prog(s):
        t = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=100.0)
        r = approx.sqrt(t)
        sig = approx.sigmoid(t)
        assert r.bound is not None and 10.0 <= r.bound < 10.1
        assert sig.bound is not None and sig.bound <= 1.001
        return r.reveal()

    np.testing.assert_allclose(_run(("rep3", 3), prog), np.sqrt(x), atol=1e-3)


@pytest.mark.parametrize("config", CONFIGS)
def test_an_input_without_a_declared_bound_gets_the_default_and_is_checked(config):
    """No bound declared: the input gets default_bound(f) = 2^(30 - f), so the tensor API can never
    square or multiply past the ring unchecked (the issue's cases, with no bound= anywhere)."""
    from tessera.mpc.tensor import default_bound
    assert default_bound(16) == 2.0**14

    def big(s):  # squaring 40,000 used to come back off by 2^32
        return s.input(0, np.array([40_000.0]) if s.me == 0 else None, shape=(1,)).reveal()

    with pytest.raises((EncodingError, ProtocolAbort, TesseraError), match="default bound of an input"):
        _run(config, big)

    x = np.full(10_000, 1000.0)

    def dot(s):  # 10^4 values near 1000: returned 1.4e9 instead of 1e10 before
        t = s.input(0, x if s.me == 0 else None, shape=x.shape)
        return (t @ t).reveal()

    with pytest.raises(EncodingError, match="a matrix product .* could reach"):
        _run(config, dot)

    def fine(s):  # within the default: a product of two inputs always runs, exactly
        t = s.input(0, np.array([16_000.0, -3.5]) if s.me == 0 else None, shape=(2,))
        return (t * t).reveal()

    np.testing.assert_allclose(_run(config, fine), [16_000.0**2, 12.25], rtol=1e-9)
