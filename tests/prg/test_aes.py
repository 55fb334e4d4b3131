import numpy as np
import pytest
from scipy import stats

from tessera.prg import PRG, fresh_seed


def test_same_seed_same_stream_different_seed_different_stream():
    s = fresh_seed()
    a, b = PRG(s), PRG(s)
    assert np.array_equal(a.ring(1000), b.ring(1000))
    assert np.array_equal(a.bits(50, 3), b.bits(50, 3))
    assert not np.array_equal(PRG(fresh_seed()).ring(100), PRG(fresh_seed()).ring(100))


def test_stream_continues_across_calls():
    s = fresh_seed()
    one = PRG(s).ring(64)
    p = PRG(s)
    assert np.array_equal(np.concatenate([p.ring(10), p.ring(54)]), one)


def test_bytes_are_uniform():
    data = np.frombuffer(bytes(PRG().bytes(1 << 20)), dtype=np.uint8)
    counts = np.bincount(data, minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-4


def test_bits_have_the_requested_width():
    b = PRG().bits(10_000, 1)
    assert set(np.unique(b).tolist()) == {0, 1}
    assert abs(b.mean() - 0.5) < 0.03
    assert PRG().bits(1000, 5).max() < 32


def test_seed_length_and_repr():
    with pytest.raises(ValueError):
        PRG(b"short")
    assert "secret" in repr(PRG())
