"""The bit-sliced layout against a plain reference, across block boundaries and padding."""

from __future__ import annotations

import numpy as np
import pytest

from tessera.ring.bitslice import BLOCK, slice_bits, sliced_shape, unslice_bits


def reference(words: np.ndarray, rows: int) -> np.ndarray:
    """Row j, word w, bit b: bit j of element 64 w + b (0 past the end)."""
    n = words.shape[-1]
    width = -(-n // 64)
    out = np.zeros((*words.shape[:-1], rows, width), dtype=np.uint64)
    for j in range(rows):
        bits = (words >> np.uint64(j)) & np.uint64(1)
        padded = np.zeros((*words.shape[:-1], width * 64), dtype=np.uint64)
        padded[..., :n] = bits
        grouped = padded.reshape(*words.shape[:-1], width, 64)
        out[..., j, :] = (grouped << np.arange(64, dtype=np.uint64)).sum(axis=-1, dtype=np.uint64)
    return out


@pytest.mark.parametrize("n", [1, 63, 64, 65, 1000, BLOCK, BLOCK + 77, 2 * BLOCK + 64])
@pytest.mark.parametrize("rows", [1, 7, 8, 21, 33, 64])
def test_slice_matches_the_reference(n: int, rows: int) -> None:
    rng = np.random.default_rng(n * 100 + rows)
    words = rng.integers(0, 2**64, size=(2, n), dtype=np.uint64, endpoint=False)
    got = slice_bits(words, rows)
    assert got.shape == (2, *sliced_shape(n, rows))
    np.testing.assert_array_equal(got, reference(words, rows))
    # every sliced row unslices to that bit of every element
    for j in (0, rows - 1):
        np.testing.assert_array_equal(unslice_bits(got[:, j], n), (words >> np.uint64(j)) & np.uint64(1))


def test_slice_is_linear_over_xor_and_keeps_leading_axes() -> None:
    rng = np.random.default_rng(3)
    a, b = (rng.integers(0, 2**63, size=(3, 2, 130), dtype=np.uint64) for _ in range(2))
    np.testing.assert_array_equal(slice_bits(a ^ b, 40), slice_bits(a, 40) ^ slice_bits(b, 40))
    assert slice_bits(a, 40).shape == (3, 2, 40, 3)


def test_empty_and_bad_rows() -> None:
    assert slice_bits(np.zeros((2, 0), dtype=np.uint64), 5).shape == (2, 5, 0)
    with pytest.raises(ValueError, match="64 bits"):
        slice_bits(np.zeros((1, 4), dtype=np.uint64), 65)
