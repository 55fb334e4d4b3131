"""Exact comparisons and what is built on them, against numpy, under every protocol set-up."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tessera.mpc import functions as fn
from tests.conftest import CONFIGS, q, run

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
configs = st.sampled_from(CONFIGS)
# values on the fixed-point grid, including ties, zero, tiny and huge magnitudes within range
grid = st.one_of(st.sampled_from([0.0, -0.0, 2**-16, -(2**-16), 1e9, -1e9, 7.25, -7.25]),
                 st.floats(-1e6, 1e6, allow_nan=False).map(lambda v: float(q(v))))


def vectors(n):
    return hnp.arrays(np.float64, (n,), elements=grid)


@SETTINGS
@given(configs, st.integers(1, 12).flatmap(lambda n: st.tuples(vectors(n), vectors(n))), grid)
def test_comparisons_between_secrets_and_with_public_values(config, xy, c):
    x, y = xy

    def prog(s):
        a = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=float(np.max(np.abs(x), initial=1.0)))
        b = s.input(s.n_parties - 1, y if s.me == s.n_parties - 1 else None, shape=y.shape, bound=float(np.max(np.abs(y), initial=1.0)))
        return s.reveal(a < b, a <= b, a > b, a >= b, a == b, a != b, a < c, a >= c, a == c, b > 0)

    got = run(prog, config)["P0"]
    want = [x < y, x <= y, x > y, x >= y, x == y, x != y, x < c, x >= c, x == c, y > 0]
    for g, w in zip(got, want):
        assert g.dtype == np.int64 and np.array_equal(g, w.astype(np.int64))


@SETTINGS
@given(configs, st.integers(1, 10).flatmap(lambda n: st.tuples(vectors(n), vectors(n))))
def test_where_abs_relu_minimum_maximum_clip(config, xy):
    x, y = xy
    lo, hi = -1000.0, 2500.5

    def prog(s):
        a = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=float(np.max(np.abs(x), initial=1.0)))
        b = s.input(1, y if s.me == 1 else None, shape=y.shape, bound=float(np.max(np.abs(y), initial=1.0)))
        return s.reveal(fn.where(a < b, a, b), fn.where(x > 0, a, b), fn.abs(a), fn.relu(a), fn.minimum(a, b),
                        fn.maximum(a, b), fn.maximum(a, 3.5), fn.clip(a, lo, hi))

    got = run(prog, config)["P0"]
    want = [np.where(x < y, x, y), np.where(x > 0, x, y), np.abs(x), np.maximum(x, 0), np.minimum(x, y),
            np.maximum(x, y), np.maximum(x, 3.5), np.clip(x, lo, hi)]
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-9)


@SETTINGS
@given(configs, hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=7), st.data())
def test_max_min_argmax_argmin_with_ties_along_any_axis(config, shape, data):
    # few distinct values, so exact ties are common; numpy returns the first index on ties
    x = data.draw(hnp.arrays(np.float64, shape, elements=st.sampled_from([-3.0, 0.0, 1.5, 1.5, 8.0])))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))

    def prog(s):
        a = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=float(np.max(np.abs(x), initial=1.0)))
        return s.reveal(fn.max(a, axis), fn.min(a, axis), fn.argmax(a, axis), fn.argmin(a, axis))

    mx, mn, amx, amn = run(prog, config)["P0"]
    np.testing.assert_allclose(mx, x.max(axis), atol=1e-9)
    np.testing.assert_allclose(mn, x.min(axis), atol=1e-9)
    assert np.array_equal(amx, x.argmax(axis)) and np.array_equal(amn, x.argmin(axis))


def test_comparison_rounds_are_logarithmic():
    def prog(s):
        a = s.input(0, np.arange(8.0) if s.me == 0 else None, shape=(8,))
        before = s.stats.rounds
        (a < 3).reveal()
        return s.stats.rounds - before

    # semi2k: open x - r, 6 adder levels (the first AND is with a public word), daBit, reveal
    assert run(prog, ("semi2k", 3))["P0"] == 1 + 6 + 1 + 1
    # rep3: share x0 + x1, first AND, 6 adder levels, two products for the bit, reveal
    assert run(prog, ("rep3", 3))["P0"] == 1 + 1 + 6 + 2 + 1
