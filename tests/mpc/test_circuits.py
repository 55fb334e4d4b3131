"""The bit-sliced adder: every chosen bit of every ring element, under both protocols."""

import numpy as np
import pytest

from tessera.mpc.circuits import bits_of, ltz
from tessera.ring.ring import to_signed
from tests.conftest import run

_EDGES = np.array([0, 1, 2**63 - 1, 2**63, 2**64 - 1, 2**62, 2**32 - 1, 2**32], dtype=np.uint64)


@pytest.mark.parametrize("config", [("rep3", 3), ("semi2k", 2), ("semi2k", 3)])
def test_bits_and_signs_of_every_word(config):
    rng = np.random.default_rng(3)
    x = np.concatenate([_EDGES, rng.integers(0, 2**64, size=129, dtype=np.uint64)])  # not a multiple of 64
    positions = [0, 1, 7, 19, 20, 25, 31, 62, 63]

    def prog(s):
        proto = s.protocol
        shares = proto.input(0, x if s.me == 0 else None, x.shape)  # raw ring elements, any value
        got_bits = proto.open([bits_of(proto, shares, positions)])[0]
        got_sign = proto.open([ltz(proto, shares.reshape(shares.shape[0], 1, -1))])[0]
        return got_bits, got_sign

    got_bits, got_sign = run(prog, config, frac_bits=0)["P0"]
    want = np.stack([(x >> np.uint64(j)) & np.uint64(1) for j in positions], axis=-1)
    assert np.array_equal(got_bits, want)
    assert np.array_equal(got_sign.reshape(-1), (to_signed(x) < 0).astype(np.uint64))
