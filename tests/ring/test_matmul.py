"""``ring.matmul``: numpy's ``matmul`` semantics in Z_2^64, on every operand layout it serves."""

import numpy as np
import pytest

from tessera.ring.ring import matmul


@pytest.mark.parametrize(("sa", "sb"), [((11, 5000), (5000, 12)), ((5000, 11), (11,)), ((7,), (7, 3)), ((9,), (9,)),
                                        ((2, 4, 6), (2, 6, 3)), ((0, 3), (3, 2)), ((3, 3), (3, 3))])
def test_matmul_wraps_like_numpy(sa, sb):
    rng = np.random.default_rng(7)
    a = rng.integers(0, 2**64, size=sa, dtype=np.uint64)
    b = rng.integers(0, 2**64, size=sb, dtype=np.uint64)
    got, want = matmul(a, b), np.matmul(a, b)
    assert got.dtype == np.uint64 and got.shape == np.shape(want)
    assert np.array_equal(got, want)


def test_matmul_of_a_transposed_view():
    rng = np.random.default_rng(8)
    a = rng.integers(0, 2**64, size=(4000, 11), dtype=np.uint64)
    assert np.array_equal(matmul(a.T, a), np.matmul(a.T, a))


@pytest.mark.parametrize(("m", "p"), [(66, 2), (5, 1), (11, 12), (4, 3), (2, 20), (3, 40)])
@pytest.mark.parametrize("layout", ["rows", "transposed"])
def test_long_contractions_wrap_like_numpy_on_every_path(m, p, layout):
    """Contractions of at least 4096 take a column at a time (p <= 2) or contiguous blocks
    (3 <= p <= 16, m >= 4); the others stay with einsum. Every path gives numpy's wrapped sums."""
    rng = np.random.default_rng(m * 100 + p)
    k = 9000  # two full blocks and a partial one
    a = rng.integers(0, 2**64, size=(m, k), dtype=np.uint64)
    if layout == "transposed":
        a = np.ascontiguousarray(a.T).T
    b = rng.integers(0, 2**64, size=(k, 2 * p), dtype=np.uint64)[:, ::2]  # a strided right operand
    got = matmul(a, b)
    assert got.dtype == np.uint64 and got.shape == (m, p)
    assert np.array_equal(got, np.matmul(a, b))
