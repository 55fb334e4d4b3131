"""Round counts of the nonlinear functions under rep3 (each round is an RTT on a WAN link).

Before the round reductions (3-round truncation, Horner's scheme, Newton steps alone) the same
calls took: sigmoid 70, exp 50, reciprocal 53; before the bit-sliced adder and the quadratic first guess
of the sigmoid's reciprocal: sigmoid 52, exp 38; before the one-product clip of |x|: sigmoid 47."""

import numpy as np
import pytest

from tessera.mpc import approx
from tests.conftest import run


def _rounds(fn, f=20):
    def prog(s):
        x = s.input(0, np.linspace(-20, 20, 64) if s.me == 0 else None, shape=(64,), frac_bits=f)
        before = s.stats.rounds
        fn(x)
        return s.stats.rounds - before

    return run(prog, ("rep3", 3), frac_bits=f)["P0"]


@pytest.mark.parametrize(("name", "fn", "rounds"), [
    ("sigmoid", approx.sigmoid, 46),
    ("exp", lambda x: approx.exp(x * 0.5), 37),
    ("reciprocal", approx.reciprocal, 43),
])
def test_rounds_of_the_nonlinear_functions(name, fn, rounds):
    assert _rounds(fn) == rounds, name


def _bytes_per_element(fn, protocol, n=6400, f=20):
    def prog(s):
        x = s.input(0, np.linspace(-20, 20, n) if s.me == 0 else None, shape=(n,), frac_bits=f)
        before = s.stats.total_bytes
        fn(x)
        return (s.stats.total_bytes - before) / n

    return run(prog, protocol, frac_bits=f)


def test_a_comparison_sends_bits_not_words_in_the_adder():
    """rep3 ``x < 0``: the bit-sliced adder (182 AND bits, 23 bytes) and the 8-byte bit conversion;
    the word-wide Kogge-Stone adder sent 12 words (96 bytes) and the conversion 16 bytes per party."""
    got = _bytes_per_element(lambda x: x < 0, ("rep3", 3))
    # P0 also sends the 16-byte binary sharing of x0 + x1 to both others
    assert got["P0"] == pytest.approx(16 + 182 / 8 + 8, abs=0.1)
    assert got["P1"] == pytest.approx(182 / 8 + 8, abs=0.1)
    assert got["P2"] == pytest.approx(182 / 8 + 8, abs=0.1)


def test_rep3_shares_only_the_sliced_rows_an_extraction_needs():
    """The a2b addend party 0 shares travels bit-sliced: for the low 8 bits, 8 rows of n / 64
    words to each of the two others (2 bytes per element, where the word layout took 16)."""
    from tessera.mpc.circuits import bits_of

    got = _bytes_per_element(lambda x: bits_of(x.session.protocol, x.shares, list(range(8))), ("rep3", 3))
    assert got["P0"] - got["P1"] == pytest.approx(2 * 8 * 8 / 64)
    assert got["P1"] == got["P2"]


def test_a_semi2k_bit_conversion_opens_packed_bits():
    """semi2k opens ``x ^ b`` of its daBits 64 bits to a word (it opened one word per bit)."""
    got = _bytes_per_element(lambda x: x < 0, ("semi2k", 2))
    # the edaBit opening (8 bytes), two opened bits per AND gate of the prefix network (119 gates;
    # the generate bits are local, one addend being public) and the packed daBit bit
    assert got["P0"] == pytest.approx(8 + 2 * 119 / 8 + 1 / 8, abs=0.1)
