"""Property tests of every SecretTensor operation against numpy, under every protocol set-up.

Inputs are quantised to the 16-bit fixed-point grid first (``q``), so the references are the
exact results on the values that were actually shared; tolerances are stated in units in the
last place (ULP = 2^-16).
"""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tessera.mpc import concatenate, stack
from tests.conftest import CONFIGS, ULP, q, run

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
configs = st.sampled_from(CONFIGS)
small_shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=4)
values = st.floats(-1000, 1000, allow_nan=False, width=64)


def arrays(shape):
    return hnp.arrays(np.float64, shape, elements=values)


@st.composite
def broadcastable_pair(draw):
    shape = draw(small_shapes)
    other = draw(hnp.broadcastable_shapes(shape, min_dims=0, max_dims=3, min_side=1, max_side=4))
    return draw(arrays(shape)), draw(arrays(other))


def share_two(s, x, y):
    """x from the first party, y from the last (shapes announced by the owners)."""
    a = s.input(0, x if s.me == 0 else None, bound=float(np.max(np.abs(x), initial=1.0)))
    b = s.input(s.n_parties - 1, y if s.me == s.n_parties - 1 else None, bound=float(np.max(np.abs(y), initial=1.0)))
    return a, b


@SETTINGS
@given(configs, broadcastable_pair())
def test_add_sub_neg_with_broadcasting(config, pair):
    x, y = q(pair[0]), q(pair[1])

    def prog(s):
        a, b = share_two(s, x, y)
        return s.reveal(a + b, a - b, b - a, -a, a + 2.5, 3 - b, a + y, x - b)

    out = run(prog, config)["P0"]
    for got, want in zip(out, [x + y, x - y, y - x, -x, x + 2.5, 3 - y, x + y, x - y]):
        assert got.shape == np.shape(want)
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


@SETTINGS
@given(configs, broadcastable_pair())
def test_multiplication_secret_and_public_with_broadcasting(config, pair):
    x, y = q(pair[0]), q(pair[1])

    def prog(s):
        a, b = share_two(s, x, y)
        return s.reveal(a * b, a * y, 3 * a, b * 0.25, a * a)

    got = run(prog, config)["P0"]
    exact = [x * y, x * y, 3 * x, y * 0.25, x * x]
    for g, w in zip(got, exact):
        assert g.shape == np.shape(w)
        np.testing.assert_allclose(g, w, rtol=0, atol=2 * ULP)


@st.composite
def matmul_operands(draw):
    m, k, n = (draw(st.integers(1, 5)) for _ in range(3))
    kind = draw(st.sampled_from(["mm", "mv", "vm", "vv", "batch"]))
    shapes = {"mm": ((m, k), (k, n)), "mv": ((m, k), (k,)), "vm": ((k,), (k, n)), "vv": ((k,), (k,)),
              "batch": ((2, m, k), (k, n))}[kind]
    return draw(arrays(shapes[0])), draw(arrays(shapes[1]))


@SETTINGS
@given(configs, matmul_operands())
def test_matmul_and_dot(config, ops):
    x, y = q(ops[0] / 8), q(ops[1] / 8)  # keep sums of products well inside the range

    def prog(s):
        a, b = share_two(s, x, y)
        out = [a @ b, a @ y, x @ b]
        if a.ndim == 1 and b.ndim == 1:
            out.append(a.dot(b))
        return s.reveal(*out)

    got = run(prog, config)["P0"]
    want = x @ y
    for g in got:
        assert g.shape == np.shape(want)
        np.testing.assert_allclose(g, want, rtol=0, atol=3 * ULP)


@SETTINGS
@given(configs, small_shapes.flatmap(arrays), st.data())
def test_sum_and_mean_along_axes(config, x, data):
    x = q(x)
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1) if x.ndim else st.none())

    def prog(s):
        a = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=float(np.max(np.abs(x), initial=1.0)))
        return s.reveal(a.sum(axis), a.mean(axis), a.sum(axis, keepdims=True))

    total, mean, kept = run(prog, config)["P0"]
    np.testing.assert_allclose(total, x.sum(axis), rtol=0, atol=1e-6)
    np.testing.assert_allclose(kept, x.sum(axis, keepdims=True), rtol=0, atol=1e-6)
    np.testing.assert_allclose(mean, x.mean(axis), rtol=2**-19, atol=3 * ULP)


@SETTINGS
@given(configs, hnp.array_shapes(min_dims=2, max_dims=3, min_side=2, max_side=4).flatmap(arrays))
def test_indexing_slicing_reshape_transpose_concatenate(config, x):
    x = q(x)

    def prog(s):
        a = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=float(np.max(np.abs(x), initial=1.0)))
        return s.reveal(
            a[0], a[1:, ::-1], a[..., 0], a[np.array([1, 0])], a[x > 0], a.reshape(-1), a.T,
            a.transpose(*reversed(range(a.ndim))), a.flatten(),
            concatenate([a, a * 2], axis=0), concatenate([a, a], axis=-1), stack([a, -a], axis=1),
            a[:, np.array([1, 0, -1, 1])],  # one index array after full slices (a take): negative, repeated
        )

    got = run(prog, config)["P0"]
    want = [x[0], x[1:, ::-1], x[..., 0], x[np.array([1, 0])], x[x > 0], x.reshape(-1), x.T, x.T, x.flatten(),
            np.concatenate([x, x * 2]), np.concatenate([x, x], axis=-1), np.stack([x, -x], axis=1),
            x[:, np.array([1, 0, -1, 1])]]
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-9)


@SETTINGS
@given(configs, small_shapes.flatmap(lambda s: hnp.arrays(np.int64, s, elements=st.integers(-10**6, 10**6))))
def test_integer_tensors_are_exact(config, x):
    def prog(s):
        a = s.input(0, x if s.me == 0 else None, bound=float(np.max(np.abs(x), initial=1.0)))
        b = s.input(1, (x + 1) if s.me == 1 else None)
        return s.reveal(a * b, a + b, a * 3, a.sum(), a + 0.5)

    prod, total, triple, sums, half = run(prog, config)["P0"]
    assert prod.dtype == np.int64 and np.array_equal(prod, x * (x + 1))
    assert np.array_equal(total, 2 * x + 1) and np.array_equal(triple, 3 * x)
    assert int(sums) == int(x.sum())
    np.testing.assert_allclose(half, x + 0.5, atol=1e-9)


@settings(max_examples=10, deadline=None)
@given(configs, st.floats(-1e6, 1e6).filter(lambda c: abs(c) > 1e-3), st.data())
def test_division_by_public_numbers(config, c, data):
    x = q(data.draw(hnp.arrays(np.float64, (20,), elements=st.floats(-1e4, 1e4))))

    def prog(s):
        a = s.input(0, x if s.me == 0 else None, shape=x.shape, bound=float(np.max(np.abs(x), initial=1.0)))
        return s.reveal(a / c)[0]

    got = run(prog, config)["P0"]
    np.testing.assert_allclose(got, x / c, rtol=2**-19, atol=3 * ULP)


def test_reveal_to_chosen_parties_only():
    x = np.arange(6.0).reshape(2, 3)

    def prog(s):
        a = s.input("P0", x if s.me == 0 else None, shape=x.shape, bound=float(np.max(np.abs(x), initial=1.0)))
        return s.reveal(a, a * 2, to=["P1"]), a.reveal(to=2)

    for config in [("semi2k", 3), ("rep3", 3)]:
        res = run(prog, config)
        (p1a, p1b), _ = res["P1"]
        np.testing.assert_allclose(p1a, x)
        np.testing.assert_allclose(p1b, 2 * x)
        assert res["P0"][0] == [None, None] and res["P2"][0] == [None, None]
        assert res["P0"][1] is None and res["P1"][1] is None
        np.testing.assert_allclose(res["P2"][1], x)


def test_transcript_hash_agrees_between_parties():
    def prog(s):
        a = s.input(0, np.ones(3) if s.me == 0 else None, shape=(3,))
        s.reveal(a * a)
        s.reveal(a, to=[1])
        return s.transcript_hash()

    for config in [("semi2k", 4), ("rep3", 3)]:
        hashes = set(run(prog, config).results.values())
        assert len(hashes) == 1
