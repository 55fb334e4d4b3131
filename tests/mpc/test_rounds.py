"""Round counts of the nonlinear functions under rep3 (each round is an RTT on a WAN link).

Before the round reductions (3-round truncation, Horner's scheme, Newton steps alone) the same
calls took: sigmoid 70, exp 50, reciprocal 53."""

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
    ("sigmoid", approx.sigmoid, 52),
    ("exp", lambda x: approx.exp(x * 0.5), 38),
    ("reciprocal", approx.reciprocal, 43),
])
def test_rounds_of_the_nonlinear_functions(name, fn, rounds):
    assert _rounds(fn) == rounds, name
