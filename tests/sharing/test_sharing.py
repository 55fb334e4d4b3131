import numpy as np
import pytest

from tessera.prg import PRG
from tessera.sharing import (
    additive_join,
    additive_split,
    replicated_from_additive,
    replicated_join,
    xor_join,
    xor_split,
)


@pytest.mark.parametrize("n", [2, 3, 5])
def test_additive_and_xor_round_trip(n):
    v = PRG().ring((4, 3))
    assert np.array_equal(additive_join(additive_split(v, n, PRG())), v)
    assert np.array_equal(xor_join(xor_split(v, n, PRG())), v)


def test_replicated_round_trip_and_consistency_check():
    v = PRG().ring(10)
    parts = additive_split(v, 3, PRG())
    shares = replicated_from_additive(parts)
    assert np.array_equal(replicated_join(shares), v)
    shares[1][1] += np.uint64(1)
    with pytest.raises(ValueError, match="inconsistent"):
        replicated_join(shares)
