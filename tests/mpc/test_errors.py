"""Misuse gives clear errors, and a failing party aborts every other party."""

import numpy as np
import pytest

from tessera.errors import EncodingError, SessionError, ShapeError
from tests.conftest import run

CONFIGS = [("semi2k", 3), ("rep3", 3)]


@pytest.mark.parametrize("config", CONFIGS)
def test_mismatched_shapes(config):
    def prog(s):
        a = s.input(0, np.ones(3) if s.me == 0 else None, shape=(3,))
        b = s.input(1, np.ones(4) if s.me == 1 else None, shape=(4,))
        return a + b

    with pytest.raises(ShapeError, match=r"\(3,\) and \(4,\)"):
        run(prog, config)

    def prog2(s):
        a = s.input(0, np.ones((2, 3)) if s.me == 0 else None, shape=(2, 3))
        return a @ a

    with pytest.raises(ShapeError, match="do not fit"):
        run(prog2, config)


@pytest.mark.parametrize("config", CONFIGS)
def test_mixing_tensors_from_different_sessions(config):
    kept = {}

    def first(s):
        kept[s.me] = s.input(0, np.ones(2) if s.me == 0 else None, shape=(2,))

    run(first, config)

    def second(s):
        mine = s.input(0, np.ones(2) if s.me == 0 else None, shape=(2,))
        return mine + kept[s.me]

    with pytest.raises(SessionError, match="different sessions"):
        run(second, config)


@pytest.mark.parametrize("config", CONFIGS)
def test_reveal_to_unknown_party(config):
    def prog(s):
        a = s.input(0, np.ones(2) if s.me == 0 else None, shape=(2,))
        return a.reveal(to="mallory")

    with pytest.raises(SessionError, match="unknown party 'mallory'"):
        run(prog, config)


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("bad", [1e15, np.nan, np.inf])
def test_values_outside_the_fixed_point_range(config, bad):
    def prog(s):
        return s.input(0, np.array([1.0, bad]) if s.me == 0 else None, shape=(2,))

    with pytest.raises(EncodingError):
        run(prog, config)


def test_input_misuse():
    def owner_without_value(s):
        return s.input(0, None, shape=(2,))

    with pytest.raises(SessionError, match="passed no value"):
        run(owner_without_value, ("semi2k", 2))

    def wrong_shape(s):
        return s.input(0, np.ones(3) if s.me == 0 else None, shape=(2,))

    with pytest.raises(SessionError, match="declared"):
        run(wrong_shape, ("rep3", 3))


def test_truth_value_and_secret_indexing_are_refused():
    def prog(s):
        a = s.input(0, np.ones(2) if s.me == 0 else None, shape=(2,))
        with pytest.raises(TypeError, match="secret"):
            bool(a)
        with pytest.raises(TypeError, match="secret"):
            a[a]
        return repr(a)

    out = run(prog, ("semi2k", 2))
    assert "shape=(2,)" in out["P0"] and "1." not in out["P0"]


def test_unknown_protocol():
    with pytest.raises(SessionError, match="unknown protocol"):
        run(lambda s: None, ("spdz", 3))
