import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
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


def test_the_stream_is_the_same_however_it_is_cut_and_whatever_the_word_size():
    """``fill`` and ``ring`` continue one AES-CTR key stream, across the internal chunks (256 KiB)
    and their 15 spare bytes, into arrays of any dtype; a split draw equals one large draw."""
    s = fresh_seed()
    sizes = [0, 1, 15, 16, 17, 1 << 18, (1 << 18) + 15, (1 << 18) + 16, 3 * (1 << 18) + 5, 1_000_003]
    stream = Cipher(algorithms.AES(s), modes.CTR(bytes(16))).encryptor().update(bytes(sum(sizes) + 12 + 16))
    p, got = PRG(s), b""
    for k in sizes:
        got += bytes(p.bytes(k))
    small = np.empty((2, 3), dtype=np.uint16)
    p.fill(small)
    got += small.tobytes() + p.ring(2).tobytes()
    assert got == stream


def test_fill_writes_into_rows_and_refuses_a_strided_array():
    s = fresh_seed()
    rows = np.zeros((2, 5000), dtype=np.uint64)
    p = PRG(s)
    p.fill(rows[1])
    assert np.array_equal(rows[1], PRG(s).ring(5000)) and not rows[0].any()
    with pytest.raises(ValueError, match="contiguous"):
        p.fill(rows[:, 0])
