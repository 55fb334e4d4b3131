import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tessera.errors import EncodingError
from tessera.ring.fixedpoint import FixedPoint, decode, encode
from tessera.ring.ring import arith_shift, msb, to_signed


@given(st.lists(st.floats(-1e12, 1e12, allow_nan=False), min_size=1, max_size=50))
def test_float_round_trip_within_half_ulp(values):
    x = np.array(values)
    back = decode(encode(x, 16), 16)
    assert np.max(np.abs(back - x)) <= 2.0**-17 + 1e-12 * np.max(np.abs(x))


@given(st.lists(st.integers(-(2**61), 2**61), min_size=1, max_size=50))
def test_integers_are_exact_with_zero_fractional_bits(values):
    x = np.array(values, dtype=np.int64)
    assert np.array_equal(decode(encode(x, 0), 0), x)


def test_negative_values_use_twos_complement():
    r = encode(np.array([-1.0, -0.5]), 16)
    assert r.dtype == np.uint64
    assert int(r[0]) == 2**64 - 2**16 and int(r[1]) == 2**64 - 2**15
    assert to_signed(r).tolist() == [-(2**16), -(2**15)]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(bad):
    with pytest.raises(EncodingError, match="NaN|infinity"):
        encode(np.array([1.0, bad]), 16)


def test_out_of_range_is_refused_with_the_limit():
    fp = FixedPoint(16)
    with pytest.raises(EncodingError, match="2\\^46"):
        fp.encode([fp.max_abs * 1.01])
    with pytest.raises(EncodingError):
        encode(np.array([2**62], dtype=np.int64), 0)
    fp.encode([fp.max_abs * 0.99])  # just inside is fine


def test_frac_bits_are_configurable_and_validated():
    assert FixedPoint(0).encode([3]).tolist() == [3]
    assert decode(FixedPoint(24).encode([0.5]), 24).tolist() == [0.5]
    with pytest.raises(EncodingError):
        FixedPoint(-1)


def test_non_numeric_input_is_refused():
    with pytest.raises(EncodingError):
        encode(np.array(["a"]), 16)


def test_ring_helpers():
    x = encode(np.array([-3.0, 3.0]), 0)
    assert msb(x).tolist() == [1, 0]
    assert to_signed(arith_shift(encode(np.array([-8, 8]), 0), 2)).tolist() == [-2, 2]
